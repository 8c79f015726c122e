"""The feature pack (grader/data/kernel_features.py) and the kernel's memo answering from it
(grader/inkernel/feature_memo.py): librosa's answers bit for bit, without librosa, and librosa whenever the
pack cannot answer. Real WAV files, real librosa, a real kernel for the last test."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import librosa
import librosa.feature
import nbformat
import numpy as np
import pytest
import soundfile as sf

from grader.data.features import FeatureCache
from grader.data.kernel_features import ARRAY_NAME, INDEX_NAME, feature_pack
from grader.inkernel import feature_memo


def _refuse(*_args, **_kwargs):
    raise AssertionError("librosa was called: the pack should have answered")


def _memo(pack_dir: Path | None, load=_refuse, mfcc=_refuse):
    memo, pack = feature_memo._Memo(), feature_memo.Pack(str(pack_dir) if pack_dir else None)
    return feature_memo._memo_load(load, memo, pack), feature_memo._memo_mfcc(mfcc, memo, pack)


@pytest.fixture
def pack_dir(small_synthetic_dataset: Path, tmp_path: Path) -> Path:
    folder = feature_pack(small_synthetic_dataset, root=tmp_path / "cache", cache=FeatureCache(tmp_path / "mfcc"))
    assert folder is not None
    return folder


def _clips(data: Path) -> list[Path]:
    return sorted((data / "train").glob("*.wav")) + sorted((data / "test").glob("*.wav"))


def test_the_lab_calls_are_answered_from_the_pack_as_librosa_answers_them(small_synthetic_dataset, pack_dir):
    load, mfcc = _memo(pack_dir)
    clips = _clips(small_synthetic_dataset)
    assert len(clips) == 18
    for clip in clips:
        y, sr = load(str(clip), sr=None)
        expected_y, expected_sr = librosa.load(str(clip), sr=None)
        assert sr == expected_sr and y.dtype == expected_y.dtype and np.array_equal(y, expected_y)
        features = mfcc(y=y, sr=sr, n_mfcc=13)
        expected = librosa.feature.mfcc(y=expected_y, sr=expected_sr, n_mfcc=13)
        assert features.dtype == expected.dtype and np.array_equal(features, expected)


def test_other_calls_go_to_librosa(small_synthetic_dataset, pack_dir):
    load, mfcc = _memo(pack_dir, load=librosa.load, mfcc=librosa.feature.mfcc)
    clip = str(_clips(small_synthetic_dataset)[0])
    resampled, sr = load(clip, sr=8000)  # not the lab's call: resampled by librosa
    assert sr == 8000 and np.array_equal(resampled, librosa.load(clip, sr=8000)[0])
    y, native = load(clip, sr=None)
    assert np.array_equal(mfcc(y=y, sr=native, n_mfcc=20), librosa.feature.mfcc(y=y, sr=native, n_mfcc=20))
    louder = y * 2  # audio the pack has never seen
    assert np.array_equal(mfcc(y=louder, sr=native, n_mfcc=13), librosa.feature.mfcc(y=louder, sr=native, n_mfcc=13))


def test_a_stereo_clip_is_decoded_by_librosa_and_its_features_still_come_from_the_pack(tmp_path):
    data = tmp_path / "data"
    (data / "train").mkdir(parents=True)
    t = np.arange(16000) / 16000
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 660 * t)], axis=1)
    sf.write(data / "train" / "stereo.wav", stereo.astype(np.float32), 16000, subtype="PCM_16")
    folder = feature_pack(data, root=tmp_path / "cache", cache=FeatureCache(tmp_path / "mfcc"))
    assert folder is not None
    index = json.loads((folder / INDEX_NAME).read_text())
    assert index["load"] == {} and len(index["mfcc"]) == 1  # soundfile alone would not mix it to mono
    load, mfcc = _memo(folder, load=librosa.load)
    y, sr = load(str(data / "train" / "stereo.wav"), sr=None)
    assert y.ndim == 1 and np.array_equal(mfcc(y=y, sr=sr, n_mfcc=13), librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13))


@pytest.mark.parametrize("damage", ["not json", "wrong shape", "out of range", "bad entry types", "missing"])
def test_a_damaged_pack_leaves_every_answer_to_librosa(small_synthetic_dataset, pack_dir, tmp_path, damage):
    spoilt = tmp_path / "spoilt"
    shutil.copytree(pack_dir, spoilt)
    index = json.loads((spoilt / INDEX_NAME).read_text())
    if damage == "not json":
        (spoilt / INDEX_NAME).write_text("{")
    elif damage == "wrong shape":
        np.save(spoilt / ARRAY_NAME, np.zeros((13, 3), dtype=np.float32))
    elif damage == "out of range":
        index["mfcc"] = {key: [sr, 10**9, 5] for key, (sr, _, _) in index["mfcc"].items()}
        (spoilt / INDEX_NAME).write_text(json.dumps(index))
    elif damage == "bad entry types":
        index["load"] = {key: ["x", None] for key in index["load"]}
        index["mfcc"] = {key: "nonsense" for key in index["mfcc"]}
        (spoilt / INDEX_NAME).write_text(json.dumps(index))
    else:
        (spoilt / ARRAY_NAME).unlink()
    load, mfcc = _memo(spoilt, load=librosa.load, mfcc=librosa.feature.mfcc)
    clip = str(_clips(small_synthetic_dataset)[0])
    y, sr = load(clip, sr=None)
    expected_y, _ = librosa.load(clip, sr=None)
    assert np.array_equal(y, expected_y)
    assert np.array_equal(mfcc(y=y, sr=sr, n_mfcc=13), librosa.feature.mfcc(y=expected_y, sr=sr, n_mfcc=13))


def test_a_pack_is_built_once_per_dataset_listing(small_synthetic_dataset, tmp_path, monkeypatch):
    import grader.data.kernel_features as kernel_features

    cache = FeatureCache(tmp_path / "mfcc")
    first = feature_pack(small_synthetic_dataset, root=tmp_path / "cache", cache=cache)
    monkeypatch.setattr(kernel_features, "_build", _refuse)
    assert feature_pack(small_synthetic_dataset, root=tmp_path / "cache", cache=cache) == first
    copy = tmp_path / "copy"
    shutil.copytree(small_synthetic_dataset, copy)
    monkeypatch.undo()
    assert feature_pack(copy, root=tmp_path / "cache", cache=cache) not in (None, first)  # another listing
    assert feature_pack(tmp_path / "empty", root=tmp_path / "cache", cache=cache) is None


@pytest.mark.kernel
def test_in_a_kernel_the_lab_calls_import_no_signal_stack(small_synthetic_dataset, pack_dir, tmp_path):
    from grader.devices import resolve_device
    from grader.hosting.limits import ExecutionLimits
    from grader.hosting.session import KernelSession
    from grader.hosting.workdir import prepare_workdir, remove_workdir
    from grader.paths import REFERENCE_NOTEBOOK

    clip = sorted((small_synthetic_dataset / "train").glob("*.wav"))[0].name
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import sys, librosa, numpy as np\n"
        f"y, sr = librosa.load('data/train/{clip}', sr=None)\n"
        "m = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13)\n"
        "np.save('out.npy', m)\n"
        "print(sr, m.shape, 'scipy.signal' in sys.modules, 'numba' in sys.modules)")])
    workdir = prepare_workdir(REFERENCE_NOTEBOOK, small_synthetic_dataset, parent=tmp_path)
    try:
        limits = ExecutionLimits(cell_timeout_s=60, notebook_timeout_s=120, epoch_cap=2)
        with KernelSession(workdir, resolve_device("cpu"), limits, feature_pack=pack_dir) as session:
            result = session.run_notebook(nb)
            saved = np.load(workdir / "out.npy", allow_pickle=False)
        expected_y, sr = librosa.load(str(small_synthetic_dataset / "train" / clip), sr=None)
        expected = librosa.feature.mfcc(y=expected_y, sr=sr, n_mfcc=13)
        text = "".join(o.get("text", "") for o in result.notebook.cells[0].outputs)
        assert text == f"{sr} {expected.shape} False False\n"
        assert np.array_equal(saved, expected)
    finally:
        remove_workdir(workdir)
