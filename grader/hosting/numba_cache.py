"""A warm numba cache for librosa, copied into each kernel's workdir.

librosa's first `load` + `mfcc` compiles numba functions: about 20 s here with
a cold cache, 1.5 s with a warm one. Kernels must not share a writable cache
(its files are pickles: one submission could plant code that another loads),
so the grader warms one cache itself, in a subprocess running only its own
code, and gives every kernel a private copy.

numba files its entries by the full path of the source file, so one cache shared by two installs of librosa
(two checkouts, a new virtual environment) holds both sets; the copy every kernel gets grew to 885 files (52 MB,
0.6 s to copy per kernel, measured) where one install needs 53 (3 MB). So a warm cache belongs to one librosa
install: its folder's name says which.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from grader.cachedir import cache_root
from grader.threads import THREAD_ENV
from grader.untrusted_fs import UntrustedDir

_WARM_UP = """
import numpy as np, soundfile, librosa, sys
path = sys.argv[1]
t = np.arange(4000) / 8000
soundfile.write(path, (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 8000)
y, sr = librosa.load(path, sr=None)
librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13)
"""
_WARM_UP_TIMEOUT_S = 300
_DONE = "warm.ok"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "none"


def _librosa_location() -> str:
    """Where librosa is installed (without importing it): numba's cache entries are filed under this path."""
    spec = importlib.util.find_spec("librosa")
    origin = spec.origin if spec is not None and spec.origin else "none"
    return hashlib.sha256(os.path.dirname(os.path.abspath(origin)).encode()).hexdigest()[:12]


def warm_cache(root: Path | None = None) -> Path | None:
    """The folder of a warm librosa numba cache, built on first use; None if it cannot be built."""
    root = root or cache_root()
    tag = (f"numba-{_version('numba')}-librosa-{_version('librosa')}-py{sys.version_info[0]}{sys.version_info[1]}"
           f"-at-{_librosa_location()}")
    target = root / tag
    if (target / _DONE).is_file():
        return target
    try:
        root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{tag}-", dir=root))
        env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(scratch), **THREAD_ENV,
               "NUMBA_CACHE_DIR": str(scratch / "cache")}
        subprocess.run(
            [sys.executable, "-c", _WARM_UP, str(scratch / "tone.wav")],
            env=env, cwd=scratch, capture_output=True, timeout=_WARM_UP_TIMEOUT_S, check=True,
        )
        (scratch / "cache" / _DONE).write_text("ok\n")
        try:
            (scratch / "cache").rename(target)  # atomic: a parallel grader may have won the race
        except OSError:
            pass
        shutil.rmtree(scratch, ignore_errors=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return target if (target / _DONE).is_file() else None


def seed_kernel_cache(destination: UntrustedDir, root: Path | None = None) -> bool:
    """Copy the warm cache into a kernel's NUMBA_CACHE_DIR (held open: nothing planted there is followed)."""
    source = warm_cache(root)
    if source is None:
        return False
    destination.copy_tree_from(source)
    return True
