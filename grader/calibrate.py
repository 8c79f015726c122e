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
from typing import TYPE_CHECKING, Any, Callable

from grader.errors import EXIT_CHECK_FAILED, EXIT_OK, BadInputError, DatasetError, RubricError
from grader.messages import DEFAULT_LANGUAGE, Msg, render

if TYPE_CHECKING:
    from grader.training import TrainingRun

CALIBRATION_FORMAT = 2      # 2: the hash covers the holdout split; `data` records where it was made
DEFAULT_SEEDS = 10
DEFAULT_MARGIN = 0.05


class CalibrationMismatchError(BadInputError):
    """--calibration FILE was made on other data than this run's (exit 2: recalibrate)."""


# --- the calibration file ----------------------------------------------------------


def calibration_path(rubric_path: Path) -> Path:
    """`rubrics/lab.toml` -> `rubrics/lab.calibration.toml`."""
    rubric_path = Path(rubric_path)
    return rubric_path.with_name(f"{rubric_path.stem}.calibration.toml")


HASHED_SPLITS: tuple[str, ...] = ("train", "test", "holdout")


def _hashed_splits(root: Path) -> list[str]:
    # The holdout split is what lstm.train measures on when present, so it is part of "the data";
    # absent, the hash is the one older calibrations recorded (train and test only).
    return [s for s in HASHED_SPLITS if s != "holdout" or (root / "holdout.csv").is_file()]


def dataset_hash(root: Path) -> str:
    """sha256 over the csv files and every listed clip (holdout split included, when present),
    so a folder and its zip hash the same. A broken split raises DatasetError (grader data check)."""
    import csv

    digest = hashlib.sha256()
    for split in _hashed_splits(root):
        csv_file = root / f"{split}.csv"
        try:
            raw = csv_file.read_bytes()
            digest.update(f"{split}.csv\0{len(raw)}\0".encode() + raw)
            with csv_file.open(newline="", encoding="utf-8") as fh:
                for row in csv.DictReader(fh):
                    clip = (root / split / row["filename"]).read_bytes()
                    digest.update(f"{split}/{row['filename']}\0{len(clip)}\0".encode() + clip)
        except (OSError, KeyError, TypeError, UnicodeDecodeError, csv.Error) as exc:
            raise DatasetError.of(Msg("data.unusable_split", {"split": split, "reason": _reason(exc)})) from None
    return digest.hexdigest()


def _reason(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"no column {exc}"
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror or type(exc).__name__}: {Path(str(exc.filename)).name}"
    return f"{type(exc).__name__}: {exc}"[:200]


def _csv_stamp(root: Path) -> tuple[float, ...]:
    return tuple(p.stat().st_mtime_ns for p in (root / f"{s}.csv" for s in _hashed_splits(root)))


@functools.lru_cache(maxsize=8)
def _cached_hash(root: Path, stamp: tuple[float, ...]) -> str:
    # A course is graded against one dataset: hash its clips once per process, not per submission.
    return dataset_hash(root)


def data_sha256(data_dir: Path) -> str:
    """The dataset's hash, cached per process (the csv files' mtimes tell a changed dataset)."""
    data_dir = Path(data_dir)
    return _cached_hash(data_dir.resolve(), _csv_stamp(data_dir))


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
    data: str = ""           # the dataset it was made on, as given (for messages; the hash decides)

    def to_toml(self) -> str:
        def floats(xs: tuple[float, ...]) -> str:
            return "[" + ", ".join(f"{x:.4f}" for x in xs) + "]"

        return (
            "# Written by `grader calibrate`: the lstm.train threshold for the data whose sha256 is below\n"
            "# (train, test and holdout splits). Applied only to that data: beside its rubric\n"
            "# (<rubric>.calibration.toml) automatically, anywhere else with --calibration FILE.\n"
            "# The reference CustomLSTM's best held-out accuracy within max_epochs, per seed;\n"
            "# threshold = floor(min(accuracies) - margin) to whole percent.\n"
            f"format = {CALIBRATION_FORMAT}\n"
            f"threshold = {self.threshold:.2f}\n"
            f"margin = {self.margin:.4f}\n"
            f'data_sha256 = "{self.data_sha256}"\n'
            f"data = {_toml_string(self.data)}\n"
            f"seeds = [{', '.join(str(s) for s in self.seeds)}]\n"
            f"accuracies = {floats(self.accuracies)}\n"
            f"chance = {self.chance:.4f}\n"
            f"max_epochs = {self.max_epochs}\n"
            f"learning_rate = {self.learning_rate!r}\n"
            f"batch_size = {self.batch_size}\n"
            f'created = "{self.created}"\n'
        )


