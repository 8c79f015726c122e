"""`grader calibrate`: set the lstm.train threshold from the reference's results on a TA's data.

The reference CustomLSTM is trained with exactly the check's code path
(grader.training.train_lstm and the kernel probe, in a child Python process)
over N seeds with early stopping off. The threshold written is

    floor_to_percent(min over seeds of the best held-out accuracy within max_epochs - margin)

so the reference clears it in every seed measured, with `margin` to spare.
If that is not above chance (majority-class rate) + margin, the reference
cannot separate the classes on this data: nothing is written and the exit
code is 1.

The file goes beside the rubric (`rubrics/lab.calibration.toml` for
`rubrics/lab.toml`); `effective_training(rubric)` applies it.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import hashlib
import math
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.errors import EXIT_CHECK_FAILED, EXIT_OK, RubricError
from grader.messages import DEFAULT_LANGUAGE, Msg, render
from grader.training import TrainProtocol, TrainingRun, load_training_data, train_lstm
from grader.trusted_runner import ProcessRunner, reference_source

CALIBRATION_FORMAT = 1
DEFAULT_SEEDS = 10
DEFAULT_MARGIN = 0.05


# --- the calibration file ----------------------------------------------------------


def calibration_path(rubric_path: Path) -> Path:
    """`rubrics/lab.toml` -> `rubrics/lab.calibration.toml`."""
    rubric_path = Path(rubric_path)
    return rubric_path.with_name(f"{rubric_path.stem}.calibration.toml")


def dataset_hash(root: Path) -> str:
    """sha256 over the csv files and every listed clip, so a folder and its zip hash the same."""
    import csv

    digest = hashlib.sha256()
    for split in ("train", "test"):
        csv_file = root / f"{split}.csv"
        raw = csv_file.read_bytes()
        digest.update(f"{split}.csv\0{len(raw)}\0".encode() + raw)
        with csv_file.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                clip = (root / split / row["filename"]).read_bytes()
                digest.update(f"{split}/{row['filename']}\0{len(clip)}\0".encode() + clip)
    return digest.hexdigest()


def _csv_stamp(root: Path) -> tuple[float, ...]:
    return tuple(p.stat().st_mtime_ns for p in (root / "train.csv", root / "test.csv"))


@functools.lru_cache(maxsize=8)
def _cached_hash(root: Path, stamp: tuple[float, ...]) -> str:
    # A course is graded against one dataset: hash its clips once per process, not per submission.
    return dataset_hash(root)


@dataclass(frozen=True)
class Calibration:
    """A calibration file's content."""

    threshold: float
    margin: float
    data_sha256: str
    seeds: tuple[int, ...]
    accuracies: tuple[float, ...]
    chance: float
    max_epochs: int
    learning_rate: float
    batch_size: int
    created: str = ""

    def to_toml(self) -> str:
        def floats(xs: tuple[float, ...]) -> str:
            return "[" + ", ".join(f"{x:.4f}" for x in xs) + "]"

        return (
            "# Written by `grader calibrate`; overrides [training] threshold of the rubric beside it.\n"
            "# The reference CustomLSTM's best held-out accuracy within max_epochs, per seed;\n"
            "# threshold = floor(min(accuracies) - margin) to whole percent.\n"
            f"format = {CALIBRATION_FORMAT}\n"
            f"threshold = {self.threshold:.2f}\n"
            f"margin = {self.margin:.4f}\n"
            f'data_sha256 = "{self.data_sha256}"\n'
            f"seeds = [{', '.join(str(s) for s in self.seeds)}]\n"
            f"accuracies = {floats(self.accuracies)}\n"
            f"chance = {self.chance:.4f}\n"
            f"max_epochs = {self.max_epochs}\n"
            f"learning_rate = {self.learning_rate!r}\n"
            f"batch_size = {self.batch_size}\n"
            f'created = "{self.created}"\n'
        )


def _need(table: dict[str, Any], key: str, kind: type | tuple[type, ...], where: Path) -> Any:
    value = table.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise RubricError(f"{where}: '{key}' is missing or not a {getattr(kind, '__name__', 'number')}; run `grader calibrate` again")
    return value


def load_calibration(path: Path) -> Calibration:
    try:
        table = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RubricError(f"{path}: cannot read the calibration file ({exc})") from None
    number = (int, float)
    threshold = float(_need(table, "threshold", number, path))
    if not 0.0 < threshold <= 1.0:
        raise RubricError(f"{path}: threshold {threshold} is not in (0, 1]")
    return Calibration(
        threshold=threshold,
        margin=float(_need(table, "margin", number, path)),
        data_sha256=_need(table, "data_sha256", str, path),
        seeds=tuple(_need(table, "seeds", list, path)),
        accuracies=tuple(float(a) for a in _need(table, "accuracies", list, path)),
        chance=float(_need(table, "chance", number, path)),
        max_epochs=int(_need(table, "max_epochs", int, path)),
        learning_rate=float(_need(table, "learning_rate", number, path)),
        batch_size=int(_need(table, "batch_size", int, path)),
        created=str(table.get("created", "")),
    )


