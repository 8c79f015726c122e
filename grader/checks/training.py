"""The `lstm.train` check: the grader trains the student's CustomLSTM with its own protocol.

Trusted side. The kernel only ever sees train features + labels and held-out
features (no labels), as plain .npy files; it sends back held-out predictions
and a mean loss per epoch (grader/inkernel/train_probe.py). Accuracy, the curve
and the stop decision are computed here. Protocol and the measurements behind
each choice: docs/training-check.md.

    run_training_check(runner, data_dir, rubric.training, device="cpu") -> CheckResult

Longer than most modules because the protocol's trusted half is one sequence
(write the data, run an epoch, read the kernel's word back through untrusted_fs,
recompute, decide); the kernel's half is train_probe.py, the weights' check
lstm_predictions.py, the held-out split heldout.py.
"""
from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from grader.checks.lstm_predictions import WEIGHT_NAMES, compare, length_batches, read_weights
from grader.harvest import KernelRunner
from grader.inkernel import TRAIN_PROBE_SOURCE
from grader.lab_api import LAB_SIZES
from grader.messages import Msg
from grader.plain_numbers import finite_float
from grader.report.results import CurvePoint, TrainingDetails
from grader.result import CheckResult, Status
from grader.rubric import Training
from grader.untrusted_fs import UnsafeFile, UntrustedDir, held_workdir, remove_child

if TYPE_CHECKING:  # librosa and the held-out split load only where a run needs them
    from grader.checks.heldout import HeldOut
    from grader.data.features import FeatureCache

log = logging.getLogger(__name__)

CHECK_ID = "lstm.train"
PROBE_SOURCE_PATH = TRAIN_PROBE_SOURCE
# The lab's sizes: 13 MFCCs in, hidden 32, cat/dog/bird out.
INPUT_SIZE, HIDDEN_SIZE, OUTPUT_SIZE = LAB_SIZES.as_args()
# Largest input file the probe accepts (the real data.zip's MFCCs are ~10 MB).
MAX_INPUT_BYTES = 512 * 2**20
MAX_REPORT_BYTES = 64 * 2**10
MAX_WEIGHT_BYTES = 2 * 2**20  # one trained weight as .npy; the lab's largest is 32 x 32 float64
_NPY_HEADER_SLACK = 4096


@dataclass(frozen=True)
class TrainProtocol:
    """Everything that decides a training run; the same for every student of a run."""

    threshold: float
    max_epochs: int
    learning_rate: float
    batch_size: int
    time_budget_s: float
    device: str
    seed: int
    early_stop: bool = True  # calibration turns it off to see the whole curve

    @classmethod
    def from_rubric(cls, training: Training, *, device: str, seed: int, early_stop: bool = True) -> TrainProtocol:
        return cls(
            threshold=float(training.threshold),
            max_epochs=int(training.max_epochs),
            learning_rate=float(training.learning_rate),
            batch_size=int(training.batch_size),
            time_budget_s=float(training.time_budget_s),
            device=device,
            seed=seed,
            early_stop=early_stop,
        )


@dataclass(frozen=True)
class TrainingData:
    """Features of both splits (lists of (frames, 13) float32) and their int64 labels."""

    train_x: list[np.ndarray]
    train_y: np.ndarray
    heldout_x: list[np.ndarray]
    heldout_y: np.ndarray  # stays in the grader's process, always

    @property
    def chance(self) -> float:
        """Accuracy of always answering the held-out set's most common class."""
        counts = np.bincount(self.heldout_y, minlength=OUTPUT_SIZE)
        return float(counts.max() / counts.sum())


@dataclass(frozen=True)
class EpochPoint:
    epoch: int
    loss: float | None  # None when the kernel's loss was not finite
    accuracy: float

    def to_json(self) -> CurvePoint:
        return {"epoch": self.epoch, "loss": self.loss, "accuracy": self.accuracy}