def _toml_string(value: str) -> str:
    # A TOML basic string is JSON-compatible for the characters a path holds.
    import json

    return json.dumps(value, ensure_ascii=False)


def _bad_file(path: Path, reason: str) -> RubricError:
    return RubricError.of(Msg("training.calibration_unreadable", {"file": str(path), "reason": reason}))


def _need(table: dict[str, Any], key: str, kind: type | tuple[type, ...], where: Path) -> Any:
    value = table.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise RubricError.of(Msg("training.calibration_bad_key", {"file": str(where), "key": key}))
    return value


def load_calibration(path: Path) -> Calibration:
    try:
        table = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _bad_file(path, "no such file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise _bad_file(path, str(exc)[:200]) from None
    number = (int, float)
    threshold = float(_need(table, "threshold", number, path))
    if not 0.0 < threshold <= 1.0:
        raise RubricError.of(Msg("training.calibration_bad_key", {"file": str(path), "key": "threshold"}))
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
        data=str(table.get("data", "")),
    )


@dataclass(frozen=True)
class AppliedCalibration:
    """The calibration a run applies: its file (None: the rubric's own threshold) and the [training] in force."""

    path: Path | None
    sha256: str              # of the file's bytes; "" when none applies (the store keys verdicts on it)
    training: Any


def _check_protocol(cal: Calibration, path: Path, rubric: Any) -> None:
    """A threshold is proven for one protocol only: refuse it under another."""
    t = rubric.training
    if (cal.max_epochs, cal.batch_size) != (t.max_epochs, t.batch_size) or not math.isclose(cal.learning_rate, t.learning_rate):
        raise RubricError.of(Msg("training.calibration_protocol", {
            "file": str(path), "rubric": str(rubric.path), "max_epochs": cal.max_epochs, "learning_rate": cal.learning_rate,
            "batch_size": cal.batch_size, "now_max_epochs": t.max_epochs, "now_learning_rate": t.learning_rate,
            "now_batch_size": t.batch_size}))


def recalibrate_command(data: Path | None, out: Path) -> str:
    """The command that makes a calibration for `data` (None: the default synthetic set) into `out`."""
    data_part = f" --data {data}" if data is not None else ""
    return f"grader calibrate{data_part} --out {out}"


def _refuse_other_data(path: Path, cal: Calibration, actual: str, rubric: Any, data: Path | None) -> None:
    label = str(data) if data is not None else "-"
    raise CalibrationMismatchError.of(Msg("training.calibration_other_data", {
        "file": str(path), "made_on": cal.data or "?", "expected": cal.data_sha256[:12], "data": label,
        "default_data": data is None, "actual": actual[:12], "threshold": rubric.training.threshold,
        "command": recalibrate_command(data, path)}))


def applied_calibration(rubric: Any, data_dir: Path | None = None, explicit: Path | None = None,
                        *, data: Path | None = None) -> AppliedCalibration:
    """Which calibration decides lstm.train's threshold for this rubric on the data at `data_dir`.

    `explicit` (`--calibration FILE`) must have been made on this very data (hash over
    train, test and holdout): on other data it is refused (CalibrationMismatchError, exit 2)
    with the command that recalibrates. Without it, `<rubric>.calibration.toml` beside the
    rubric applies when it was made on this data, and silently not otherwise (a student's
    check on the default synthetic set keeps the rubric's threshold, proven there).
    `data` is the dataset as the user gave it (None: the default set), for messages only.
    Either file made under another protocol (max_epochs, learning_rate, batch_size) is refused.
    """
    none = AppliedCalibration(None, "", rubric.training)
    path = Path(explicit) if explicit is not None else calibration_path(rubric.path)
    if explicit is None and not path.is_file():
        return none
    cal = load_calibration(path)
    _check_protocol(cal, path, rubric)
    if data_dir is not None:
        actual = data_sha256(data_dir)
        if actual != cal.data_sha256:
            if explicit is None:
                return none
            _refuse_other_data(path, cal, actual, rubric, data)
    training = dataclasses.replace(rubric.training, threshold=cal.threshold)
    return AppliedCalibration(path, hashlib.sha256(path.read_bytes()).hexdigest(), training)


