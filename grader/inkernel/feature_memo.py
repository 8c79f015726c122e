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
"""
from __future__ import annotations

import functools
import hashlib
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


def _file_digest(path: Any) -> bytes | None:
    if not isinstance(path, (str, os.PathLike)):
        return None
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None
    return hashlib.blake2b(data).digest() if len(data) <= MAX_FILE_BYTES else None


def _memo_load(original: Any, memo: _Memo) -> Any:
    @functools.wraps(original)
    def load(path: Any, *args: Any, **kwargs: Any) -> Any:
        digest = _file_digest(path)
        rest = _plain_items({**{f"#{i}": a for i, a in enumerate(args)}, **kwargs}) if digest else None
        if rest is None:
            return original(path, *args, **kwargs)
        key = ("load", digest, rest)
        if key not in memo.results:
            y, sr = original(path, *args, **kwargs)
            memo.keep(key, (y.copy(), sr), y.nbytes)
            return y, sr
        y, sr = memo.results[key]
        return y.copy(), sr

    return load


def _memo_mfcc(original: Any, memo: _Memo) -> Any:
    @functools.wraps(original)
    def mfcc(*args: Any, **kwargs: Any) -> Any:
        rest = None if args else _plain_items(kwargs)
        if rest is None:
            return original(*args, **kwargs)
        key = ("mfcc", rest)
        if key not in memo.results:
            out = original(**kwargs)
            memo.keep(key, out.copy(), out.nbytes)
            return out
        return memo.results[key].copy()

    return mfcc


def install() -> None:
    """Wrap librosa's two functions in place, before the notebook imports them."""
    import librosa
    import librosa.feature

    memo = _Memo()
    librosa.load = _memo_load(librosa.load, memo)
    librosa.feature.mfcc = _memo_mfcc(librosa.feature.mfcc, memo)
