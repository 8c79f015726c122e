"""lstm.train end to end: real child processes run the kernel probe on real (synthetic) MFCCs.

The runner is grader.trusted_runner.ProcessRunner, a persistent `python` child that
execs the "student" source and then the probe code, exchanging .npy/JSON files
in a temporary workdir, as a Jupyter kernel would.
"""
from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from grader.checks.training import (
    TrainingData,
    TrainProtocol,
    load_training_data,
    run_training_check,
    to_check_result,
    train_lstm,
)
from grader.data.features import FeatureCache
from grader.messages import render
from grader.result import Status
from grader.rubric import Training, load_rubric
from grader.trusted_runner import ProcessRunner, reference_source

pytestmark = pytest.mark.kernel  # lstm.train in a ProcessRunner or a kernel

FAST = Training(threshold=0.85, max_epochs=12, learning_rate=0.01, batch_size=16, time_budget_s=60)


def lab_protocol(**overrides: object) -> TrainProtocol:
    """The lab rubric's training protocol on the CPU, with `overrides` (seed, max_epochs, ...)."""
    seed = int(overrides.pop("seed", 0))  # type: ignore[call-overload]
    base = TrainProtocol.from_rubric(load_rubric(None).training, device="cpu", seed=seed)
    return dataclasses.replace(base, **overrides)


@pytest.fixture(scope="module")
def feature_cache(tmp_path_factory: pytest.TempPathFactory) -> FeatureCache:
    # One cache for every lstm.train test module: MFCCs of the same clips are computed once.
    return FeatureCache(tmp_path_factory.getbasetemp() / "training-mfcc")


@pytest.fixture(scope="module")
def data(default_synthetic_dataset: Path, feature_cache: FeatureCache) -> TrainingData:
    return load_training_data(default_synthetic_dataset, feature_cache)


@pytest.fixture(scope="module")
def child(tmp_path_factory: pytest.TempPathFactory):
    """One child process for the module (starting torch costs seconds); each test redefines its classes."""
    with ProcessRunner(tmp_path_factory.mktemp("kernel")) as runner:
        yield runner


_RESET = "for __k in [k for k in globals() if not k.startswith('__')]:\n    del globals()[__k]\n"


@contextlib.contextmanager
def _runner(child: ProcessRunner, source: str):
    """The shared child with a fresh set of user names: just `source`."""
    result = child.run_code(_RESET + source, 60)
    assert result.ok, result.error_value
    yield child


def test_reference_passes_and_reports_the_curve(child: ProcessRunner, default_synthetic_dataset: Path,
                                                feature_cache: FeatureCache) -> None:
    with _runner(child, reference_source()) as runner:
        result = run_training_check(runner, default_synthetic_dataset, FAST, device="cpu", seed=0, cache=feature_cache)
    d = result.details
    assert result.status is Status.PASSED, render(result.message, "en")
    assert d["accuracy"] >= 0.85 and d["best_accuracy"] == max(p["accuracy"] for p in d["curve"])
    assert 1 <= d["epochs"] == len(d["curve"]) <= FAST.max_epochs
    assert [p["epoch"] for p in d["curve"]] == list(range(1, d["epochs"] + 1))
    assert all(isinstance(p["loss"], float) for p in d["curve"])
    assert d["threshold"] == 0.85 and d["seed"] == 0 and d["duration_s"] > 0
    assert "%" in render(result.message, "en") and render(result.message, "zh")


def test_same_seed_same_curve(child: ProcessRunner, data: TrainingData) -> None:
    protocol = lab_protocol(max_epochs=2, early_stop=False, seed=7)
    with _runner(child, reference_source()) as runner:
        first, second = train_lstm(runner, data, protocol), train_lstm(runner, data, protocol)
    assert [p.accuracy for p in first.curve] == [p.accuracy for p in second.curve]
    assert [p.loss for p in first.curve] == pytest.approx([p.loss for p in second.curve], rel=1e-5)


def test_plain_rnn_fails_with_best_accuracy_and_curve(child: ProcessRunner, data: TrainingData) -> None:
    with _runner(child, reference_source() + "\nCustomLSTM = CustomRNN\n") as runner:
        run = train_lstm(runner, data, lab_protocol(max_epochs=3, seed=0))
    result = to_check_result(run)
    assert result.status is Status.FAILED
    assert result.details["epochs"] == 3 and len(result.details["curve"]) == 3
    assert result.details["best_accuracy"] < 0.85
    assert "did not learn" in render(result.message, "en")