@dataclass
class TrainingRun:
    """What one run of the protocol produced, before it becomes a CheckResult.

    `outcome`: "passed" (threshold reached, early stop), "completed" (all epochs
    ran, or early stop off and the budget held), "budget" (time ran out),
    or a failure kind: "missing", "construct", "shape", "train", "predict",
    "timeout", "kernel_died", "bad_output", "state", "input", "probe".
    """

    protocol: TrainProtocol
    outcome: str
    curve: list[EpochPoint] = field(default_factory=list)
    duration_s: float = 0.0
    error: str = ""
    failed_epoch: int = 0
    # Where the held-out clips went in the order sent to the kernel (tests use it).
    heldout_order: np.ndarray | None = None
    # The last epoch's predictions, and how they compare with the reference on the trained weights (TA grading).
    last_predictions: np.ndarray | None = None
    agreement: Any = None

    @property
    def best_accuracy(self) -> float:
        return max((p.accuracy for p in self.curve), default=0.0)

    @property
    def epochs(self) -> int:
        return len(self.curve)

    @property
    def reached(self) -> bool:
        return reached(self.best_accuracy, self.protocol.threshold)


def reached(accuracy: float, threshold: float) -> bool:
    # Accuracies are k/n; the tolerance keeps 17/20 >= 0.85 from failing on rounding.
    return accuracy >= threshold - 1e-9


# --- data --------------------------------------------------------------------


def load_training_data(data_dir: Path, cache: FeatureCache | None = None,
                       heldout: HeldOut | None = None) -> TrainingData:
    """The train split to learn from, and held-out clips to measure on.

    `heldout` (a grader.checks.heldout.HeldOut) is chosen by the caller after the
    notebook ran; without one, the dataset's holdout split if it has one, else
    its test split (what calibration measures on).
    """
    from grader.checks.heldout import choose_heldout
    from grader.data.features import FeatureCache, load_split

    cache = cache or FeatureCache()
    train = load_split(Path(data_dir), "train", cache)
    if heldout is None:
        heldout = choose_heldout(Path(data_dir), synthetic=False, cache=cache)
    return TrainingData(train.features, train.labels, heldout.features, heldout.labels)


