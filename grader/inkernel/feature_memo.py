"""Memoise `librosa.load` and `librosa.feature.mfcc` inside one kernel, keyed by content.

The lab's `AudioDataset` decodes every clip and computes its MFCCs again in every epoch, for every loader pass
and for both models: most of the notebook's time under the grader's epoch cap. Both functions are deterministic
for the same input bytes and arguments, so the result computed the first time is the result every later call
would compute; later calls get a copy of it (the caller may write into what it gets).

Keys are the content, never the name: a file's bytes (hashed) or an array's bytes, plus every other argument,
which must be a plain value (number, string, None, bool); any other argument (a file object, a callable) calls
librosa as usual. Nothing crosses kernels: the memo lives and dies with this student's process, and the student
can only spoil their own results with it. Bounded: files over MAX_FILE_BYTES and results once MAX_BYTES are held
are computed as usual, not kept.

The grader also hands the kernel a feature pack (grader/data/kernel_features.py): the dataset's clips, keyed by
the digest of their bytes and of their decoded audio, with their MFCCs computed by the real librosa. The lab's
two calls, `load(path, sr=None)` and `mfcc(y=y, sr=sr, n_mfcc=13)`, are answered from it when the content
matches, without importing librosa's signal stack (1.6 s of CPU per kernel, measured); anything else, including
a pack that does not read back as expected, goes to librosa. librosa's functions are imported on their first
real call, never at install.
"""
from __future__ import annotations

import hashlib
import importlib
import io
import json
import operator
import os
from typing import Any

MAX_BYTES = 512 << 20        # memoised arrays held at most, per kernel
MAX_FILE_BYTES = 64 << 20    # a clip of the lab is ~100 KB; a bigger file is read as usual
_PLAIN = (int, float, str, bool, type(None))


class _Memo:
    def __init__(self) -> None:
        self.results: dict[tuple[Any, ...], Any] = {}
        self.held = 0

    def keep(self, key: tuple[Any, ...], value: Any, size: int) -> None:
        if self.held + size <= MAX_BYTES:
            self.results[key] = value
            self.held += size


def _plain_items(values: dict[str, Any]) -> tuple[tuple[str, Any], ...] | None:
    """The arguments as a hashable key, arrays by their bytes; None when one of them is not plain."""
    import numpy as np

    items = []
    for name, value in sorted(values.items()):
        if isinstance(value, np.ndarray):
            items.append((name, (str(value.dtype), value.shape, hashlib.blake2b(value.tobytes()).digest())))
        elif isinstance(value, _PLAIN):
            items.append((name, (type(value).__name__, value)))
        else:
            return None
    return tuple(items)


def _file_bytes(path: Any) -> bytes | None:
    if not isinstance(path, (str, os.PathLike)):
        return None
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None
    return data if len(data) <= MAX_FILE_BYTES else None


class Pack:
    """The grader's feature pack in this kernel's folder, read on first use; any surprise empties it."""

    MAX_INDEX_BYTES = 16 << 20
    MAX_ARRAY_BYTES = 256 << 20

    def __init__(self, folder: str | None) -> None:
        self.folder = folder
        self._read = folder is None
        self.loads: dict[str, Any] = {}
        self.mfccs: dict[str, Any] = {}
        self.frames: Any = None
        self.n_mfcc = 0

    def _ensure(self) -> None:
        if self._read:
            return
        self._read = True
        try:
            self._load()
        except Exception:  # a missing, damaged or edited pack: librosa answers instead
            self.loads, self.mfccs, self.frames = {}, {}, None

    def _load(self) -> None:
        import numpy as np

        assert self.folder is not None
        with open(os.path.join(self.folder, "features.json"), "rb") as fh:
            index = json.loads(fh.read(self.MAX_INDEX_BYTES))
        array_path = os.path.join(self.folder, "features.npy")
        if os.path.getsize(array_path) > self.MAX_ARRAY_BYTES:
            return
        frames = np.load(array_path, allow_pickle=False)
        n_mfcc = int(index["n_mfcc"])
        if (index.get("format") != 1 or frames.dtype != np.float32 or frames.ndim != 2
                or frames.shape != (n_mfcc, int(index["frames"]))):
            return
        self.frames, self.n_mfcc = frames, n_mfcc
        self.loads, self.mfccs = dict(index["load"]), dict(index["mfcc"])

    def audio(self, data: bytes) -> tuple[Any, int] | None:
        """`librosa.load(path, sr=None)` of these bytes, decoded as the grader proved librosa decodes them."""
        self._ensure()
        entry = self.loads.get(hashlib.blake2b(data).hexdigest())
        if entry is None:
            return None
        import soundfile

        y, sr = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=False)
        if int(sr) != int(entry[0]) or y.ndim != 1 or y.shape[0] != int(entry[1]):
            return None
        return y, int(sr)

    def mfcc(self, y: Any, sr: Any, n_mfcc: Any) -> Any:
        """`librosa.feature.mfcc(y=y, sr=sr, n_mfcc=n_mfcc)`, when the pack holds this exact audio."""
        import numpy as np

        self._ensure()
        if self.frames is None or not isinstance(y, np.ndarray) or y.dtype != np.float32 or y.ndim != 1:
            return None
        if isinstance(n_mfcc, bool) or isinstance(sr, bool) or not isinstance(sr, (int, float)):
            return None
        try:  # librosa slices with n_mfcc: anything but an integer (13.0) is its TypeError, not our answer
            if operator.index(n_mfcc) != self.n_mfcc:
                return None
        except TypeError:
            return None
        entry = self.mfccs.get(hashlib.blake2b(y.tobytes()).hexdigest())
        if entry is None or float(sr) != float(entry[0]):
            return None
        start, count = int(entry[1]), int(entry[2])
        if start < 0 or count <= 0 or start + count > self.frames.shape[1]:
            return None
        return self.frames[:, start:start + count].copy()


