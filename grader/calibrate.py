"""`grader calibrate`: set the lstm.train threshold from the reference's results on a TA's data.

The reference CustomLSTM is trained with exactly the check's code path
(grader.checks.training.train_lstm and the kernel probe, in a child Python process)
over N seeds with early stopping off. The threshold written is

    floor_to_percent(min over seeds of the best held-out accuracy within max_epochs - margin)

so the reference clears it in every seed measured, with `margin` to spare.
If that is not above chance (majority-class rate) + margin, the reference
cannot separate the classes on this data: nothing is written and the exit
code is 1.

The file goes beside the rubric (`rubrics/lab.calibration.toml` for
`rubrics/lab.toml`); grader/calibration.py reads it and decides when it applies.
"""
from __future__ import annotations

import datetime as _dt
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from grader.calibration import Calibration, calibration_path, dataset_hash
from grader.errors import EXIT_CHECK_FAILED, EXIT_OK, DatasetError
from grader.messages import DEFAULT_LANGUAGE, Msg, render

if TYPE_CHECKING:
    from grader.checks.training import TrainingRun
    from grader.data.features import FeatureCache

DEFAULT_SEEDS = 10
DEFAULT_MARGIN = 0.05



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
            return Msg("training.calibrate_pickup_auto",
                       {"options": options, "rubric_threshold": self.rubric_threshold})
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
              margin: float = DEFAULT_MARGIN, *, device: str = "cpu", cache: FeatureCache | None = None,
              emit: Callable[[Msg], None] | None = None) -> CalibrationResult:
    """Train the reference over seeds 0..seeds-1 on `data` (folder or zip; None: the default
    synthetic set) and write the threshold.

    `emit`, if given, gets each line as it is decided, in order: the header before the
    first seed trains, each seed's line as it is measured, then the conclusion. A seed
    that errs or runs out of its time budget stops the run: nothing is written.
    """
    from grader.checks.training import TrainProtocol, load_training_data, train_lstm
    from grader.data.layout import open_dataset
    from grader.default_data import default_dataset_dir
    from grader.paths import DEFAULT_RUBRIC
    from grader.rubric import load_rubric
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
