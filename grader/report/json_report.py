"""`--format json`: one versioned object per submission (schema 1).

The keys design.md fixes (schema, notebook, score, max_score, device,
duration_s, checks[id, status, score, max_score, message, hint]) are always
present; the extra keys carry what the HTML report needs, so `grader report`
can render from stored JSON without regrading.
"""
from __future__ import annotations

import json
import math
from typing import Any

from grader.messages import render
from grader.pipeline import SubmissionReport
from grader.rubric import Rubric
from grader.result import Status

SCHEMA = 1


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


def report_to_json(report: SubmissionReport, rubric: Rubric, lang: str) -> dict[str, Any]:
    checks = []
    for c in report.checks:
        checks.append({
            "id": c.id,
            "status": c.status.value,
            "score": c.score,
            "max_score": c.max_score,
            "message": render(c.message, lang),
            "hint": "" if c.status is Status.PASSED else rubric.checks[c.id].hint(lang),
            "diagnosis": render(c.diagnosis, lang) if c.diagnosis else None,
            "visibility": c.visibility,
            "details": _plain(c.details),
        })
    return {
        "schema": SCHEMA,
        "notebook": report.notebook,
        "score": report.score,
        "max_score": report.max_score,
        "device": report.device,
        "duration_s": round(report.duration_s, 3),
        "checks": checks,
        "lang": lang,
        "npu_remapped": report.npu_remapped,
        "shell_escapes": report.shell_escapes,
        "kernel_died": report.kernel_died,
        "fallback_kernel": report.fallback_kernel,
        "cells": [
            {"index": c.index, "status": c.status, "duration_s": round(c.duration_s, 3),
             "error_name": c.error_name, "error_value": c.error_value, "traceback": c.traceback}
            for c in report.cells
        ],
        "timings": {k: round(v, 3) for k, v in report.timings.items()},
        "rubric_sha256": report.rubric_sha256,
        "grader_version": report.grader_version,
    }


def dumps(report: SubmissionReport, rubric: Rubric, lang: str) -> str:
    return json.dumps(report_to_json(report, rubric, lang), ensure_ascii=False, indent=2)
