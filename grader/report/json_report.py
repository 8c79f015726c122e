"""`--format json`: a graded notebook's SubmissionReport as its stored result (schema 1, grader/report/results.py).

The fixed core keys (schema, notebook, score, max_score, device,
duration_s, checks[id, status, score, max_score, message, hint]) are always
present; the extra keys carry what the HTML report needs, so `grader report`
can render from stored JSON without regrading (grader/report/results.py
describes them). `self_check` is written only for a self-check run (the
report's `self_check` is set), so a fully graded result is unchanged.
"""
from __future__ import annotations

import json
import math
from typing import Any, cast

from grader.hosting.records import CellRecord
from grader.messages import render
from grader.report.results import (
    RunFacts,
    SelfCheck,
    StoredCell,
    StoredCheck,
    StoredMsg,
    StoredResult,
    build_result,
    submission_id_for,
)
from grader.result import Status
from grader.rubric import Rubric
from grader.score import ScoredCheck
from grader.submission import SubmissionReport

# A failing cell's source goes into the report; a megabyte of it would drown the report.
_CELL_SOURCE_CHARS = 20_000


def _plain(value: Any) -> Any:
    """JSON-safe copy of check details (numpy scalars and arrays, tuples, NaN)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def report_to_json(report: SubmissionReport, rubric: Rubric, lang: str) -> StoredResult:
    """The stored result of a graded notebook, built by the same builder as an ungraded one."""
    run = RunFacts(
        device=report.device, device_note=report.device_note, duration_s=report.duration_s,
        device_note_i18n=cast(StoredMsg, _plain(report.device_reason.to_json())) if report.device_reason else None,
        npu_remapped=report.npu_remapped,
        shell_escapes=report.shell_escapes, loader_workers=report.loader_workers, epoch_cap=report.epoch_cap,
        batch_cap=report.batch_cap,
        kernel_died=report.kernel_died, fallback_kernel=report.fallback_kernel,
        cells=[_cell(c, lang) for c in report.cells], student_curve=report.student_curve,
        protections=report.protections.to_json() if report.protections else None, timings=report.timings,
        grader_version=report.grader_version,
    )
    self_check = cast(SelfCheck, _plain(dict(report.self_check))) if report.self_check is not None else None
    return build_result(
        submission_id=report.submission_id or submission_id_for(report.notebook), file=report.notebook,
        outcome="graded", error=None, rubric=rubric, lang=lang,
        checks=[_check(c, rubric, lang) for c in report.checks], score=report.score, max_score=report.max_score,
        run=run, self_check=self_check,
    )


def _check(c: ScoredCheck, rubric: Rubric, lang: str) -> StoredCheck:
    spec = rubric.checks[c.id]
    show_hint = c.status is not Status.PASSED
    return {
        "id": c.id,
        "status": c.status.value,
        "score": c.score,
        "max_score": c.max_score,
        "message": render(c.message, lang) if c.message else "",
        "hint": spec.hint(lang) if show_hint else "",
        "diagnosis": render(c.diagnosis, lang) if c.diagnosis else None,
        "visibility": c.visibility,
        "details": _plain(c.details),
        "i18n": {
            "message": _plain(c.message.to_json()) if c.message else None,
            "diagnosis": _plain(c.diagnosis.to_json()) if c.diagnosis else None,
            "hint": {"zh": spec.hint_zh, "en": spec.hint_en} if show_hint else None,
        },
    }


def _cell(cell: CellRecord, lang: str) -> StoredCell:
    """A cell's record; the source only for a cell that did not run cleanly (the report shows it)."""
    source = None
    if cell.status != "ok":
        source = cell.source if len(cell.source) <= _CELL_SOURCE_CHARS else cell.source[:_CELL_SOURCE_CHARS] + "\n[...]"
    return {
        "index": cell.index, "status": cell.status, "duration_s": round(cell.duration_s, 3),
        "error_name": cell.error_name, "error_value": cell.error_value, "traceback": cell.traceback,
        "source": source, "output_truncated": cell.output_truncated,
        "message": render(cell.message, lang) if cell.message else None,
        "message_i18n": _plain(cell.message.to_json()) if cell.message else None,
    }


def dumps(report: SubmissionReport, rubric: Rubric, lang: str) -> str:
    return json.dumps(report_to_json(report, rubric, lang), ensure_ascii=False, indent=2)
