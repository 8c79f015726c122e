"""`grader grade`: a whole class, unattended, resumable.

discover -> skip what the store already holds for the same notebook, dataset (holdout
included), rubric, calibration and grader version (store.VerdictKey) -> grade the rest on an executor
-> store each result the moment
it arrives -> write every output from the whole store -> a one-screen summary.

The coordinator (this process) never imports torch and is the store's only
writer; grading happens in the executor's workers.

Nothing one notebook contains may stop the coordinator: the similarity pass
leaves out (with a note) a submission it cannot analyse in bounded time, and
write_outputs replaces a result a renderer cannot take with an error entry.
"""
from __future__ import annotations

import contextlib
import logging
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from grader import __version__
from grader.batch.discover import Discovery, Problem, Submission, discover
from grader.batch.executors import Executor, LocalExecutor, default_jobs, job_timeout_s
from grader.batch.jobs import GradeJob, JobOptions
from grader.batch.progress import Progress, format_duration
from grader.batch.store import REGRADE_REASONS, STORE_NAME, Store, VerdictKey
from grader.errors import EXIT_CHECK_FAILED, EXIT_OK, BadInputError
from grader.messages import text
from grader.plain_numbers import finite_float
from grader.report.results import StoredResult
from grader.roster import join, read_roster, unknown_ids
from grader.rubric import Rubric, load_rubric
from grader.safe_text import safe_line
from grader.seeds import SECRET_FILE, load_or_create_secret

if TYPE_CHECKING:
    from grader.similarity import BatchSimilarity

log = logging.getLogger(__name__)

EXECUTORS = ("local", "dask")
# The terminal summary stays one screen; the store keeps every problem.
_PROBLEMS_SHOWN = 15


@dataclass(frozen=True)
class GradeOptions:
    submissions: Path
    out: Path
    jobs: int | None = None              # None: one worker per core
    data: Path | None = None
    device: str = "auto"
    rubric: Path | None = None
    id_pattern: str | None = None
    force: bool = False
    executor: str = "local"
    scheduler: str | None = None
    lang: str | None = None              # None: the rubric's language
    seed: int | None = None              # debugging only, as for `grader check`
    job_timeout_s: float | None = None   # None: from the rubric's limits (executors.job_timeout_s)
    require_sandbox: bool = False        # refuse to grade unless every kernel protection is available
    calibration: Path | None = None      # --calibration FILE; None: <rubric>.calibration.toml when made on this data
    roster: Path | None = None           # --roster roster.csv (grader/roster.py); None: the one stored before, if any


@dataclass
class GradeSummary:
    total: int                           # submissions found in SUBMISSIONS
    graded_now: int                      # graded in this run (any score)
    failed_now: int                      # not graded in this run: bad input, crashed, timed out
    skipped_unchanged: int
    outcomes: dict[str, int]             # over every submission found, stored verdicts included
    mean_score: float | None
    max_score: float
    problems: list[Problem]
    out_dir: Path
    outputs: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    regraded: dict[str, int] = field(default_factory=dict)   # why stored verdicts were redone: reason -> count
    regraded_count: int = 0                                  # submissions regraded (one may have several reasons)
    missing: list[str] = field(default_factory=list)         # on the roster, no submission
    not_on_roster: list[str] = field(default_factory=list)   # submitted, but the roster lists nobody by that id

    @property
    def exit_code(self) -> int:
        """0 every submission has a graded verdict (whatever its score), else 1."""
        not_graded = sum(n for outcome, n in self.outcomes.items() if outcome != "graded")
        return EXIT_OK if not_graded == 0 else EXIT_CHECK_FAILED


class _LazyJobs(Sequence[GradeJob]):
    """Jobs that read their notebook only when an executor takes them: a class's notebooks with
    their plots can be GBs, and a local worker needs one at a time."""

    def __init__(self, submissions: list[Submission], options: JobOptions) -> None:
        self._subs = submissions
        self._options = options

    def __len__(self) -> int:
        return len(self._subs)

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        sub = self._subs[index]
        try:
            raw = sub.path.read_bytes()
        except OSError:
            raw = b""  # vanished since discovery: graded as an empty file, i.e. a bad_input verdict
        return GradeJob(sub.id, sub.file_label, sub.path.name, raw, sub.sha256, self._options)


