"""Grade one notebook end to end: load, execute, check, score.

Student code runs only inside the KernelSession. Everything here runs in
the trusted grader process: it sends data to the kernel, reads data back,
and computes every verdict itself. The order of the checks is `STAGES`;
each stage is a small function of the `GradingRun` it adds verdicts to.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from grader.calibration import calibrated_rubric
from grader.check_progress import CheckProgress
from grader.checks.builtin import notebook_hits
from grader.checks.loops import CellRun, check_loaders, check_loops
from grader.checks.student_curve import harvest_student_curve
from grader.data.kernel_features import feature_pack
from grader.default_data import dataset
from grader.devices import DeviceChoice, resolve_device
from grader.errors import InternalError
from grader.hosting.limits import ExecutionLimits, SandboxMode
from grader.hosting.records import ExecutionResult
from grader.hosting.session import KernelSession
from grader.hosting.workdir import prepare_workdir, remove_workdir
from grader.lab_api import CLASS_NAMES
from grader.messages import Msg, render
from grader.notebook import find_class_sources, find_loader_workers, find_top_level_imports, read_notebook
from grader.oracle import Oracle, load_oracle
from grader.report.results import self_check_summary
from grader.result import CheckResult, Status
from grader.rubric import CHECK_IDS, Rubric, load_rubric
from grader.sandbox import Protections, choose_protections
from grader.score import requirement_message, score_results, total, unmet_requirements
from grader.seeds import derived, load_or_create_secret, notebook_seed, user_secret_path
from grader.submission import SubmissionReport
from grader.threads import limit_threads_without_importing_torch
from grader.training_prefetch import TrainingPrefetch


@dataclass(frozen=True)
class CheckOptions:
    data: Path | None = None          # dataset folder or zip; None = the synthetic default
    device: str = "auto"
    rubric: Path | None = None
    seed: int | None = None           # None = fresh secret randomness (the normal case)
    workdir_parent: Path | None = None
    sandbox: SandboxMode = "auto"     # "require": refuse to grade without every protection
    # A student's self-check: expected answers from the packaged golden vectors, and
    # hidden checks neither run nor listed. Otherwise full grading against the live
    # reference, on fresh secret inputs (needs the course's source checkout).
    self_check: bool = False
    # --calibration FILE (refused unless made on this data); None: <rubric>.calibration.toml when made on it
    calibration: Path | None = None
    # The grading secret (grader/seeds.py): None reads the user's own, made on first use. Never reported.
    secret: bytes | None = field(default=None, repr=False)


def check_notebook(path: Path, options: CheckOptions, *, lang: str = "zh",
                   progress: CheckProgress | None = None) -> SubmissionReport:
    """Grade one notebook. Bad input (not a notebook, bad rubric/data) raises a BadInputError."""
    began = time.monotonic()
    limit_threads_without_importing_torch()
    rubric = load_rubric(options.rubric)
    nb = read_notebook(path)
    device = resolve_device(options.device)
    protections = choose_protections(options.sandbox, lang)  # before any work: --require-sandbox refuses early
    oracle = load_oracle("golden" if options.self_check else "live")  # a student wheel has no live one: exit 2 now
    hidden = rubric.hidden_ids() if options.self_check else frozenset()
    seed = options.seed if options.seed is not None else _notebook_seed(Path(path), options.secret)
    with dataset(options.data, lang=lang) as data_dir:
        # Before any kernel starts: a calibration made on other data is refused here (grader/calibration.py).
        rubric = calibrated_rubric(rubric, data_dir, options.calibration, data=options.data)
        run = GradingRun(Path(path), nb, rubric, device, data_dir, options, seed, protections, oracle, hidden,
                         execution_limits(rubric, options.sandbox), find_class_sources(nb, list(CLASS_NAMES)),
                         progress=progress)
        _grade(run)
    execution = run.execution
    scored = score_results(run.results, rubric, include_hidden=not options.self_check)
    score, max_score = total(scored)
    return SubmissionReport(
        notebook=str(path), score=score, max_score=max_score, device=device.torch_device,
        device_note=render(device.reason, lang), device_reason=device.reason,
        npu_remapped=execution.npu_remapped if execution else False,
        duration_s=time.monotonic() - began, checks=scored,
        cells=execution.cells if execution else [],
        shell_escapes=[{"cell": e.cell_index + 1, "command": e.command}
                       for e in (execution.shell_escapes if execution else [])],
        timings=run.timings, kernel_died=bool(execution and execution.kernel_died), fallback_kernel=run.fallback,
        rubric_sha256=rubric.sha256, student_curve=run.curve, protections=protections,
        self_check=self_check_summary(rubric, oracle.kind) if options.self_check else None,
        loader_workers=find_loader_workers(nb), epoch_cap=rubric.limits.epoch_cap,
        batch_cap=run.limits.batch_cap,  # 0 when the notebook had to run again without it
    )



def _notebook_seed(path: Path, secret: bytes | None) -> int:
    """Every draw of this grading run: the same for the same notebook bytes, unpredictable without the secret."""
    key = secret if secret is not None else load_or_create_secret(user_secret_path())
    return notebook_seed(key, path.read_bytes())


def execution_limits(rubric: Rubric, sandbox: SandboxMode = "auto") -> ExecutionLimits:
    return ExecutionLimits.from_rubric(rubric.limits, sandbox)


@dataclass
class GradingRun:
    """One notebook on its way through the stages: what they read, and the verdicts they add."""

    path: Path
    nb: nbformat.NotebookNode
    rubric: Rubric
    device: DeviceChoice
    data_dir: Path
    options: CheckOptions
    seed: int
    protections: Protections
    oracle: Oracle
    hidden: frozenset[str]                  # checks neither run nor listed (a self-check's hidden ones)
    limits: ExecutionLimits
    class_sources: dict[str, str]
    results: list[CheckResult] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    session: KernelSession | None = None
    execution: ExecutionResult | None = None
    runs: dict[int, CellRun] = field(default_factory=dict)
    fallback: bool = False                  # the notebook's kernel died: a fresh one answers the probes
    kernel_lost: Msg | None = None          # why no kernel answers the probes (the fallback could not start)
    curve: dict[str, Any] | None = None
    prefetch: TrainingPrefetch | None = None  # lstm.train's inputs, prepared while the notebook runs
    folders: list[Path] = field(default_factory=list)  # work folders to remove at the end
    progress: CheckProgress | None = None   # `grader check` on a terminal: where the run is

    def add(self, results: list[CheckResult]) -> None:
        self.results += [r for r in results if r.id not in self.hidden]


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[GradingRun], None]
    needs_kernel: bool = False  # skipped when no kernel can answer (`not_probed` then gives the verdicts)


def _execute(run: GradingRun) -> None:
    """notebook.runs: every cell in order, in the student's own kernel."""
    mark = time.monotonic()
    run.session = KernelSession(run.folders[0], run.device, run.limits, run.protections,
                                feature_pack=feature_pack(run.data_dir))
    # This process mostly waits while the kernel starts and the notebook runs, and the second core idles: torch
    # (for the later stages) and lstm.train's inputs are prepared meanwhile, from before the kernel's start
    # (A/B, 7 alternating runs of `grader check`: median 6.60 s started after it, 6.32 s started before).
    run.prefetch = TrainingPrefetch(run.data_dir, synthetic=run.options.data is None,
                                    seed=derived(run.seed, "heldout")).start()
    run.session.start()
    run.execution = run.session.run_notebook(run.nb, on_cell=run.progress.cell if run.progress else None)
    if _batch_cap_may_have_broken_a_cell(run) and run.session.cells_broken_by_batch_cap():
        _run_again_without_batch_cap(run)
    run.timings["execute_s"] = time.monotonic() - mark
    run.add([_notebook_runs(run.execution)])
    run.runs = {c.index: CellRun(c.status, c.traceback or "", c.model_frames) for c in run.execution.cells}