def calibrated_rubric(rubric: Any, data_dir: Path, explicit: Path | None = None, *, data: Path | None = None) -> Any:
    """The rubric with the threshold of the calibration that applies (see applied_calibration)."""
    return dataclasses.replace(rubric, training=applied_calibration(rubric, data_dir, explicit, data=data).training)


def effective_training(rubric: Any, data_dir: Path | None = None, explicit: Path | None = None) -> Any:
    """The rubric's [training] with the calibrated threshold applied, when a calibration applies."""
    return applied_calibration(rubric, data_dir, explicit).training


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
    """What `calibrate` measured and decided; `written` is None when nothing was written.

    Its lines, in order: `header()`, one `seed_line` per seed, then `conclusion()`
    (the problem, or the threshold written and how the file will be picked up).
    """

    data: Path
    data_sha256: str
    margin: float
    chance: float
    seeds: list[SeedResult] = field(default_factory=list)
    threshold: float | None = None
    written: Path | None = None
    problem: Msg | None = None
    planned: int = 0                  # seeds asked for (a broken seed stops the run early)
    budget_s: float = 0.0
    max_epochs: int = 0
    rubric_path: Path | None = None
    rubric_threshold: float = 0.0
    default_rubric: bool = True
    default_data: bool = False

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.ok else EXIT_CHECK_FAILED

    def header(self) -> Msg:
        return Msg("training.calibrate_header", {"data": str(self.data), "seeds": self.planned or len(self.seeds),
                                                 "sha": self.data_sha256[:12]})

    @staticmethod
    def seed_line(s: SeedResult) -> Msg:
        return Msg("training.calibrate_seed", {
            "seed": s.seed, "accuracy": s.best_accuracy, "epoch": s.best_epoch, "epochs": s.epochs,
            "seconds": s.duration_s, "note": f" ({s.outcome}: {s.error})" if s.error else ""})

    def conclusion(self) -> list[Msg]:
        if self.problem is not None:
            return [self.problem]
        return [Msg("training.calibrate_written", {
            "threshold": self.threshold, "min": min(s.best_accuracy for s in self.seeds),
            "margin": self.margin, "chance": self.chance, "file": str(self.written)}), self.pickup()]

    def pickup(self) -> Msg:
        """How the written file will be used: exactly the commands that pick it up."""
        options = "" if self.default_data else f" --data {self.data}"
        beside = self.rubric_path is not None and self.written == calibration_path(self.rubric_path)
        if beside:
            options += "" if self.default_rubric else f" --rubric {self.rubric_path}"
            return Msg("training.calibrate_pickup_auto", {"options": options, "rubric_threshold": self.rubric_threshold})
        if not self.default_rubric:
            options += f" --rubric {self.rubric_path}"
        return Msg("training.calibrate_pickup_explicit", {"options": options, "file": str(self.written)})

    def messages(self) -> list[Msg]:
        return [self.header(), *(self.seed_line(s) for s in self.seeds), *self.conclusion()]

    def describe(self, lang: str = DEFAULT_LANGUAGE) -> str:
        return "\n".join(render(m, lang) for m in self.messages())


def floor_percent(x: float) -> float:
    # The small epsilon keeps 0.80 - 0.05 from flooring to 0.74 on float rounding.
    return math.floor(x * 100 + 1e-6) / 100


def _seed_result(seed: int, run: TrainingRun) -> SeedResult:
    best = max(run.curve, key=lambda p: p.accuracy, default=None)
    return SeedResult(seed, run.best_accuracy, best.epoch if best else 0, run.epochs, run.duration_s,
                      run.outcome, run.error)