def test_missing_class_is_skipped(child: ProcessRunner, data: TrainingData) -> None:
    with _runner(child, "import torch\n") as runner:
        result = to_check_result(train_lstm(runner, data, lab_protocol(seed=0)))
    assert result.status is Status.SKIPPED
    assert result.message is not None and result.message.key == "training.missing_class"


CRASH_IN_INIT = """
import torch.nn as nn
class CustomLSTM(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        raise ValueError("student bug in __init__")
"""

CRASH_IN_FORWARD = """
import torch, torch.nn as nn
class CustomLSTM(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.W = nn.Parameter(torch.zeros(input_size, output_size))
    def forward(self, x):
        return x[-1] @ self.W.T   # (13, 3).T: a shape bug that raises
"""

WRONG_SHAPE = """
import torch, torch.nn as nn
class CustomLSTM(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.W = nn.Parameter(torch.zeros(input_size, output_size))
    def forward(self, x):
        return x @ self.W        # logits at every step: (seq, batch, 3)
"""


@pytest.mark.parametrize(("source", "key", "words"), [
    (CRASH_IN_INIT, "training.construct_error", "student bug in __init__"),
    (CRASH_IN_FORWARD, "training.train_error", "RuntimeError"),
    (WRONG_SHAPE, "training.shape_error", "expected (16, 3)"),
])
def test_a_crashing_or_misshapen_class_is_an_error(child: ProcessRunner, data: TrainingData, source: str, key: str,
                                                   words: str) -> None:
    with _runner(child, source) as runner:
        result = to_check_result(train_lstm(runner, data, lab_protocol(seed=0)))
    assert result.status is Status.ERROR
    assert result.message is not None and result.message.key == key
    assert words in render(result.message, "en") and words in render(result.message, "zh")


def test_a_model_too_slow_for_one_epoch_fails_in_budget(tmp_path: Path, data: TrainingData) -> None:
    slow = reference_source() + "\nimport time\n_fwd = CustomLSTM.forward\nCustomLSTM.forward = lambda self, x: (time.sleep(5), _fwd(self, x))[1]\n"
    with ProcessRunner(tmp_path, slow) as runner:
        runner.run_code("pass", 60)  # start the child outside the budget
        run = train_lstm(runner, data, lab_protocol(seed=0, time_budget_s=1.0))
    result = to_check_result(run)
    assert result.status is Status.FAILED and result.message is not None
    assert result.message.key == "training.too_slow" and run.duration_s < 4


class SnapshottingRunner(ProcessRunner):
    """Records every file in the workdir before and after each call (a real child all the same)."""

    def __init__(self, workdir: Path, prelude: str) -> None:
        super().__init__(workdir, prelude)
        self.seen: dict[str, bytes] = {}

    def _snapshot(self) -> None:
        for path in self.workdir.rglob("*"):
            if path.is_file():
                self.seen[str(path.relative_to(self.workdir))] = path.read_bytes()

    def run_code(self, code: str, timeout_s: float):  # type: ignore[override]
        self._snapshot()
        try:
            return super().run_code(code, timeout_s)
        finally:
            self._snapshot()


def test_heldout_labels_never_reach_the_workdir(tmp_path: Path, data: TrainingData) -> None:
    with SnapshottingRunner(tmp_path, reference_source()) as runner:
        run = train_lstm(runner, data, lab_protocol(max_epochs=2, early_stop=False, seed=3))
    assert run.outcome == "completed" and run.heldout_order is not None
    names = {Path(n).name for n in runner.seen}
    assert {"train_x.npy", "train_len.npy", "train_y.npy", "heldout_x.npy", "heldout_len.npy"} <= names
    assert not [n for n in names if "label" in n or n.startswith("heldout_y")]
    forbidden = [data.heldout_y, data.heldout_y[run.heldout_order]]
    for name, raw in runner.seen.items():
        if name.endswith(".npy"):
            import io

            arr = np.load(io.BytesIO(raw), allow_pickle=False)
            for labels in forbidden:
                assert not (arr.shape == labels.shape and np.array_equal(arr.astype(np.int64), labels)
                            and not name.split("/")[-1].startswith("pred_")), name
        for labels in forbidden:
            assert labels.astype(np.int64).tobytes() not in raw or name.split("/")[-1].startswith("pred_"), name
    # The run's folder is removed afterwards; nothing is left for a later cell to read.
    assert not list(tmp_path.glob("grader-train-*"))


