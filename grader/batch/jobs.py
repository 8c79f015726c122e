"""One submission as a self-contained job, and the function that grades it.

This is the contract every executor shares (local worker processes, Dask):
a `GradeJob` is picklable and carries the notebook's bytes, so a remote worker
needs no shared filesystem; `grade_job` never raises and always returns a
result dict in the schema of grader.report.results.

Importing this module must stay cheap (no torch): the coordinator imports it
to build jobs and failure verdicts; only `grade_job` pulls in the pipeline.
"""
from __future__ import annotations

import hashlib
import logging
import re
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import GraderError
from grader.report.results import StoredResult

log = logging.getLogger(__name__)

# A crash reason is one line in a gradebook and a report, not a traceback.
_REASON_CHARS = 300


@dataclass(frozen=True)
class JobOptions:
    """How to grade; plain values only, so a job pickles to any worker."""

    data: str | None
    device: str
    rubric: str | None
    lang: str
    seed: int | None = None
    sandbox: str = "auto"        # "require": a worker without every protection refuses (bad_input verdict)
    # The store's grading secret (grader/seeds.py): the same notebook draws the same inputs on every regrade.
    secret: bytes | None = field(default=None, repr=False)
    # The calibration the coordinator found for this data (its file), checked there once; None: none applies.
    calibration: str | None = None


@dataclass(frozen=True)
class GradeJob:
    submission_id: str
    file_label: str          # shown to the TA: the path relative to SUBMISSIONS
    notebook_name: str       # the file name the notebook is graded under
    notebook_bytes: bytes
    notebook_sha256: str
    options: JobOptions


def make_job(submission_id: str, file_label: str, path: Path, options: JobOptions) -> GradeJob:
    raw = Path(path).read_bytes()
    return GradeJob(submission_id, file_label, Path(path).name, raw, hashlib.sha256(raw).hexdigest(), options)


def grade_job(job: GradeJob) -> StoredResult:
    """Grade one job; never raises. A bad notebook gives outcome "bad_input", anything else "crashed"."""
    began = time.monotonic()
    try:
        return _grade(job)
    except GraderError as exc:
        # details (say the kernel's last log lines) stay with the stored verdict, for the TA
        message, details = exc.text_in(job.options.lang)
        error = "\n".join([message, *details])
        return failed_result(job, "bad_input" if exc.exit_code == 2 else "crashed", error,
                             duration_s=time.monotonic() - began)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        # the verdict keeps one line of it; a bug of ours needs the traceback
        log.warning("grading %s crashed", job.submission_id, exc_info=True)
        return failed_result(job, "crashed", short_reason(exc), duration_s=time.monotonic() - began)


def _grade(job: GradeJob) -> StoredResult:
    # Imported here: torch and the kernel machinery load only where grading happens.
    from grader.pipeline import CheckOptions, check_notebook
    from grader.report.json_report import report_to_json
    from grader.rubric import load_rubric

    options = job.options
    rubric = load_rubric(Path(options.rubric) if options.rubric else None)
    with tempfile.TemporaryDirectory(prefix="grader-job-") as tmp:
        # A private copy under a safe name: the label may hold any characters an LMS allows.
        path = Path(tmp) / _safe_file_name(job.notebook_name)
        path.write_bytes(job.notebook_bytes)
        check = CheckOptions(
            data=Path(options.data) if options.data else None, device=options.device,
            rubric=Path(options.rubric) if options.rubric else None, seed=options.seed,
            sandbox=options.sandbox,  # type: ignore[arg-type]
            secret=options.secret, calibration=Path(options.calibration) if options.calibration else None,
        )
        report = check_notebook(path, check, lang=options.lang)
        report.submission_id = job.submission_id
        report.notebook = job.file_label
        result = report_to_json(report, rubric, options.lang)
    result["file"] = job.file_label
    result["notebook_sha256"] = job.notebook_sha256
    return result


def failed_result(job: GradeJob, outcome: str, reason: str, *, duration_s: float = 0.0) -> StoredResult:
    """The verdict for a job that could not be graded (bad input, crash, time-out).

    Cheap (no torch), so the coordinator builds it when a worker dies or hangs.
    """
    from grader.report.results import ungraded_result
    from grader.rubric import load_rubric

    options = job.options
    rubric = load_rubric(Path(options.rubric) if options.rubric else None)
    result = ungraded_result(submission_id=job.submission_id, file=job.file_label, outcome=outcome,
                             error=reason, rubric=rubric, lang=options.lang, duration_s=duration_s)
    result["notebook_sha256"] = job.notebook_sha256
    return result


def short_reason(exc: BaseException) -> str:
    """`TypeName: message` on one line, with where it happened in the grader."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    message = " ".join(str(exc).split())
    line = f"{type(exc).__name__}: {message}{where}" if message else f"{type(exc).__name__}{where}"
    return line[:_REASON_CHARS]


def _safe_file_name(name: str) -> str:
    stem = re.sub(r"[^\w.-]+", "_", Path(name).stem)[:100].strip("._") or "submission"
    return f"{stem}.ipynb"