def _batch_cap_may_have_broken_a_cell(run: GradingRun) -> bool:
    """Worth asking the kernel: the cap was on, a cell raised, and the kernel can still answer."""
    assert run.session is not None and run.execution is not None
    return (bool(run.limits.batch_cap) and any(c.status == "error" for c in run.execution.cells)
            and run.session.alive())


def _run_again_without_batch_cap(run: GradingRun) -> None:
    """A cell cut short by the batch cap raised: the notebook runs again, whole, in a fresh kernel and folder,
    and that run is the one graded. The cap saves time; it must never cost a verdict (a correct
    `for step in range(len(loader)): next(it)` raised StopIteration under it, measured)."""
    assert run.session is not None
    mark = time.monotonic()
    run.session.close()
    run.limits = dataclasses.replace(run.limits, batch_cap=0)
    run.folders.append(prepare_workdir(run.path, run.data_dir, parent=run.options.workdir_parent))
    run.session = KernelSession(run.folders[-1], run.device, run.limits, run.protections,
                                feature_pack=feature_pack(run.data_dir))
    run.session.start()
    run.execution = run.session.run_notebook(run.nb, on_cell=run.progress.cell if run.progress else None)
    run.timings["rerun_without_batch_cap_s"] = time.monotonic() - mark


def _loaders(run: GradingRun) -> None:
    """loop.loaders: the notebook's DataLoaders, from its code and its cells' statuses."""
    run.add([check_loaders(run.nb, run.runs)])


