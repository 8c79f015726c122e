"""MFCC features: the lab's exact recipe, and a content-addressed, pickle-free, atomic disk cache."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import librosa
import numpy as np
import pytest

from grader.data import features as feat
from grader.data.features import FeatureCache, compute_mfcc, load_split
from grader.data.layout import LABELS


@pytest.fixture
def wav(small_synthetic_dataset: Path, tmp_path: Path) -> Path:
    """A private copy of one synthetic clip, free to rewrite."""
    return Path(shutil.copy(small_synthetic_dataset / "train" / "000.wav", tmp_path / "clip.wav"))


@pytest.fixture
def cache(tmp_path: Path) -> FeatureCache:
    return FeatureCache(tmp_path / "cache")


def test_mfcc_is_computed_exactly_as_the_lab_does(wav: Path) -> None:
    y, sr = librosa.load(str(wav), sr=None)
    lab = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13).T
    ours = compute_mfcc(wav)
    assert ours.dtype == np.float32 and ours.shape == lab.shape and ours.shape[1] == 13
    np.testing.assert_array_equal(ours, lab)


def test_cache_hit_returns_an_identical_array(wav: Path, cache: FeatureCache) -> None:
    first = cache.get(wav)
    second = cache.get(wav)
    assert (cache.misses, cache.hits) == (1, 1)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(second, compute_mfcc(wav))
    assert second.dtype == np.float32


def test_cache_key_changes_when_the_file_bytes_change(wav: Path, cache: FeatureCache, small_synthetic_dataset: Path) -> None:
    before = cache.key(wav)
    cache.get(wav)
    shutil.copy(small_synthetic_dataset / "train" / "001.wav", wav)  # same name, new content
    assert cache.key(wav) != before
    fresh = cache.get(wav)
    assert cache.misses == 2
    np.testing.assert_array_equal(fresh, compute_mfcc(wav))


def test_cache_key_follows_content_not_name(wav: Path, cache: FeatureCache, tmp_path: Path) -> None:
    twin = Path(shutil.copy(wav, tmp_path / "renamed.wav"))
    assert cache.key(twin) == cache.key(wav)


def test_cache_key_covers_the_librosa_version(wav: Path, cache: FeatureCache, monkeypatch) -> None:
    before = cache.key(wav)
    monkeypatch.setattr(librosa, "__version__", "0.0.0-other")
    assert cache.key(wav) != before


def test_entries_are_plain_npy_files_loadable_without_pickle(wav: Path, cache: FeatureCache) -> None:
    cache.get(wav)
    (entry,) = list(cache.root.rglob("*.npy"))
    assert entry.read_bytes().startswith(b"\x93NUMPY")
    np.testing.assert_array_equal(np.load(entry, allow_pickle=False), compute_mfcc(wav))


def test_a_pickled_entry_is_never_unpickled(wav: Path, cache: FeatureCache) -> None:
    entry = cache.entry_path(cache.key(wav))
    entry.parent.mkdir(parents=True)
    np.save(entry, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    np.testing.assert_array_equal(cache.get(wav), compute_mfcc(wav))  # recomputed, not loaded
    assert cache.misses == 1
    np.load(entry, allow_pickle=False)  # and replaced by a plain array


def test_a_damaged_entry_is_recomputed(wav: Path, cache: FeatureCache) -> None:
    good = cache.get(wav)
    entry = cache.entry_path(cache.key(wav))
    entry.write_bytes(entry.read_bytes()[:50])
    np.testing.assert_array_equal(cache.get(wav), good)
    assert cache.misses == 2


def test_entry_appears_only_whole_via_rename(wav: Path, cache: FeatureCache, monkeypatch) -> None:
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        # At the moment of the rename the temp file is complete and sits beside its target.
        seen.append((Path(src).parent == Path(dst).parent, np.load(src, allow_pickle=False).shape, Path(dst).exists()))
        return real_replace(src, dst)

    monkeypatch.setattr(feat.os, "replace", spy)
    arr = cache.get(wav)
    assert seen == [(True, arr.shape, False)]


def test_a_failed_write_leaves_no_entry_and_no_temp_file(wav: Path, cache: FeatureCache, monkeypatch) -> None:
    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(feat.np, "save", broken_save)
    with pytest.raises(OSError):
        cache.get(wav)
    assert [p for p in cache.root.rglob("*") if p.is_file()] == []


def test_default_root_honours_grader_cache_dir(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GRADER_CACHE_DIR", str(tmp_path / "c"))
    assert FeatureCache().root == tmp_path / "c" / "mfcc"


def test_numba_gets_a_cache_dir() -> None:
    assert os.environ.get("NUMBA_CACHE_DIR")


def test_load_split_keeps_csv_order_and_maps_labels(small_synthetic_dataset: Path, cache: FeatureCache) -> None:
    import pandas as pd

    split = load_split(small_synthetic_dataset, "test", cache)
    frame = pd.read_csv(small_synthetic_dataset / "test.csv")
    assert split.filenames == list(frame["filename"])
    assert split.labels.dtype == np.int64
    assert split.labels.tolist() == [LABELS[c] for c in frame["class"]]
    assert len(split.features) == len(frame) and all(f.shape[1] == 13 for f in split.features)
    assert cache.misses == len(frame)
    load_split(small_synthetic_dataset, "test", cache)
    assert cache.hits == len(frame)


def test_load_split_refuses_an_unknown_class_with_a_clear_error(small_synthetic_dataset: Path, tmp_path: Path, cache: FeatureCache) -> None:
    from grader.errors import DatasetError

    data = Path(shutil.copytree(small_synthetic_dataset, tmp_path / "data"))
    (data / "test.csv").write_text("filename,class\n000.wav,cow\n")
    with pytest.raises(DatasetError, match="cow"):
        load_split(data, "test", cache)