def grade(options: GradeOptions, *, out: TextIO | None = None, err: TextIO | None = None) -> GradeSummary:
    began = time.monotonic()
    out = out or sys.stdout
    err = err or sys.stderr
    rubric = load_rubric(options.rubric)
    lang = options.lang or rubric.meta.language
    if options.executor not in EXECUTORS:
        raise BadInputError(text("batch.unknown_executor", lang, name=options.executor))
    if options.require_sandbox:
        from grader.sandbox import choose_protections

        choose_protections("require", lang)  # refuse before any work, not once per submission
    from grader.oracle import load_oracle

    # TA grading needs the live reference: a student wheel refuses here (exit 2), not once per submission.
    load_oracle("live")
    executor = _make_executor(options, rubric, lang)
    new_roster = read_roster(options.roster, lang) if options.roster is not None else None  # exit 2 before any work
    with tempfile.TemporaryDirectory(prefix="grader-batch-") as tmp:
        found = discover(options.submissions, id_pattern=options.id_pattern, lang=lang, workdir=Path(tmp))
        with Store.open(options.out, lang) as store, _data_folder(options, lang) as data:
            context = _grading_context(options, rubric, data)  # a calibration for other data is refused here
            run_id = store.begin_run(__version__, rubric.sha256, data_sha256=context.data_sha256,
                                     calibration_sha256=context.calibration_sha256)
            store.replace_problems(run_id, found.problems)
            if new_roster is not None:
                store.save_roster(new_roster)
            roster = store.roster()
            todo, regraded = _to_grade(found, store, context, options.force)
            job_options = JobOptions(data=data.for_jobs, device=options.device,
                                     rubric=str(Path(options.rubric).resolve()) if options.rubric else None,
                                     lang=lang, seed=options.seed,
                                     sandbox="require" if options.require_sandbox else "auto",
                                     secret=load_or_create_secret(Path(options.out) / SECRET_FILE),
                                     calibration=str(context.calibration) if context.calibration else None)
            fresh = _run_jobs(executor, _LazyJobs(todo, job_options), store, run_id, context, lang, err)
            store.end_run(run_id)
            # inside the temporary folder: a zip's notebooks live there
            similar = _similarity(found, lang, err)
            if similar is not None:  # kept, so outputs written again later (after an override) show it too
                store.save_similarity(run_id, similar.pairs, similar.left_out)
                # and the flagged classes, for `grader serve` to show side by side once the zip's copies are gone
                from grader.batch.class_sources import flagged_class_sources

                store.save_class_sources(flagged_class_sources(similar.pairs,
                                                               {s.id: s.path for s in found.submissions}))
            # the TAs' overrides applied, the roster joined (names; missing students get a row)
            results = join(store.results_for_outputs(), roster, rubric, lang)
            problems = store.problems()
    outputs = _write_outputs(results, options.out, lang, similar, err)
    summary = _summarise(found, results, fresh, problems, rubric, options.out, outputs, time.monotonic() - began)
    summary.regraded, summary.regraded_count = dict(regraded.reasons), regraded.count
    summary.missing = [r["submission_id"] for r in results if r.get("outcome") == "missing"]
    summary.not_on_roster = unknown_ids(results)
    print_summary(summary, lang, out)
    return summary


def _make_executor(options: GradeOptions, rubric: Rubric, lang: str) -> Executor:
    if options.executor == "dask":
        if not options.scheduler:
            raise BadInputError(text("batch.dask_needs_scheduler", lang))
        try:
            # Another module (and an optional dependency): imported only when asked for.
            from grader.batch.dask_executor import DaskExecutor
        except ImportError as exc:
            raise BadInputError(text("batch.dask_unavailable", lang, reason=str(exc))) from None
        return DaskExecutor(options.scheduler)
    jobs = options.jobs if options.jobs is not None else default_jobs()
    if jobs < 1:
        raise BadInputError(text("batch.bad_jobs", lang, jobs=jobs))
    timeout = options.job_timeout_s if options.job_timeout_s is not None else job_timeout_s(rubric)
    return LocalExecutor(jobs, timeout)