def _curve(run: GradingRun) -> None:
    """The notebook's own `losses` list (display only, never scored)."""
    if run.session is not None and run.session.alive():
        run.curve = harvest_student_curve(run.session)


def _fallback(run: GradingRun) -> None:
    """The kernel died: a fresh one, in a fresh folder, holding the notebook's imports and its classes."""
    if run.session is None or run.session.alive():
        return
    run.session.close()
    # A fresh folder: the dead kernel's one holds whatever it left there (links, a million files).
    run.folders.append(prepare_workdir(run.path, run.data_dir, parent=run.options.workdir_parent))
    run.session, run.fallback = KernelSession(run.folders[-1], run.device, run.limits, run.protections), True
    try:
        _start_fallback(run.session, run.nb, run.class_sources, run.limits)
    except InternalError as exc:  # a verdict for the checks it would have run, not exit 3
        run.kernel_lost = Msg("pipeline.fallback_failed", {"error": str(exc)[:300]})


def _model(run: GradingRun) -> None:
    """rnn.* and lstm.*: the classes probed in the kernel, every verdict computed here against the oracle."""
    from grader.checks.model import run_model_checks

    assert run.session is not None
    if run.progress is not None:
        run.progress.stage("model")
    mark = time.monotonic()
    hits = notebook_hits([c.source for c in run.nb.cells
                          if c.get("cell_type") == "code" and isinstance(c.get("source"), str)])
    # *.sizes needs answers at other sizes, which only the live reference gives.
    other_sizes = run.oracle.kind == "live" and not {"rnn.sizes", "lstm.sizes"} <= run.hidden
    run.add(run_model_checks(run.session, run.class_sources, run.oracle, rng_seed=run.seed, other_sizes=other_sizes,
                             probe_timeout_s=run.rubric.limits.probe_timeout_s, notebook_hits=hits))
    run.timings["model_checks_s"] = time.monotonic() - mark


def _train(run: GradingRun) -> None:
    """lstm.train: the grader trains the student's CustomLSTM with its own protocol (docs/training-check.md)."""
    from grader.checks.training import run_training_check

    assert run.session is not None
    if "lstm.train" in run.hidden:
        return
    lstm_defined = next((r for r in run.results if r.id == "lstm.defined"), None)
    if lstm_defined is None or lstm_defined.status is not Status.PASSED:
        run.add([CheckResult("lstm.train", Status.SKIPPED, Msg("pipeline.train_needs_lstm"))])
        return
    unmet = unmet_requirements(run.rubric.checks["lstm.train"].requires, {r.id: r for r in run.results})
    if unmet:  # it could not count: no need to spend the training's time
        run.add([CheckResult("lstm.train", Status.SKIPPED, requirement_message(unmet))])
        return
    if run.progress is not None:
        run.progress.stage("train")
    mark = time.monotonic()
    # Clips the kernel never saw (grader/checks/heldout.py), drawn while the notebook ran and held in this process.
    prefetch = run.prefetch or TrainingPrefetch(run.data_dir, synthetic=run.options.data is None,
                                                seed=derived(run.seed, "heldout")).start()
    inputs = prefetch.result()
    # In TA grading the predictions are recomputed from the trained weights with the reference's equations.
    reference = getattr(run.oracle, "fn", None) if run.oracle.kind == "live" else None
    # rubric.training is calibrated in check_notebook, when a calibration applies to this data
    run.add([run_training_check(run.session, run.data_dir, run.rubric.training, device=run.device.torch_device,
                                seed=run.seed, heldout=inputs.heldout, data=inputs.data, reference=reference)])
    run.timings["train_check_s"] = time.monotonic() - mark


