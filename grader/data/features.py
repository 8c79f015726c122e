"""The lab's MFCC features, and a content-addressed disk cache for them.

The recipe is the lab's, exactly: `librosa.load(path, sr=None)` (native sample
rate, mono float32), `librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13).T`, giving
(frames, 13) float32. Computing it is most of the cost of a grading run's
data step, so features are cached on disk keyed by what determines them:
the file's bytes, the parameters and librosa's version. Entries are plain
.npy files (never pickles), written atomically so that graders running in
parallel never read half a file.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.cachedir import cache_root
from grader.data.layout import LABELS, csv_path, split_dir
from grader.errors import DatasetError
from grader.lab_api import LAB_SIZES
from grader.messages import Msg

N_MFCC = LAB_SIZES.input  # the MFCCs per frame are the models' input size
# Bump when the way features are computed or stored changes, to orphan old entries.
CACHE_FORMAT = 1


def _ensure_numba_cache() -> None:
    # librosa uses numba; with no writable cache dir (read-only site-packages)
    # numba recompiles on every start and the first librosa.load took 20 s.
    # The grader (trusted) shares the warm cache that student kernels get
    # copies of, so a machine compiles librosa's kernels once, not twice.
    if "NUMBA_CACHE_DIR" not in os.environ:
        from grader.hosting.numba_cache import warm_cache

        folder = warm_cache() or cache_root() / "numba"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            folder = Path(tempfile.gettempdir()) / "grader-numba"
            folder.mkdir(parents=True, exist_ok=True)
        os.environ["NUMBA_CACHE_DIR"] = str(folder)


_ensure_numba_cache()
import librosa  # noqa: E402  (after NUMBA_CACHE_DIR is set)


def _mfcc(source: str | io.BytesIO) -> np.ndarray:
    y, sr = librosa.load(source, sr=None)
    return np.ascontiguousarray(librosa.feature.mfcc(y=y, sr=sr, n_mfcc=N_MFCC).T, dtype=np.float32)


def mfcc_of_bytes(data: bytes) -> np.ndarray:
    """(frames, 13) float32 MFCCs of WAV bytes held in memory (clips that never touch the disk)."""
    return _mfcc(io.BytesIO(data))


def compute_mfcc(wav_path: Path | str) -> np.ndarray:
    """(frames, 13) float32 MFCCs of one WAV file, computed exactly as the lab does."""
    return _mfcc(str(wav_path))


class FeatureCache:
    """MFCCs on disk under `root`, keyed by content hash + parameters + librosa version."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else cache_root() / "mfcc"
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key_for_bytes(data: bytes) -> str:
        content = hashlib.sha256(data).hexdigest()
        recipe = f"v{CACHE_FORMAT}|sr=None|n_mfcc={N_MFCC}|librosa={getattr(librosa, '__version__', '?')}|{content}"
        return hashlib.sha256(recipe.encode()).hexdigest()

    def key(self, wav_path: Path) -> str:
        return self.key_for_bytes(Path(wav_path).read_bytes())

    def entry_path(self, key: str) -> Path:
        # Two-level fan-out keeps folders small for a course's worth of files.
        return self.root / key[:2] / f"{key}.npy"

    def get(self, wav_path: Path) -> np.ndarray:
        """The file's MFCCs: from the cache when present, else computed and stored."""
        data = Path(wav_path).read_bytes()
        entry = self.entry_path(self.key_for_bytes(data))
        cached = self._load(entry)
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        # Compute from the very bytes that were hashed, so the entry can never
        # belong to a different version of the file than its key says.
        features = _mfcc(io.BytesIO(data))
        self._store(entry, features)
        return features

    @staticmethod
    def _load(entry: Path) -> np.ndarray | None:
        try:
            arr = np.load(entry, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError):
            return None  # damaged entry (disk full, manual edit): recompute and overwrite
        if not isinstance(arr, np.ndarray) or arr.dtype != np.float32 or arr.ndim != 2 or arr.shape[1] != N_MFCC:
            return None
        return arr

    @staticmethod
    def _store(entry: Path, features: np.ndarray) -> None:
        entry.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=entry.parent, prefix=".tmp-", suffix=".npy")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, features, allow_pickle=False)
            # Readers see either no file or the whole file, never a partial one.
            os.replace(tmp, entry)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


@dataclass(frozen=True)
class SplitFeatures:
    """One split's features in csv order, with integer labels (cat 0, dog 1, bird 2)."""

    features: list[np.ndarray]
    labels: np.ndarray  # int64, shape (n,)
    filenames: list[str]


def load_split(data_dir: Path, split: str, cache: FeatureCache) -> SplitFeatures:
    """Features and labels of `split` ('train', 'test' or 'holdout') of a dataset in the lab's layout.

    Reads the csv with pandas as the lab does. The dataset should have passed
    `grader data check`; anything it would have reported (a missing column or
    file, an unknown class, an empty split, unreadable audio) still fails here as
    a DatasetError (exit 2, in the user's language), never a KeyError.
    """
    frame = _read_split_csv(Path(data_dir), split)
    filenames = [str(name) for name in frame["filename"]]
    unknown = sorted({str(c) for c in frame["class"] if c not in LABELS})
    if unknown:
        raise DatasetError.of(Msg("data.class_unknown_in_split", {"split": split, "values": ", ".join(unknown)}))
    labels = np.array([LABELS[c] for c in frame["class"]], dtype=np.int64)
    folder = split_dir(Path(data_dir), split)
    features = [_clip_features(cache, folder / name, f"{split}/{name}", split) for name in filenames]
    return SplitFeatures(features, labels, filenames)


def _read_split_csv(data_dir: Path, split: str):  # type: ignore[no-untyped-def]
    import pandas as pd

    name = f"{split}.csv"
    try:
        frame = pd.read_csv(csv_path(data_dir, split))
    except FileNotFoundError:
        raise DatasetError.of(Msg("data.csv_missing", {"file": name})) from None
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DatasetError.of(Msg("data.csv_unreadable", {"file": name, "reason": str(exc)[:200]})) from None
    for column in ("filename", "class"):
        if column not in frame.columns:
            found = ", ".join(str(c) for c in frame.columns) or "-"
            raise DatasetError.of(Msg("data.column_missing", {"file": name, "column": column, "found": found}))
    if frame.empty:
        raise DatasetError.of(Msg("data.split_empty", {"file": name, "split": split}))
    return frame


def _clip_features(cache: FeatureCache, path: Path, label: str, split: str) -> np.ndarray:
    try:
        return cache.get(path)
    except FileNotFoundError:
        raise DatasetError.of(Msg("data.wav_missing_at_grading", {"file": label, "csv": f"{split}.csv"})) from None
    except Exception as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise DatasetError.of(Msg("data.wav_unreadable_at_grading", {"file": label, "reason": reason})) from None