@dataclass(frozen=True)
class _Data:
    folder: Path             # opened here (a zip extracted): checked, hashed, matched with the calibration
    for_jobs: str | None     # what a job gets: None (the default set), the extracted folder, or the path as given


@contextlib.contextmanager
def _data_folder(options: GradeOptions, lang: str) -> Iterator[_Data]:
    """The dataset as the workers get it, checked once here rather than failing in every job.

    For local workers a data.zip is extracted once, not once per submission. A Dask
    worker gets the path as given (it must exist there too: docs/batch.md).
    """
    if options.data is None:
        from grader.default_data import default_dataset_dir

        # generated once here, not raced by every worker's first job
        yield _Data(default_dataset_dir(), None)
        return
    from grader.data.layout import open_dataset
    from grader.data.validate import raise_if_invalid

    raise_if_invalid(options.data)  # every problem (holdout split included), exit 2, before any job
    with open_dataset(options.data, lang=lang) as folder:
        yield _Data(folder, str(Path(options.data).resolve()) if options.executor == "dask" else str(folder))


@dataclass(frozen=True)
class _Context:
    """What decides every verdict of this run besides the notebook (the store's VerdictKey)."""

    rubric_sha256: str
    calibration: Path | None
    calibration_sha256: str
    data_sha256: str

    def key(self, notebook_sha256: str) -> VerdictKey:
        return VerdictKey(notebook_sha256, self.rubric_sha256, self.calibration_sha256, self.data_sha256, __version__)


def _grading_context(options: GradeOptions, rubric: Rubric, data: _Data) -> _Context:
    from grader.calibration import applied_calibration, data_sha256

    applied = applied_calibration(rubric, data.folder, options.calibration, data=options.data)
    return _Context(rubric.sha256, applied.path, applied.sha256, data_sha256(data.folder))


@dataclass
class _Regrades:
    count: int = 0                                            # stored verdicts redone in this run
    reasons: Counter[str] = field(default_factory=Counter)    # store.REGRADE_REASONS or "force" -> submissions


def _to_grade(found: Discovery, store: Store, context: _Context, force: bool) -> tuple[list[Submission], _Regrades]:
    """The submissions to grade now, and why stored verdicts are redone."""
    todo: list[Submission] = []
    regraded = _Regrades()
    for sub in found.submissions:
        reasons = store.regrade_reasons(sub.id, context.key(sub.sha256))
        if reasons is None:
            todo.append(sub)  # never graded (or a kill interrupted it)
            continue
        if not reasons and force:
            reasons = ["force"]
        if reasons:
            todo.append(sub)
            regraded.count += 1
            regraded.reasons.update(reasons)
    return todo, regraded


def _run_jobs(executor: Executor, jobs: _LazyJobs, store: Store, run_id: int, context: _Context, lang: str,
              err: TextIO) -> dict[str, str]:
    """Grade the jobs, storing each result as it arrives; the outcome per submission graded now."""
    fresh: dict[str, str] = {}
    if not len(jobs):
        return fresh
    progress = Progress(len(jobs), lang, stream=err)

    def on_result(job: GradeJob, result: StoredResult) -> None:
        result["submission_id"] = job.submission_id  # the store's key is the batch's id, whatever the worker says
        store.save_result(result, notebook_sha256=job.notebook_sha256, run_id=run_id,
                          data_sha256=context.data_sha256, calibration_sha256=context.calibration_sha256)
        outcome = str(result.get("outcome") or "graded")
        fresh[job.submission_id] = outcome
        progress.advance(failed=outcome != "graded")

    progress.start()
    try:
        executor.run(jobs, on_result)
    finally:
        progress.finish()
    return fresh


def _similarity(found: Discovery, lang: str, err: TextIO) -> BatchSimilarity | None:
    """Pairs of this batch's submissions with suspiciously alike classes, for a human to look at,
    and the submissions left out of the comparison. None (the summary says "not run") if the
    pass itself fails: a bug there must not cost the class its grades and reports."""
    from grader.similarity import similarity_for_files

    try:
        return similarity_for_files({s.id: s.path for s in found.submissions}, lang=lang)
    except Exception as exc:
        print(text("similarity.pass_failed", lang, error=f"{type(exc).__name__}: {safe_line(str(exc))[:200]}"),
              file=err, flush=True)
        log.debug("the similarity pass failed", exc_info=True)  # the line above names the error, this where
        return None