def effective_training(rubric: Any, data_dir: Path | None = None) -> Any:
    """The rubric's [training] with the calibrated threshold applied, when a calibration exists.

    A threshold is only valid for the protocol and data it was measured on:
    a calibration made under another protocol (max_epochs, learning_rate,
    batch_size) is refused with a RubricError (recalibrate or delete it);
    when `data_dir` is given and is not the calibrated data (a student's
    `grader check` on the default synthetic set, say), the rubric's own
    threshold applies, which is the one proven on the synthetic set.
    """
    path = calibration_path(rubric.path)
    if not path.is_file():
        return rubric.training
    cal = load_calibration(path)
    t = rubric.training
    if (cal.max_epochs, cal.batch_size) != (t.max_epochs, t.batch_size) or not math.isclose(cal.learning_rate, t.learning_rate):
        raise RubricError(f"{path}: calibrated for max_epochs={cal.max_epochs}, learning_rate={cal.learning_rate}, "
                          f"batch_size={cal.batch_size}, but {rubric.path} now says {t.max_epochs}, {t.learning_rate}, "
                          f"{t.batch_size}; run `grader calibrate` again or delete the file")
    if data_dir is not None and _cached_hash(Path(data_dir).resolve(), _csv_stamp(Path(data_dir))) != cal.data_sha256:
        return t
    return dataclasses.replace(t, threshold=cal.threshold)


def effective_threshold(rubric: Any, data_dir: Path | None = None) -> float:
    return float(effective_training(rubric, data_dir).threshold)


# --- calibrate -------------------------------------------------------------------


@dataclass
class SeedResult:
    seed: int
    best_accuracy: float
    best_epoch: int
    epochs: int
    duration_s: float
    outcome: str
    error: str = ""


@dataclass
class CalibrationResult:
    """What `calibrate` measured and decided; `written` is None when nothing was written."""

    data: Path
    data_sha256: str
    margin: float
    chance: float
    seeds: list[SeedResult] = field(default_factory=list)
    threshold: float | None = None
    written: Path | None = None
    problem: Msg | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.ok else EXIT_CHECK_FAILED

    def describe(self, lang: str = DEFAULT_LANGUAGE) -> str:
        lines = [render(Msg("training.calibrate_header", {"data": str(self.data), "seeds": len(self.seeds),
                                                          "sha": self.data_sha256[:12]}), lang)]
        for s in self.seeds:
            lines.append(render(Msg("training.calibrate_seed", {
                "seed": s.seed, "accuracy": s.best_accuracy, "epoch": s.best_epoch, "epochs": s.epochs,
                "seconds": s.duration_s, "note": s.error or ("" if s.outcome == "completed" else s.outcome)}), lang))
        if self.problem is not None:
            lines.append(render(self.problem, lang))
        else:
            lines.append(render(Msg("training.calibrate_written", {
                "threshold": self.threshold, "min": min(s.best_accuracy for s in self.seeds),
                "margin": self.margin, "chance": self.chance, "file": str(self.written)}), lang))
        return "\n".join(lines)


def floor_percent(x: float) -> float:
    # The small epsilon keeps 0.80 - 0.05 from flooring to 0.74 on float rounding.
    return math.floor(x * 100 + 1e-6) / 100


def _seed_result(seed: int, run: TrainingRun) -> SeedResult:
    best = max(run.curve, key=lambda p: p.accuracy, default=None)
    return SeedResult(seed, run.best_accuracy, best.epoch if best else 0, run.epochs, run.duration_s,
                      run.outcome, run.error)


def _decide(result: CalibrationResult) -> None:
    """Set result.threshold, or result.problem when the reference does not separate the classes."""
    broken = [s for s in result.seeds if s.outcome not in ("completed", "budget")]
    if broken:
        s = broken[0]
        result.problem = Msg("training.calibrate_reference_error", {"seed": s.seed, "outcome": s.outcome, "error": s.error})
        return
    worst = min(s.best_accuracy for s in result.seeds)
    threshold = floor_percent(worst - result.margin)
    if threshold <= result.chance + result.margin:
        result.problem = Msg("training.calibrate_no_separation", {
            "min": worst, "margin": result.margin, "chance": result.chance, "threshold": threshold})
        return
    result.threshold = threshold


def calibrate(data: Path, seeds: int, rubric_path: Path, out: Path | None = None,
              margin: float = DEFAULT_MARGIN, *, device: str = "cpu", cache: Any = None,
              progress: Any = None) -> CalibrationResult:
    """Train the reference over seeds 0..seeds-1 on `data` (folder or zip) and write the threshold.

    `progress`, if given, is called with each SeedResult as it is measured.
    """
    from grader.data.layout import open_dataset
    from grader.rubric import load_rubric

    if seeds < 1:
        raise ValueError("seeds must be at least 1")
    rubric = load_rubric(Path(rubric_path))
    with open_dataset(Path(data)) as root:
        sha = dataset_hash(root)
        training_data = load_training_data(root, cache)
    result = CalibrationResult(Path(data), sha, margin, training_data.chance)
    with tempfile.TemporaryDirectory(prefix="grader-calibrate-") as tmp, \
            ProcessRunner(Path(tmp), reference_source()) as runner:
        for seed in range(seeds):
            protocol = TrainProtocol.from_rubric(rubric.training, device=device, seed=seed, early_stop=False)
            seed_result = _seed_result(seed, train_lstm(runner, training_data, protocol))
            result.seeds.append(seed_result)
            if progress is not None:
                progress(seed_result)
    _decide(result)
    if result.ok:
        target = Path(out) if out is not None else calibration_path(rubric.path)
        t = rubric.training
        cal = Calibration(result.threshold or 0.0, margin, sha, tuple(range(seeds)),
                          tuple(s.best_accuracy for s in result.seeds), result.chance,
                          t.max_epochs, t.learning_rate, t.batch_size,
                          _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
        target.write_text(cal.to_toml(), encoding="utf-8")
        result.written = target
    return result
