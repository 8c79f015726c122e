"""A calibration: the lstm.train threshold `grader calibrate` proved on one dataset, and when it applies.

The file goes beside the rubric (`rubrics/lab.calibration.toml` for
`rubrics/lab.toml`) or is named with `--calibration FILE`; it records the
sha256 of the data it was made on (train, test and holdout) and the training
protocol, and applies only to that data under that protocol
(`applied_calibration`). Making one is grader/calibrate.py.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

from grader.errors import BadInputError, DatasetError, RubricError
from grader.messages import Msg
from grader.rubric import Rubric, Training

CALIBRATION_FORMAT = 2      # 2: the hash covers the holdout split; `data` records where it was made


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
    training: Training


def _check_protocol(cal: Calibration, path: Path, rubric: Rubric) -> None:
    """A threshold is proven for one protocol only: refuse it under another."""
    t = rubric.training
    same = (cal.max_epochs, cal.batch_size) == (t.max_epochs, t.batch_size)
    if not same or not math.isclose(cal.learning_rate, t.learning_rate):
        raise RubricError.of(Msg("training.calibration_protocol", {
            "file": str(path), "rubric": str(rubric.path), "max_epochs": cal.max_epochs,
            "learning_rate": cal.learning_rate,
            "batch_size": cal.batch_size, "now_max_epochs": t.max_epochs, "now_learning_rate": t.learning_rate,
            "now_batch_size": t.batch_size}))


def recalibrate_command(data: Path | None, out: Path) -> str:
    """The command that makes a calibration for `data` (None: the default synthetic set) into `out`."""
    data_part = f" --data {data}" if data is not None else ""
    return f"grader calibrate{data_part} --out {out}"


def _refuse_other_data(path: Path, cal: Calibration, actual: str, rubric: Rubric, data: Path | None) -> None:
    label = str(data) if data is not None else "-"
    raise CalibrationMismatchError.of(Msg("training.calibration_other_data", {
        "file": str(path), "made_on": cal.data or "?", "expected": cal.data_sha256[:12], "data": label,
        "default_data": data is None, "actual": actual[:12], "threshold": rubric.training.threshold,
        "command": recalibrate_command(data, path)}))


def applied_calibration(rubric: Rubric, data_dir: Path | None = None, explicit: Path | None = None,
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


def calibrated_rubric(rubric: Rubric, data_dir: Path, explicit: Path | None = None, *,
                      data: Path | None = None) -> Rubric:
    """The rubric with the threshold of the calibration that applies (see applied_calibration)."""
    return dataclasses.replace(rubric, training=applied_calibration(rubric, data_dir, explicit, data=data).training)


def effective_training(rubric: Rubric, data_dir: Path | None = None, explicit: Path | None = None) -> Training:
    """The rubric's [training] with the calibrated threshold applied, when a calibration applies."""
    return applied_calibration(rubric, data_dir, explicit).training


def effective_threshold(rubric: Rubric, data_dir: Path | None = None) -> float:
    return float(effective_training(rubric, data_dir).threshold)