def test_hostile_globals_do_not_disturb_the_probe(child: ProcessRunner, data: TrainingData) -> None:
    hostile = reference_source() + "\nnp = None\njson = 3\nmain = print\nos = None\n__grader_mod = 1\n"
    with _runner(child, hostile) as runner:
        run = train_lstm(runner, data, lab_protocol(max_epochs=1, early_stop=False, seed=0))
        left = runner.run_code("assert np is None and json == 3 and main is print\n"
                               "assert not [k for k in globals() if k.startswith('__grader')]\n", 30)
    assert run.outcome == "completed", run.error
    assert left.ok, left.error_value


def test_forged_predictions_are_rejected(child: ProcessRunner, data: TrainingData) -> None:
    # A notebook that patched numpy.save before grading: the probe's own save
    # then writes whatever the student wants. The grader must not accept it.
    forger = reference_source() + (
        "\nimport numpy\n_save = numpy.save\n"
        "def _forged(path, arr, allow_pickle=False):\n"
        "    _save(path, numpy.zeros(len(arr), dtype=numpy.float64), allow_pickle=False)\n"
        "numpy.save = _forged\n"
    )
    with _runner(child, forger) as runner:
        try:
            result = to_check_result(train_lstm(runner, data, lab_protocol(seed=0)))
        finally:
            runner.run_code("numpy.save = _save", 30)
    assert result.status is Status.ERROR
    assert result.message is not None and result.message.key == "training.bad_output"
    assert "int64" in result.details["error"]


def test_protocol_follows_the_rubric() -> None:
    training = dataclasses.replace(FAST, threshold=0.7, max_epochs=5)
    p = TrainProtocol.from_rubric(training, device="cuda:0", seed=4)
    assert (p.threshold, p.max_epochs, p.learning_rate, p.batch_size, p.device, p.seed, p.early_stop) == \
        (0.7, 5, 0.01, 16, "cuda:0", 4, True)


def test_fresh_heldout_clips_are_new_balanced_and_secret_per_run():
    from grader.checks.heldout import fresh_synthetic

    a, b = fresh_synthetic(1, per_class=4), fresh_synthetic(2, per_class=4)
    assert a.source == "fresh_synthetic" and a.hidden_from_kernel
    assert np.bincount(a.labels).tolist() == [4, 4, 4]
    assert all(f.ndim == 2 and f.shape[1] == 13 and f.dtype == np.float32 for f in a.features)
    assert not any(np.array_equal(x, y) for x in a.features for y in b.features if x.shape == y.shape)


def test_a_tas_holdout_split_is_used_and_never_copied_into_the_kernels_folder(tmp_path, small_synthetic_dataset):
    import shutil

    from grader.checks.heldout import choose_heldout
    from grader.hosting.workdir import prepare_workdir, remove_workdir

    data = tmp_path / "data"
    shutil.copytree(small_synthetic_dataset, data)
    assert choose_heldout(data, synthetic=False).source == "test_split"
    assert not choose_heldout(data, synthetic=False).hidden_from_kernel
    shutil.copytree(data / "test", data / "holdout")
    shutil.copy(data / "test.csv", data / "holdout.csv")
    chosen = choose_heldout(data, synthetic=False)
    assert chosen.source == "holdout_split" and chosen.hidden_from_kernel and len(chosen.labels) == 6
    notebook = tmp_path / "nb.ipynb"
    notebook.write_text("{}", encoding="utf-8")
    workdir = prepare_workdir(notebook, data, parent=tmp_path / "runs")
    try:
        assert (workdir / "data" / "test.csv").is_file() and (workdir / "data" / "test").is_dir()
        assert not (workdir / "data" / "holdout.csv").exists() and not (workdir / "data" / "holdout").exists()
    finally:
        assert remove_workdir(workdir) and list((tmp_path / "runs").iterdir()) == []