def _loops(run: GradingRun) -> None:
    """loop.train and loop.eval, judged after the model checks: a correct loop that crashed because the model
    returned the wrong shape or has no parameters passes; the model's own checks charge the mistake."""
    by_id = {r.id: r for r in run.results}
    faulty = frozenset(prefix for prefix in ("rnn", "lstm")
                       if any(by_id.get(f"{prefix}.{name}") is not None
                              and by_id[f"{prefix}.{name}"].status is not Status.PASSED
                              for name in _MODEL_FAULT_CHECKS))
    run.add(check_loops(run.nb, run.runs, faulty_models=faulty))


def _not_probed(run: GradingRun) -> None:
    """An error verdict, saying why, for every check the probes would have run when no kernel could."""
    if run.kernel_lost is None:
        return
    done = {r.id for r in run.results}
    run.add([CheckResult(c, Status.ERROR, run.kernel_lost) for c in CHECK_IDS if c not in done])


# The order of grading, as data. Each stage reads the run and adds its verdicts; the probe stages need a kernel
# that answers and are skipped when none could be had (`_not_probed` then says why, check by check).
STAGES: tuple[Stage, ...] = (
    Stage("execute", _execute),
    Stage("loaders", _loaders),
    Stage("curve", _curve),
    Stage("fallback", _fallback),
    Stage("model", _model, needs_kernel=True),
    Stage("train", _train, needs_kernel=True),
    Stage("loops", _loops),
    Stage("not_probed", _not_probed),
)


def _grade(run: GradingRun) -> None:
    run.results.append(CheckResult("notebook.parses", Status.PASSED, Msg("pipeline.parses_ok")))
    run.folders.append(prepare_workdir(run.path, run.data_dir, parent=run.options.workdir_parent))
    try:
        for stage in STAGES:
            if stage.needs_kernel and run.kernel_lost is not None:
                continue
            stage.run(run)
    finally:
        if run.session is not None:
            run.session.close()
        for folder in run.folders:
            remove_workdir(folder)  # the kernel wrote there: no recursion, no links followed, bounded


def _notebook_runs(execution: ExecutionResult) -> CheckResult:
    failing = [c for c in execution.cells if c.status != "ok"]
    if not failing:
        return CheckResult("notebook.runs", Status.PASSED, Msg("pipeline.runs_ok", {"cells": len(execution.cells)}))
    first = failing[0]
    what = first.error_name or first.status
    return CheckResult(
        "notebook.runs", Status.FAILED,
        Msg("pipeline.runs_failed", {"cell": first.index + 1, "error": what, "count": len(failing)}),
        details={"failing_cells": [c.index + 1 for c in failing], "kernel_died": execution.kernel_died},
    )


# A class failing one of these is broken as a model: a crash it causes in a correct loop is its fault.
_MODEL_FAULT_CHECKS = ("defined", "params", "forward", "grad")


def _start_fallback(session: KernelSession, nb: nbformat.NotebookNode, class_sources: dict[str, str],
                    limits: ExecutionLimits) -> None:
    """The kernel died: a fresh one holding the notebook's imports and its class definitions only."""
    session.start()
    prelude = ["import torch", "import torch.nn as nn", "import torch.nn.functional as F"]
    prelude += find_top_level_imports(nb)
    for statement in prelude + [class_sources[n] for n in CLASS_NAMES if n in class_sources]:
        # each piece alone, so one failing import cannot hide a class definition
        session.run_code(statement, timeout_s=limits.cell_timeout_s)
