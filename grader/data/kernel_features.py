"""The dataset's MFCCs, computed once by the grader and handed to every kernel's feature memo.

The lab's notebook decodes each clip with `librosa.load(path, sr=None)` and computes
`librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13)`. In a fresh kernel the first of those calls imports librosa's
signal stack (scipy.signal, numba and its cache) and then computes every clip: 1.6 s of CPU per kernel
(measured), for numbers the grader already knows. So the grader writes a *feature pack* for the clips the
kernel gets (its train and test splits): for each clip, the digest of the file's bytes, the digest of the
audio `librosa.load` returns, and the MFCCs of that audio. The kernel's memo (grader/inkernel/feature_memo.py)
answers those two calls from the pack when the bytes or the audio match a digest, and calls librosa otherwise.

Nothing in it is the student's and nothing depends on trusting it: every entry is keyed by content, computed
here with the real librosa, and a `load` entry exists only where decoding the bytes with soundfile (what the
memo does instead of librosa) gives the same array bit for bit. A pack the student damages in their own
folder spoils only their own notebook's features; the grader's checks never read features from the kernel.

Packs are cached under the grader's cache folder, one per dataset listing (names, sizes, modification times);
a stale one is harmless (content keys) and rebuilt when the listing changes.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from grader.cachedir import cache_root
from grader.data.layout import SPLITS, split_dir

if TYPE_CHECKING:  # grader.data.features imports librosa: only when a pack is built
    from grader.data.features import FeatureCache

log = logging.getLogger(__name__)

PACK_FORMAT = 1
INDEX_NAME = "features.json"
ARRAY_NAME = "features.npy"
N_MFCC = 13
MAX_CLIPS = 20_000              # a TA's dataset larger than this gets no pack (the memo computes as usual)
MAX_CLIP_BYTES = 64 << 20       # as the kernel's memo: a bigger file is read as usual there


def digest(data: bytes) -> str:
    """The key of a file's bytes or an array's bytes; the kernel's memo computes the same."""
    return hashlib.blake2b(data).hexdigest()


def _clips(data_dir: Path) -> list[Path]:
    clips: list[Path] = []
    for split in SPLITS:
        folder = split_dir(data_dir, split)
        if folder.is_dir():
            clips += sorted(p for p in folder.iterdir() if p.suffix.lower() == ".wav" and p.is_file())
    return clips


def _listing_key(clips: list[Path]) -> str:
    lines = []
    for clip in clips:
        stat = clip.stat()
        lines.append(f"{clip.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}")
    versions = f"{PACK_FORMAT}:{_version('librosa')}:{_version('soundfile')}:{_version('numpy')}"
    return hashlib.sha256("\n".join([versions, *lines]).encode()).hexdigest()[:32]


def _version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "none"


def feature_pack(data_dir: Path, root: Path | None = None, cache: FeatureCache | None = None) -> Path | None:
    """The folder of the feature pack for the clips of `data_dir`'s splits, built on first use; None when
    there is nothing to pack or it cannot be built (the kernel's memo then computes as before). The MFCCs
    come from the grader's feature cache, which `lstm.train` reads too: a clip is featurised once."""
    clips = _clips(Path(data_dir))
    if not clips or len(clips) > MAX_CLIPS:
        return None
    target = (root or cache_root()) / "kernel-features" / _listing_key(clips)
    if (target / INDEX_NAME).is_file() and (target / ARRAY_NAME).is_file():
        return target
    from grader.data.features import FeatureCache

    try:
        _build(clips, target, cache or FeatureCache())
    except (OSError, ValueError, RuntimeError):
        log.warning("the kernel feature pack could not be built; kernels compute their MFCCs", exc_info=True)
        return None
    return target


def _build(clips: list[Path], target: Path, cache: FeatureCache) -> None:
    # grader.data.features (FeatureCache's module, imported by the caller) has set up the numba cache
    import librosa
    import soundfile as sf

    loads: dict[str, list[int]] = {}
    mfccs: dict[str, list[int]] = {}
    blocks: list[np.ndarray] = []
    offset = 0
    for clip in clips:
        data = clip.read_bytes()
        if len(data) > MAX_CLIP_BYTES:
            continue
        try:
            y, sr = librosa.load(io.BytesIO(data), sr=None)
            features = cache.get(clip).T  # librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13), stored transposed
            decoded, native_sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
        except Exception:  # a clip librosa cannot read: the notebook meets the same error itself
            continue
        if decoded.dtype == y.dtype and decoded.shape == y.shape and native_sr == sr and np.array_equal(decoded, y):
            loads[digest(data)] = [int(sr), int(y.shape[0])]
        if features.dtype != np.float32 or features.ndim != 2 or features.shape[0] != N_MFCC:
            continue
        mfccs[digest(y.tobytes())] = [int(sr), offset, int(features.shape[1])]
        blocks.append(np.asarray(features, dtype=np.float32))
        offset += features.shape[1]
    if not blocks:
        raise ValueError("no clip could be featurised")
    index = {"format": PACK_FORMAT, "n_mfcc": N_MFCC, "frames": offset, "load": loads, "mfcc": mfccs}
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".pack-", dir=target.parent))
    np.save(scratch / ARRAY_NAME, np.ascontiguousarray(np.concatenate(blocks, axis=1)), allow_pickle=False)
    (scratch / INDEX_NAME).write_text(json.dumps(index), encoding="utf-8")
    try:
        os.rename(scratch, target)  # atomic: a parallel grader may have built the same pack
    except OSError:
        for name in (ARRAY_NAME, INDEX_NAME):
            (scratch / name).unlink(missing_ok=True)
        scratch.rmdir()