def _pack(sequences: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Variable-length sequences as one (sum of frames, 13) array plus their lengths."""
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    frames = np.concatenate([np.asarray(s, dtype=np.float32) for s in sequences], axis=0)
    return np.ascontiguousarray(frames, dtype=np.float32), lengths


def write_inputs(folder: UntrustedDir, data: TrainingData, seed: int) -> np.ndarray:
    """Write what the kernel may see; returns the held-out order used.

    The held-out clips go in a seeded random order, so their position in the
    dataset's csv (sorted by class in some datasets) says nothing about labels.
    """
    order = np.random.default_rng([seed, 0x7E57]).permutation(len(data.heldout_x))
    train_x, train_len = _pack(data.train_x)
    held_x, held_len = _pack([data.heldout_x[i] for i in order])
    folder.save_npy("train_x.npy", train_x)
    folder.save_npy("train_len.npy", train_len)
    folder.save_npy("train_y.npy", np.asarray(data.train_y, dtype=np.int64))
    folder.save_npy("heldout_x.npy", held_x)
    folder.save_npy("heldout_len.npy", held_len)
    return order


# --- reading what the kernel wrote (untrusted) ---------------------------------


class BadOutput(Exception):
    """The kernel's files are missing, oversized, not plain files, or malformed."""


def _read(folder: UntrustedDir, name: str, max_bytes: int) -> bytes:
    try:
        return folder.read_bytes(name, max_bytes)
    except UnsafeFile as exc:
        raise BadOutput(exc.strerror or str(exc)) from None


def read_predictions(folder: UntrustedDir, name: str, n: int) -> np.ndarray:
    """The held-out predictions: exactly n int64 class indices in [0, OUTPUT_SIZE)."""
    import io

    raw = _read(folder, name, n * 8 + _NPY_HEADER_SLACK)
    try:
        preds = np.load(io.BytesIO(raw), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise BadOutput(f"{name}: not a .npy array ({exc})") from None
    if not isinstance(preds, np.ndarray) or preds.dtype != np.dtype("<i8") or preds.shape != (n,):
        shape = getattr(preds, "shape", None)
        dtype = getattr(preds, "dtype", type(preds).__name__)
        raise BadOutput(f"{name}: expected int64 of shape ({n},), got {dtype} {shape}")
    if n and (preds.min() < 0 or preds.max() >= OUTPUT_SIZE):
        raise BadOutput(f"{name}: class indices outside 0..{OUTPUT_SIZE - 1}")
    return preds


_PHASES = {"missing", "construct", "shape", "train", "predict", "state", "input", "probe"}


def read_report(folder: UntrustedDir, name: str, epoch: int) -> dict[str, Any]:
    """The probe's JSON report for `epoch`, checked field by field."""
    try:
        report = json.loads(_read(folder, name, MAX_REPORT_BYTES).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: JSON nested thousands deep
        raise BadOutput(f"{name}: not JSON ({type(exc).__name__})") from None
    if not isinstance(report, dict) or report.get("epoch") != epoch or not isinstance(report.get("ok"), bool):
        raise BadOutput(f"{name}: not a report for epoch {epoch}")
    if report["ok"]:
        loss = report.get("loss")
        if loss is not None and finite_float(loss) is None:
            raise BadOutput(f"{name}: loss {str(loss)[:50]} is not a finite number")
        return {"ok": True, "loss": None if loss is None else float(loss)}
    phase, error = report.get("phase"), report.get("error")
    if phase not in _PHASES or not isinstance(error, str):
        raise BadOutput(f"{name}: unknown failure report")
    return {"ok": False, "phase": phase, "error": error[:500]}




def accuracy(preds: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(preds == labels)) if len(labels) else 0.0


# --- the loop --------------------------------------------------------------------


def probe_source() -> str:
    return PROBE_SOURCE_PATH.read_text(encoding="utf-8")


def probe_code(config: dict[str, Any]) -> str:
    """The code sent to the kernel: load the probe into its own module, run one epoch.

    The probe lives in a private module object (cached in sys.modules between
    calls), so the student's globals never shadow its names and its names never
    overwrite the student's. Only `CustomLSTM` is read from the student's namespace.
    """
    return (
        "import sys as __grader_sys, types as __grader_types\n"
        "__grader_mod = __grader_sys.modules.get('__grader_train_probe__')\n"
        f"if __grader_mod is None or getattr(__grader_mod, '__grader_token__', None) != {config['token']!r}:\n"
        "    __grader_mod = __grader_types.ModuleType('__grader_train_probe__')\n"
        f"    __grader_mod.__grader_token__ = {config['token']!r}\n"
        f"    exec(compile({probe_source()!r}, 'grader/inkernel/train_probe.py', 'exec'), __grader_mod.__dict__)\n"
        "    __grader_sys.modules['__grader_train_probe__'] = __grader_mod\n"
        "try:\n"
        "    __grader_cls = CustomLSTM\n"
        "except NameError:\n"
        "    __grader_cls = None\n"
        f"__grader_mod.main(__grader_mod._json.loads({json.dumps(config)!r}), __grader_cls)\n"
        "del __grader_sys, __grader_types, __grader_mod, __grader_cls\n"
    )


def _config(protocol: TrainProtocol, token: str, kernel_dir: str, epoch: int, save_weights: bool) -> dict[str, Any]:
    return {
        "token": token, "dir": kernel_dir, "epoch": epoch, "seed": protocol.seed,
        "device": protocol.device, "learning_rate": protocol.learning_rate,
        "batch_size": protocol.batch_size, "input_size": INPUT_SIZE,
        "hidden_size": HIDDEN_SIZE, "output_size": OUTPUT_SIZE, "max_bytes": MAX_INPUT_BYTES,
        "save_weights": list(WEIGHT_NAMES) if save_weights else None,
    }


def _one_epoch(runner: KernelRunner, folder: UntrustedDir, code: str, epoch: int, labels: np.ndarray,
               timeout_s: float, run: TrainingRun) -> tuple[EpochPoint | None, str, str]:
    """Run one epoch in the kernel: (point, failure kind, error text); point None on failure."""
    result = runner.run_code(code, timeout_s)
    if result.timed_out:
        return None, "timeout", ""
    if result.kernel_died:
        return None, "kernel_died", ""
    report_name = f"report_{epoch}.json"
    if not result.ok and not folder.exists(report_name):
        # The probe writes a report for every failure it can see; none means the
        # call itself broke (a hostile namespace, a missing numpy/torch).
        return None, "probe", f"{result.error_name}: {result.error_value}"
    try:
        report = read_report(folder, report_name, epoch)
        if not report["ok"]:
            return None, report["phase"], report["error"]
        preds = read_predictions(folder, f"pred_{epoch}.npy", len(labels))
        run.last_predictions = preds
    except BadOutput as exc:
        return None, "bad_output", str(exc)
    except Exception as exc:  # not BadOutput: a reply shaped to break the reading, or a bug of ours (as in model.py)
        log.warning("lstm.train: the output of epoch %d could not be read", epoch, exc_info=True)
        return None, "bad_output", f"{type(exc).__name__}: {exc}"[:300]
    return EpochPoint(epoch, report["loss"], accuracy(preds, labels)), "", ""


def train_lstm(runner: KernelRunner, data: TrainingData, protocol: TrainProtocol,
               reference: ModuleType | None = None) -> TrainingRun:
    """Train the kernel's CustomLSTM epoch by epoch until threshold, max_epochs or budget."""
    token = secrets.token_hex(8)
    name = f"grader-train-{token}"
    kernel_root = getattr(runner, "kernel_workdir", None) or runner.workdir
    start = time.monotonic()
    run = TrainingRun(protocol, "completed")
    try:
        with held_workdir(runner) as workdir:
            folder = workdir.make_dir(name)
            try:
                _train_in(runner, folder, str(Path(kernel_root) / name), token, data, protocol, run, start,
                          reference)
            finally:
                folder.close()
                remove_child(workdir, name)
    except OSError as exc:  # the kernel filled, locked or replaced its folder
        run.outcome, run.error = "bad_output", f"training folder: {exc}"[:300]
    finally:
        run.duration_s = time.monotonic() - start
    return run


def _train_in(runner: KernelRunner, folder: UntrustedDir, kernel_dir: str, token: str, data: TrainingData,
              protocol: TrainProtocol, run: TrainingRun, start: float, reference: ModuleType | None) -> None:
    run.heldout_order = write_inputs(folder, data, protocol.seed)
    labels = np.asarray(data.heldout_y, dtype=np.int64)[run.heldout_order]
    for epoch in range(1, protocol.max_epochs + 1):
        left = protocol.time_budget_s - (time.monotonic() - start)
        if left <= 0:
            run.outcome = "budget"
            return
        code = probe_code(_config(protocol, token, kernel_dir, epoch, reference is not None))
        point, failure, error = _one_epoch(runner, folder, code, epoch, labels, left, run)
        if point is None:
            # A timeout is the budget running out mid-epoch: the curve so far stands.
            run.outcome = "budget" if failure == "timeout" and run.curve else failure
            run.error, run.failed_epoch = error, epoch
            return
        run.curve.append(point)
        if protocol.early_stop and reached(point.accuracy, protocol.threshold):
            run.outcome = "passed"
            if reference is not None:
                _verify_predictions(folder, data, protocol, run, epoch, reference)
            return


def _verify_predictions(folder: UntrustedDir, data: TrainingData, protocol: TrainProtocol, run: TrainingRun,
                        epoch: int, reference: ModuleType) -> None:
    """The passing epoch's predictions must be what the reference LSTM computes with the trained weights."""
    assert run.heldout_order is not None and run.last_predictions is not None
    clips = [np.asarray(data.heldout_x[i], dtype=np.float64) for i in run.heldout_order]
    batches = length_batches(np.array([len(c) for c in clips]), protocol.batch_size)
    weights = read_weights(folder, epoch, MAX_WEIGHT_BYTES)
    run.agreement = compare(reference, weights, clips, batches, run.last_predictions,
                            (INPUT_SIZE, HIDDEN_SIZE, OUTPUT_SIZE))
    if not run.agreement.agrees:
        run.outcome = "not_lstm"


# --- the check --------------------------------------------------------------------


_ERROR_KEYS = {
    "construct": "training.construct_error",
    "shape": "training.shape_error",
    "train": "training.train_error",
    "predict": "training.predict_error",
    "kernel_died": "training.kernel_died",
    "bad_output": "training.bad_output",
    "state": "training.bad_output",
    "input": "training.probe_error",
    "probe": "training.probe_error",
}


def to_check_result(run: TrainingRun) -> CheckResult:
    """PASSED / FAILED / ERROR / SKIPPED with the curve and the numbers in details."""
    p = run.protocol
    typed: TrainingDetails = {
        "threshold": p.threshold,
        "best_accuracy": run.best_accuracy,
        "epochs": run.epochs,
        "duration_s": round(run.duration_s, 3),
        "curve": [point.to_json() for point in run.curve],
        "seed": p.seed,
        "device": p.device,
        "protocol": {"learning_rate": p.learning_rate, "batch_size": p.batch_size,
                     "max_epochs": p.max_epochs, "time_budget_s": p.time_budget_s},
    }
    details: dict[str, Any] = dict(typed)  # and what the outcome adds below
    params = {"threshold": p.threshold, "best": run.best_accuracy, "epochs": run.epochs,
              "max_epochs": p.max_epochs, "budget": p.time_budget_s, "epoch": run.failed_epoch,
              "error": run.error}
    if run.outcome == "missing":
        return CheckResult(CHECK_ID, Status.SKIPPED, Msg("training.missing_class"), details=details)
    if run.agreement is not None:
        details["predictions_recomputed"] = {"checked": run.agreement.checked,
                                              "disagreement": round(run.agreement.disagreement, 4)}
    if run.outcome == "not_lstm":
        params["disagreement"] = run.agreement.disagreement
        key = "training.not_lstm" if run.agreement.checked else "training.weights_unreadable"
        return CheckResult(CHECK_ID, Status.FAILED, Msg(key, params), details=details)
    if run.outcome in _ERROR_KEYS:
        details["error"] = run.error
        return CheckResult(CHECK_ID, Status.ERROR, Msg(_ERROR_KEYS[run.outcome], params), details=details)
    if run.reached:
        details["accuracy"] = run.curve[-1].accuracy if p.early_stop else run.best_accuracy
        return CheckResult(CHECK_ID, Status.PASSED, Msg("training.passed", {**params, "accuracy": details["accuracy"]}),
                           details=details)
    # Too slow to finish one epoch is a verdict on the model, not a failure to judge it.
    key = {"budget": "training.failed_budget", "timeout": "training.too_slow"}.get(run.outcome, "training.failed")
    return CheckResult(CHECK_ID, Status.FAILED, Msg(key, params), details=details)


def run_training_check(runner: KernelRunner, data_dir: Path, training: Training, *, device: str,
                       seed: int | None = None, cache: FeatureCache | None = None,
                       heldout: HeldOut | None = None, data: TrainingData | None = None,
                       reference: ModuleType | None = None) -> CheckResult:
    """The `lstm.train` check on the dataset at `data_dir` with the rubric's [training].

    `seed` decides initial weights and batch order; None draws a fresh one (it
    is recorded in details, so a run can be replayed). `heldout`: see
    load_training_data; where it came from is recorded in details. `data`: the
    inputs already loaded from `data_dir` with that `heldout` (grader/training_prefetch.py).
    """
    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    data = data if data is not None else load_training_data(Path(data_dir), cache, heldout)
    protocol = TrainProtocol.from_rubric(training, device=device, seed=seed)
    result = to_check_result(train_lstm(runner, data, protocol, reference))
    if heldout is not None:
        result.details["heldout"] = heldout.describe()
        if not heldout.hidden_from_kernel:
            result = _said_where_measured(result)
    return result


_SEEN_KEYS = {"training.passed": "training.passed_seen", "training.failed": "training.failed_seen",
              "training.failed_budget": "training.failed_budget_seen"}


def _said_where_measured(result: CheckResult) -> CheckResult:
    """The verdict's message, saying the accuracy came from clips the notebook could see."""
    message = result.message
    if message is None or message.key not in _SEEN_KEYS:
        return result
    result.details["measured_on"] = "test clips the notebook could see"
    return CheckResult(result.id, result.status, Msg(_SEEN_KEYS[message.key], message.params),
                       diagnosis=result.diagnosis, details=result.details)