def _write_outputs(results: list[StoredResult], out_dir: Path, lang: str,
                   similar: BatchSimilarity | None, err: TextIO) -> list[str]:
    from grader.report.outputs import write_outputs

    paths = write_outputs(results, out_dir, lang, similar_pairs=similar.pairs if similar else None,
                          similarity_left_out=similar.left_out if similar else (), log=err)
    return [str(p) for p in (paths.summary_html, paths.grades_csv, paths.junit_xml)] + [
        str(out_dir / "reports"), str(out_dir / "gradescope"), str(out_dir / "results")]


def _summarise(found: Discovery, results: list[StoredResult], fresh: dict[str, str], problems: list[Problem],
               rubric: Rubric, out_dir: Path, outputs: list[str], duration_s: float) -> GradeSummary:
    current = {s.id for s in found.submissions}
    mine = [r for r in results if r.get("submission_id") in current]
    outcomes = Counter(str(r.get("outcome") or "graded") for r in mine)
    scores = [score for r in mine if (r.get("outcome") or "graded") == "graded"
              and (score := finite_float(r.get("score"))) is not None]
    return GradeSummary(
        total=len(found.submissions),
        graded_now=sum(1 for o in fresh.values() if o == "graded"),
        failed_now=sum(1 for o in fresh.values() if o != "graded"),
        skipped_unchanged=len(found.submissions) - len(fresh),
        outcomes=dict(outcomes), mean_score=sum(scores) / len(scores) if scores else None,
        max_score=rubric.max_score, problems=problems, out_dir=Path(out_dir), outputs=outputs,
        duration_s=duration_s,
    )




def regrade_reasons_text(summary: GradeSummary, lang: str) -> str:
    """"dataset changed" when every regrade had that reason, else "dataset changed (2), rubric changed (1)"."""
    parts = []
    for reason in (*REGRADE_REASONS, "force"):
        count = summary.regraded.get(reason, 0)
        if count:
            label = text(f"batch.regrade_{reason}", lang)
            parts.append(label if count == summary.regraded_count else text("batch.regrade_count", lang, reason=label,
                                                                             count=count))
    return ", ".join(parts)


def _some(ids: list[str], limit: int = 10) -> str:
    return ", ".join(ids[:limit]) + (f", … (+{len(ids) - limit})" if len(ids) > limit else "")


def print_summary(summary: GradeSummary, lang: str, stream: TextIO) -> None:
    from grader.safe_text import terminal_stream

    stream = terminal_stream(stream)  # problems quote file names: student text, shown literally

    def say(key: str, **params: Any) -> None:
        print(text(f"batch.{key}", lang, **params), file=stream)

    say("summary_title", total=summary.total, duration=format_duration(summary.duration_s))
    say("summary_now", graded=summary.graded_now, failed=summary.failed_now, skipped=summary.skipped_unchanged)
    if summary.regraded_count:
        say("summary_regraded", count=summary.regraded_count, reasons=regrade_reasons_text(summary, lang))
    say("summary_outcomes", graded=summary.outcomes.get("graded", 0),
        bad_input=summary.outcomes.get("bad_input", 0), crashed=summary.outcomes.get("crashed", 0),
        timeout=summary.outcomes.get("timeout", 0))
    if summary.mean_score is not None:
        say("summary_mean", mean=summary.mean_score, max_score=summary.max_score)
    if summary.missing:
        say("summary_missing", count=len(summary.missing), ids=_some(summary.missing))
    if summary.not_on_roster:
        say("summary_not_on_roster", count=len(summary.not_on_roster), ids=_some(summary.not_on_roster))
    if summary.problems:
        say("summary_problems", count=len(summary.problems))
        for problem in summary.problems[:_PROBLEMS_SHOWN]:
            print("  - " + problem.message(lang), file=stream)
        if len(summary.problems) > _PROBLEMS_SHOWN:
            say("summary_more_problems", count=len(summary.problems) - _PROBLEMS_SHOWN,
                store=str(summary.out_dir / STORE_NAME))
    say("summary_files", out=str(summary.out_dir), store=str(summary.out_dir / STORE_NAME))
    if summary.exit_code != EXIT_OK:
        say("summary_not_all_graded")

