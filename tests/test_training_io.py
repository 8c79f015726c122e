"""What crosses the trust boundary of lstm.train: files in, files out, all validated."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from grader.checks.training import (
    BadOutput,
    TrainingData,
    accuracy,
    probe_code,
    reached,
    read_predictions,
    read_report,
    write_inputs,
)
from grader.untrusted_fs import UntrustedDir


def _data(n_train: int = 5, n_held: int = 4) -> TrainingData:
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(int(rng.integers(3, 9)), 13)).astype(np.float32) for _ in range(n_train + n_held)]
    return TrainingData(seqs[:n_train], np.arange(n_train, dtype=np.int64) % 3,
                        seqs[n_train:], np.array([2, 0, 1, 2][:n_held], dtype=np.int64))


def test_inputs_are_packed_plain_arrays_without_heldout_labels(tmp_path: Path) -> None:
    data = _data()
    with UntrustedDir.open(tmp_path) as folder:
        order = write_inputs(folder, data, seed=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "heldout_len.npy", "heldout_x.npy", "train_len.npy", "train_x.npy", "train_y.npy"]
    x = np.load(tmp_path / "heldout_x.npy", allow_pickle=False)
    lengths = np.load(tmp_path / "heldout_len.npy", allow_pickle=False)
    assert x.dtype == np.float32 and lengths.dtype == np.int64 and x.shape == (lengths.sum(), 13)
    # The packed held-out clips are the originals, in the shuffled order returned.
    starts = np.cumsum(lengths) - lengths
    for k, i in enumerate(order):
        np.testing.assert_array_equal(x[starts[k]: starts[k] + lengths[k]], data.heldout_x[i])
    assert sorted(order.tolist()) == list(range(4))


def _preds(path: Path, n: int) -> np.ndarray:
    with UntrustedDir.open(path.parent) as folder:
        return read_predictions(folder, path.name, n)


def _report(path: Path, epoch: int) -> dict:
    with UntrustedDir.open(path.parent) as folder:
        return read_report(folder, path.name, epoch)


def _save(path: Path, arr: np.ndarray) -> Path:
    np.save(path, arr, allow_pickle=False)
    return path


def test_good_predictions_are_read(tmp_path: Path) -> None:
    preds = _preds(_save(tmp_path / "p.npy", np.array([0, 1, 2, 1], dtype=np.int64)), 4)
    assert accuracy(preds, np.array([0, 1, 2, 2])) == 0.75


@pytest.mark.parametrize(("arr", "why"), [
    (np.array([0, 1, 2], dtype=np.int64), "shape"),
    (np.array([0.0, 1.0, 2.0, 1.0]), "int64"),
    (np.array([0, 1, 2, 1], dtype=np.int32), "int64"),
    (np.array([[0, 1], [2, 1]], dtype=np.int64), "shape"),
    (np.array([0, 1, 3, 1], dtype=np.int64), "outside"),
    (np.array([0, -1, 2, 1], dtype=np.int64), "outside"),
])
def test_malformed_predictions_are_rejected(tmp_path: Path, arr: np.ndarray, why: str) -> None:
    with pytest.raises(BadOutput, match=why):
        _preds(_save(tmp_path / "p.npy", arr), 4)


def test_pickles_symlinks_fifos_and_huge_files_are_rejected(tmp_path: Path) -> None:
    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([0, 1, 2, {"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(BadOutput):
        _preds(pickled, 4)
    target = _save(tmp_path / "real.npy", np.zeros(4, dtype=np.int64))
    (tmp_path / "link.npy").symlink_to(target)
    with pytest.raises(BadOutput):
        _preds(tmp_path / "link.npy", 4)
    os.mkfifo(tmp_path / "fifo.npy")
    with pytest.raises(BadOutput, match="regular"):  # refused at once, never waited on
        _preds(tmp_path / "fifo.npy", 4)
    with pytest.raises(BadOutput, match="bytes"):
        _preds(_save(tmp_path / "big.npy", np.zeros(10**6, dtype=np.int64)), 4)
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    with pytest.raises(BadOutput, match="npy"):
        _preds(tmp_path / "junk.npy", 4)
    with pytest.raises(BadOutput):
        _preds(tmp_path / "absent.npy", 4)


@pytest.mark.parametrize("report", [
    {"ok": True, "epoch": 2, "loss": 0.5},          # another epoch's report
    {"ok": True, "epoch": 1, "loss": "0.5"},
    {"ok": True, "epoch": 1, "loss": True},
    {"ok": "yes", "epoch": 1},
    {"ok": False, "epoch": 1, "phase": "rm -rf", "error": "x"},
    [1, 2, 3],
])
def test_malformed_reports_are_rejected(tmp_path: Path, report: object) -> None:
    path = tmp_path / "report_1.json"
    path.write_text(json.dumps(report))
    with pytest.raises(BadOutput):
        _report(path, 1)


def test_reports_are_read(tmp_path: Path) -> None:
    path = tmp_path / "report_1.json"
    path.write_text(json.dumps({"ok": True, "epoch": 1, "loss": None}))
    assert _report(path, 1) == {"ok": True, "loss": None}
    path.write_text(json.dumps({"ok": False, "epoch": 1, "phase": "shape", "error": "e" * 9000}))
    assert _report(path, 1) == {"ok": False, "phase": "shape", "error": "e" * 500}
    path.write_text("NaN")
    with pytest.raises(BadOutput):
        _report(path, 1)


def test_threshold_comparison_tolerates_rounding() -> None:
    assert reached(17 / 20, 0.85) and reached(51 / 60, 0.85) and not reached(50 / 60, 0.85)


def test_probe_code_compiles_and_names_only_customlstm() -> None:
    code = probe_code({"token": "ab", "dir": "/x", "epoch": 1})
    compile(code, "<probe>", "exec")
    assert "CustomLSTM" in code and "__grader_mod.main(" in code


def test_inputs_are_never_written_through_a_planted_link(tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    kernel_folder = tmp_path / "k"
    kernel_folder.mkdir()
    (kernel_folder / "train_x.npy").symlink_to(host / "train_x.npy")
    with UntrustedDir.open(kernel_folder) as folder, pytest.raises(OSError):
        write_inputs(folder, _data(), seed=1)
    assert list(host.iterdir()) == []


def test_a_deeply_nested_report_is_bad_output(tmp_path: Path) -> None:
    path = tmp_path / "report_1.json"
    path.write_text("[" * 60_000 + "]" * 60_000)
    with pytest.raises(BadOutput):
        _report(path, 1)


def test_accuracy_on_clips_the_notebook_could_see_is_said_in_plain_words() -> None:
    from grader.checks.training import _said_where_measured
    from grader.messages import Msg, render
    from grader.result import CheckResult, Status

    params = {"accuracy": 0.9, "epochs": 3, "threshold": 0.8, "best": 0.9, "budget": 120}
    seen = _said_where_measured(CheckResult("lstm.train", Status.PASSED, Msg("training.passed", params), details={}))
    assert seen.message.key == "training.passed_seen" and seen.details["measured_on"]
    assert "could also see" in render(seen.message, "en") and "notebook 也能看到" in render(seen.message, "zh")
    error = CheckResult("lstm.train", Status.ERROR, Msg("training.kernel_died", {"epoch": 1}))
    assert _said_where_measured(error) is error