_NO_PACK = Pack(None)


def _safely(lookup: Any, *args: Any) -> Any:
    """The pack's answer, or None (librosa answers) when the pack is damaged in a way its reading missed."""
    try:
        return lookup(*args)
    except Exception:
        return None
# load(path, sr=None): the lab's call. Only with sr by keyword: librosa 0.11 refuses it positionally (TypeError),
# and a call librosa refuses must fail here too.
_NATIVE_RATE = (("sr", ("NoneType", None)),)


def _memo_load(original: Any, memo: _Memo, pack: Pack = _NO_PACK) -> Any:
    def load(path: Any, *args: Any, **kwargs: Any) -> Any:
        data = _file_bytes(path)
        digest = hashlib.blake2b(data).digest() if data is not None else None
        rest = _plain_items({**{f"#{i}": a for i, a in enumerate(args)}, **kwargs}) if digest else None
        if rest is None:
            return original(path, *args, **kwargs)
        key = ("load", digest, rest)
        if key not in memo.results:
            packed = _safely(pack.audio, data) if rest == _NATIVE_RATE else None
            y, sr = packed if packed is not None else original(path, *args, **kwargs)
            memo.keep(key, (y.copy(), sr), y.nbytes)
            return y, sr
        y, sr = memo.results[key]
        return y.copy(), sr

    return _described(load, original)


def _memo_mfcc(original: Any, memo: _Memo, pack: Pack = _NO_PACK) -> Any:
    def mfcc(*args: Any, **kwargs: Any) -> Any:
        rest = None if args else _plain_items(kwargs)
        if rest is None:
            return original(*args, **kwargs)
        key = ("mfcc", rest)
        if key not in memo.results:
            out = None
            if set(kwargs) == {"y", "sr", "n_mfcc"}:
                out = _safely(pack.mfcc, kwargs["y"], kwargs["sr"], kwargs["n_mfcc"])
            if out is None:
                out = original(**kwargs)
            memo.keep(key, out.copy(), out.nbytes)
            return out
        return memo.results[key].copy()

    return _described(mfcc, original)


def _described(wrapper: Any, original: Any) -> Any:
    """The wrapper under librosa's name; its docstring says what it is (the original's would need its import)."""
    name = getattr(original, "name", None) or getattr(original, "__name__", "function")
    wrapper.__name__ = wrapper.__qualname__ = name
    wrapper.__module__ = getattr(original, "module", None) or getattr(original, "__module__", "librosa")
    wrapper.__doc__ = (f"librosa's {name}, memoised by content in the grading kernel "
                       "(grader/inkernel/feature_memo.py): the same results as librosa's own.")
    return wrapper


class _Deferred:
    """One of librosa's functions, imported on its first call: importing it pulls librosa's signal stack."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(self.module), self.name)(*args, **kwargs)


def install(pack_folder: str | None = None) -> None:
    """Wrap librosa's two functions in place, before the notebook imports them, without importing them."""
    import librosa  # lazy packages (lazy_loader): nothing heavy is imported here
    import librosa.feature

    memo, pack = _Memo(), Pack(pack_folder)
    librosa.load = _memo_load(_Deferred("librosa.core.audio", "load"), memo, pack)
    librosa.feature.mfcc = _memo_mfcc(_Deferred("librosa.feature.spectral", "mfcc"), memo, pack)