def _decide(result: CalibrationResult) -> None:
    """Set result.threshold, or result.problem when a seed broke or the reference does not separate the classes."""
    broken = [s for s in result.seeds if s.outcome != "completed"]
    if broken:
        s = broken[0]
        if s.outcome in ("budget", "timeout"):
            # A run cut short measured the machine, not the data: its accuracy must not set a threshold.
            result.problem = Msg("training.calibrate_too_slow", {
                "seed": s.seed, "budget": result.budget_s, "epochs": s.epochs, "max_epochs": result.max_epochs})
        else:
            result.problem = Msg("training.calibrate_reference_error", {"seed": s.seed, "outcome": s.outcome,
                                                                         "error": s.error})
        return
    worst = min(s.best_accuracy for s in result.seeds)
    threshold = floor_percent(worst - result.margin)
    if threshold <= result.chance + result.margin:
        result.problem = Msg("training.calibrate_no_separation", {
            "min": worst, "margin": result.margin, "chance": result.chance, "threshold": threshold})
        return
    result.threshold = threshold


def _validated(root: Path, data: Path) -> None:
    """Every problem of the dataset at once (exit 2), before minutes of training."""
    from grader.data.validate import problems_in

    problems = problems_in(root)
    if problems:
        raise DatasetError.of(Msg("data.invalid", {"path": str(data), "count": len(problems)}),
                              [p.msg for p in problems])


def calibrate(data: Path | None, seeds: int, rubric_path: Path | None, out: Path | None = None,
              margin: float = DEFAULT_MARGIN, *, device: str = "cpu", cache: Any = None,
              emit: Callable[[Msg], None] | None = None) -> CalibrationResult:
    """Train the reference over seeds 0..seeds-1 on `data` (folder or zip; None: the default
    synthetic set) and write the threshold.

    `emit`, if given, gets each line as it is decided, in order: the header before the
    first seed trains, each seed's line as it is measured, then the conclusion. A seed
    that errs or runs out of its time budget stops the run: nothing is written.
    """
    from grader.data.layout import open_dataset
    from grader.default_data import default_dataset_dir
    from grader.paths import DEFAULT_RUBRIC
    from grader.rubric import load_rubric
    from grader.training import TrainProtocol, load_training_data, train_lstm
    from grader.trusted_runner import ProcessRunner, reference_source

    if seeds < 1:
        raise ValueError("seeds must be at least 1")
    say = emit or (lambda msg: None)
    rubric = load_rubric(Path(rubric_path) if rubric_path is not None else None)
    source = Path(data) if data is not None else default_dataset_dir()
    with open_dataset(source) as root:
        _validated(root, source)
        sha = dataset_hash(root)
        training_data = load_training_data(root, cache)
    t = rubric.training
    result = CalibrationResult(source, sha, margin, training_data.chance, planned=seeds, budget_s=t.time_budget_s,
                               max_epochs=t.max_epochs, rubric_path=rubric.path, rubric_threshold=t.threshold,
                               default_rubric=rubric.path.resolve() == DEFAULT_RUBRIC.resolve(),
                               default_data=data is None)
    say(result.header())
    with tempfile.TemporaryDirectory(prefix="grader-calibrate-") as tmp, \
            ProcessRunner(Path(tmp), reference_source()) as runner:
        for seed in range(seeds):
            protocol = TrainProtocol.from_rubric(t, device=device, seed=seed, early_stop=False)
            seed_result = _seed_result(seed, train_lstm(runner, training_data, protocol))
            result.seeds.append(seed_result)
            say(result.seed_line(seed_result))
            if seed_result.outcome != "completed":
                break  # the conclusion is already certain: not written
    _decide(result)
    if result.ok:
        target = Path(out) if out is not None else calibration_path(rubric.path)
        cal = Calibration(result.threshold or 0.0, margin, sha, tuple(range(seeds)),
                          tuple(s.best_accuracy for s in result.seeds), result.chance,
                          t.max_epochs, t.learning_rate, t.batch_size,
                          _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                          data=str(source.resolve()) if data is not None else "default synthetic dataset")
        target.write_text(cal.to_toml(), encoding="utf-8")
        result.written = target
    for msg in result.conclusion():
        say(msg)
    return result
