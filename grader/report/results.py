"""Stored results: the one format every report, export and the batch store share.

A result is the JSON object of `grader check --format json` (schema 1). Every
renderer (terminal, HTML, grades.csv, Gradescope, JUnit, class summary) takes
result dicts, never live pipeline objects, so `grader report` can re-render
from stored JSON without regrading.

Fields beyond design.md's fixed set:
- `submission_id`, `file`: who and what was graded;
- `outcome`: "graded" when the pipeline ran to the end; otherwise why not
  ("bad_input", "crashed", "timeout"), with `error` saying what happened.
  A result that was not graded still lists every rubric check (0 points,
  status "error"), so exports stay rectangular and nothing is silently lost;
- `title`: the rubric's title in both languages;
- per check `i18n`: the message and diagnosis as message keys + parameters and
  the hint in both languages, so a stored result renders in either language.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Iterable

from grader.errors import BadInputError
from grader.messages import LANGUAGES, Msg, render, text
from grader.rubric import Rubric

SCHEMA = 1
OUTCOMES = ("graded", "bad_input", "crashed", "timeout")
REQUIRED_KEYS = ("schema", "notebook", "score", "max_score", "checks")
REQUIRED_CHECK_KEYS = ("id", "status", "score", "max_score")
MAX_RESULT_BYTES = 64 * 2**20


def submission_id_for(notebook: str | Path) -> str:
    """The id `grader check` gives a lone notebook: its file name without suffix."""
    return Path(notebook).stem


def ungraded_result(*, submission_id: str, file: str, outcome: str, error: str, rubric: Rubric,
                    lang: str, duration_s: float = 0.0, device: str = "") -> dict[str, Any]:
    """The result of a submission the pipeline could not grade: every check 0 points, status error.

    `error` is the user-facing reason, already in `lang` (a GraderError's message
    is rendered where it is raised).
    """
    if outcome not in OUTCOMES or outcome == "graded":
        raise ValueError(f"not an ungraded outcome: {outcome!r}")
    reason = Msg("report.ungraded", {"outcome": Msg(f"report.outcome_{outcome}"), "error": error})
    checks = []
    for spec in rubric.checks.values():
        checks.append({
            "id": spec.id, "status": "error", "score": 0.0, "max_score": spec.points,
            "message": render(reason, lang), "hint": spec.hint(lang), "diagnosis": None,
            "visibility": spec.visibility, "details": {},
            "i18n": {"message": reason.to_json(), "diagnosis": None,
                     "hint": {"zh": spec.hint_zh, "en": spec.hint_en}},
        })
    return {
        "schema": SCHEMA, "submission_id": submission_id, "file": file, "notebook": file,
        "outcome": outcome, "error": error,
        "score": 0.0, "max_score": rubric.max_score, "device": device,
        "duration_s": round(duration_s, 3), "checks": checks, "lang": lang,
        "title": {"zh": rubric.meta.title_zh, "en": rubric.meta.title_en},
        "npu_remapped": False, "shell_escapes": [], "kernel_died": False, "fallback_kernel": False,
        "cells": [], "timings": {}, "student_curve": None,
        "rubric_sha256": rubric.sha256, "grader_version": _version(),
    }


def _version() -> str:
    from grader import __version__

    return __version__


def validate_result(data: Any, source: str, lang: str = "zh") -> dict[str, Any]:
    """The result if it has the shape every renderer relies on; BadInputError naming the problem."""
    if not isinstance(data, dict):
        raise BadInputError(text("report.bad_result", lang, source=source, problem="not a JSON object"))
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise BadInputError(text("report.bad_result", lang, source=source, problem="missing " + ", ".join(missing)))
    if data["schema"] != SCHEMA:
        raise BadInputError(text("report.bad_result", lang, source=source, problem=f"schema {data['schema']!r} (expected {SCHEMA})"))
    if not isinstance(data["checks"], list):
        raise BadInputError(text("report.bad_result", lang, source=source, problem="checks is not a list"))
    for check in data["checks"]:
        if not isinstance(check, dict) or any(k not in check for k in REQUIRED_CHECK_KEYS):
            raise BadInputError(text("report.bad_result", lang, source=source, problem="a check lacks id/status/score/max_score"))
    data.setdefault("submission_id", submission_id_for(str(data["notebook"])))
    data.setdefault("file", str(data["notebook"]))
    data.setdefault("outcome", "graded")
    data.setdefault("error", None)
    return data


def load_results(path: Path, lang: str = "zh") -> list[dict[str, Any]]:
    """Results from a JSON file (one object or a list of them) or a folder of *.json files (recursive)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.json") if p.is_file())
        if not files:
            raise BadInputError(text("report.no_results", lang, path=str(path)))
        results: list[dict[str, Any]] = []
        for f in files:
            results += _load_file(f, lang)
        return results
    if not path.is_file():
        raise BadInputError(text("report.no_results", lang, path=str(path)))
    return _load_file(path, lang)


def _load_file(path: Path, lang: str) -> list[dict[str, Any]]:
    if path.stat().st_size > MAX_RESULT_BYTES:
        raise BadInputError(text("report.bad_result", lang, source=str(path), problem="file too large"))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInputError(text("report.bad_result", lang, source=str(path), problem=f"not JSON ({exc})")) from None
    items: Iterable[Any] = data if isinstance(data, list) else [data]
    return [validate_result(item, str(path), lang) for item in items]


def localise(result: dict[str, Any], lang: str) -> dict[str, Any]:
    """A copy whose messages, diagnoses and hints are in `lang` (where the result stored their keys)."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}")
    out = copy.deepcopy(result)
    for check in out["checks"]:
        i18n = check.get("i18n") or {}
        message = Msg.from_json(i18n.get("message"))
        if message is not None:
            check["message"] = render(message, lang)
        diagnosis = Msg.from_json(i18n.get("diagnosis"))
        if diagnosis is not None:
            check["diagnosis"] = render(diagnosis, lang)
        hints = i18n.get("hint")
        if isinstance(hints, dict) and isinstance(hints.get(lang), str) and check.get("hint"):
            check["hint"] = hints[lang]
    for cell in out.get("cells", []):
        message = Msg.from_json(cell.get("message_i18n"))
        if message is not None:
            cell["message"] = render(message, lang)
    out["lang"] = lang
    return out


def title(result: dict[str, Any], lang: str) -> str:
    titles = result.get("title")
    if isinstance(titles, dict) and isinstance(titles.get(lang), str):
        return titles[lang]
    return text("report.default_title", lang)


def dumps(result: dict[str, Any]) -> str:
    return json.dumps(result, ensure_ascii=False, indent=2)
