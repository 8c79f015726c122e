"""The kernel's librosa memo (grader/inkernel/feature_memo.py): the same answers as librosa, keyed by content.

Real WAV files written with soundfile, real librosa; the memo is installed on a private copy of its functions so
the rest of the test session keeps librosa as it is.
"""
from __future__ import annotations

from pathlib import Path

import librosa
import librosa.feature
import numpy as np
import pytest
import soundfile as sf

from grader.inkernel import feature_memo


@pytest.fixture
def memo() -> feature_memo._Memo:
    return feature_memo._Memo()


def _counting(fn):
    calls = []

    def wrapped(*args, **kwargs):
        calls.append(1)
        return fn(*args, **kwargs)

    wrapped.calls = calls  # type: ignore[attr-defined]
    return wrapped


def _wav(path: Path, freq: float) -> Path:
    t = np.arange(8000) / 8000
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 8000)
    return path


def test_a_clip_loaded_twice_is_decoded_once_and_equals_librosa(tmp_path: Path, memo) -> None:
    clip = _wav(tmp_path / "a.wav", 440)
    real = _counting(librosa.load)
    load = feature_memo._memo_load(real, memo)
    first, sr1 = load(str(clip), sr=None)
    second, sr2 = load(clip, sr=None)  # a Path: the same content, the same answer
    expected, sr = librosa.load(str(clip), sr=None)
    assert len(real.calls) == 1 and sr1 == sr2 == sr
    assert np.array_equal(first, expected) and np.array_equal(second, expected)
    second[:] = 0  # the caller may write into what it got
    assert np.array_equal(load(clip, sr=None)[0], expected)


def test_the_key_is_the_content_not_the_name(tmp_path: Path, memo) -> None:
    clip = _wav(tmp_path / "a.wav", 440)
    load = feature_memo._memo_load(librosa.load, memo)
    low, _ = load(clip, sr=None)
    _wav(clip, 880)  # the same name, other sound
    high, _ = load(clip, sr=None)
    assert not np.array_equal(low, high)
    assert np.array_equal(high, librosa.load(clip, sr=None)[0])


def test_other_arguments_are_part_of_the_key(tmp_path: Path, memo) -> None:
    clip = _wav(tmp_path / "a.wav", 440)
    load = feature_memo._memo_load(librosa.load, memo)
    native, sr_native = load(clip, sr=None)
    resampled, sr = load(clip, sr=4000)
    assert (sr_native, sr) == (8000, 4000) and len(resampled) == len(native) // 2


def test_mfcc_is_computed_once_per_signal_and_equals_librosa(tmp_path: Path, memo) -> None:
    y, sr = librosa.load(_wav(tmp_path / "a.wav", 440), sr=None)
    real = _counting(librosa.feature.mfcc)
    mfcc = feature_memo._memo_mfcc(real, memo)
    a = mfcc(y=y, sr=sr, n_mfcc=13)
    b = mfcc(y=y.copy(), sr=sr, n_mfcc=13)
    c = mfcc(y=y, sr=sr, n_mfcc=20)
    assert len(real.calls) == 2 and a.shape[0] == 13 and c.shape[0] == 20
    assert np.array_equal(a, librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13)) and np.array_equal(a, b)
    b[:] = 0
    assert np.array_equal(mfcc(y=y, sr=sr, n_mfcc=13), a)


def test_what_cannot_be_keyed_is_computed_as_usual(tmp_path: Path, memo) -> None:
    clip = _wav(tmp_path / "a.wav", 440)
    real = _counting(librosa.load)
    load = feature_memo._memo_load(real, memo)
    with open(clip, "rb") as fh:
        load(fh, sr=None)  # a file object: no content key without reading it twice
    load(clip, sr=None, dtype=np.float64)  # a type, not a plain value
    load(clip, sr=None, dtype=np.float64)
    assert len(real.calls) == 3 and memo.results == {}
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.wav", sr=None)  # librosa's own error, unchanged


def test_the_memo_holds_at_most_its_budget(tmp_path: Path, memo, monkeypatch) -> None:
    monkeypatch.setattr(feature_memo, "MAX_BYTES", 10_000)
    load = feature_memo._memo_load(librosa.load, memo)
    for i, freq in enumerate((300, 400, 500)):
        load(_wav(tmp_path / f"{i}.wav", freq), sr=None)  # 8000 float32 samples each: 32 KB
    assert memo.results == {} and memo.held == 0
