"""Stored results: the one format every report, export and the batch store share.

A result is the JSON object of `grader check --format json` (schema 1). Every
renderer (terminal, HTML, grades.csv, Gradescope, JUnit, class summary) takes
result dicts, never live pipeline objects, so `grader report` can re-render
from stored JSON without regrading.

Fields beyond the fixed core (schema, notebook, score, max_score, device, duration_s,
checks[id, status, score, max_score, message, hint]):
- `submission_id`, `file`: who and what was graded;
- `outcome`: "graded" when the pipeline ran to the end; otherwise why not
  ("bad_input", "crashed", "timeout"), with `error` saying what happened.
  A result that was not graded still lists every rubric check (0 points,
  status "error"), so exports stay rectangular and nothing is silently lost;
- `title`: the rubric's title in both languages;
- per check `i18n`: the message and diagnosis as message keys + parameters and
  the hint in both languages, so a stored result renders in either language;
- `self_check`: present (an object) only in the result of a student's
  self-check (`grader check`), which compares against packaged golden vectors
  and does not run the rubric's hidden checks:

      "self_check": {"hidden_count": 2, "hidden_points": 4.0, "reference": "golden"}

  `hidden_count` (int >= 0) and `hidden_points` (number >= 0) say how many
  checks, worth how many points, were not run; `reference` is what the visible
  checks compared against ("golden": packaged vectors; "live": the reference
  implementation). In such a result `checks` lists only the visible checks and
  `score` / `max_score` are over them only. Absent or null means full grading
  (`grader grade`, and every result stored before this field existed). Every
  renderer then says, next to the score, that this was a self-check, how many
  hidden checks remain, and that passing it does not guarantee full marks
  (`self_check_notice`); none of them may claim "all tests passed".

Longer than most modules on purpose: it is the contract, and its types, their
one builder (`build_result`) and their one reader (`from_json`) change together.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, cast

from grader.errors import BadInputError
from grader.messages import LANGUAGES, Msg, render, text
from grader.rubric import Rubric

log = logging.getLogger(__name__)

SCHEMA = 1
OUTCOMES = ("graded", "bad_input", "crashed", "timeout", "missing")  # missing: on the roster, no submission
REQUIRED_KEYS = ("schema", "notebook", "score", "max_score", "checks")
REQUIRED_CHECK_KEYS = ("id", "status", "score", "max_score")
MAX_RESULT_BYTES = 64 * 2**20


# --- the contract: what a stored result holds -----------------------------------------------------------------


class StoredMsg(TypedDict):
    """A message as keys and parameters (grader.messages.Msg.to_json), so it renders in either language."""

    key: str
    params: dict[str, Any]


class CheckI18n(TypedDict):
    message: StoredMsg | None
    diagnosis: StoredMsg | None
    hint: dict[str, str] | None       # {"zh": ..., "en": ...}, only where the hint is shown (not passed)


class CurvePoint(TypedDict):
    epoch: int
    loss: float | None
    accuracy: float | None


class TrainingDetails(TypedDict):
    """lstm.train's details (grader/checks/training.py writes them, the HTML report's charts read them).

    Beside these the check may add: accuracy, error, heldout, measured_on, predictions_recomputed.
    """

    threshold: float
    best_accuracy: float
    epochs: int
    duration_s: float
    curve: list[CurvePoint]
    seed: int
    device: str
    protocol: dict[str, float]        # learning_rate, batch_size, max_epochs, time_budget_s


class _StoredCheckKeys(TypedDict):
    id: str
    status: str                       # a grader.result.Status value
    score: float
    max_score: float
    message: str                      # in the result's `lang`
    hint: str                         # "" for a passed check
    diagnosis: str | None
    visibility: str                   # "visible" or "hidden"
    details: dict[str, Any]           # what the check measured; keys per check (docs/architecture.md)
    i18n: CheckI18n


class AppliedOverride(TypedDict):
    """A TA's override as applied to a check (grader/overrides.py): the grader's own points kept beside it."""

    points: float                     # what the check now scores
    grader_score: float               # what the grader gave it
    reason: str
    by: str
    at: str                           # when, ISO 8601 UTC
    needs_review: bool                # made against another version of the notebook than the one graded


class StoredCheck(_StoredCheckKeys, total=False):
    override: AppliedOverride         # only where a TA's override applies


class StoredCell(TypedDict):
    index: int                        # counts every cell, markdown included
    status: str                       # "ok", "error", "timeout", "not_run"
    duration_s: float
    error_name: str | None
    error_value: str | None
    traceback: str | None
    source: str | None                # only for a cell that did not run cleanly
    output_truncated: bool
    message: str | None
    message_i18n: StoredMsg | None


class SelfCheck(TypedDict):
    hidden_count: int
    hidden_points: float
    reference: str                    # "golden" (packaged vectors) or "live"


class _StoredResultKeys(TypedDict):
    """Every key of a stored result but `self_check` (StoredResult)."""

    schema: int
    submission_id: str
    file: str
    notebook: str
    outcome: str                      # one of OUTCOMES
    error: str | None                 # why it was not graded, in `lang`
    title: dict[str, str]
    score: float
    max_score: float
    device: str
    device_note: str                  # which device and why (grader/devices.py), in `lang`
    duration_s: float
    checks: list[StoredCheck]
    lang: str
    npu_remapped: bool
    shell_escapes: list[dict[str, Any]]
    loader_workers: list[int]
    epoch_cap: int
    batch_cap: int                    # DataLoader batches per pass inside a capped epoch loop (0: all)
    kernel_died: bool
    fallback_kernel: bool
    cells: list[StoredCell]
    student_curve: dict[str, Any] | None
    protections: dict[str, Any] | None
    timings: dict[str, float]
    rubric_sha256: str
    grader_version: str


class Receipt(TypedDict):
    """What a released report (grader release) says about its grading, so a dispute starts from facts."""

    notebook_sha256: str
    graded_at: str
    grader_version: str
    rubric_sha256: str
    device: str
    released_at: str
    not_shown_points: float           # points of checks the rubric releases with release = "none"


# total=False for the one optional key: NotRequired[...] is not seen under `from __future__ import annotations`
# on Python 3.10 and 3.11 (it made `self_check` a required key).
class StoredResult(_StoredResultKeys, total=False):
    """One submission's result: what `grader check --format json` prints and every renderer reads."""

    self_check: SelfCheck             # a self-check's result only (see the module docstring)
    notebook_sha256: str              # a batch's results: the bytes that were graded (the store keys on it)
    render_error: list[str]           # outputs that could not be rendered for it (grader/report/outputs.py)
    grader_score: float               # where a TA's override applies: the grader's own total (grader/overrides.py)
    overridden: int                   # how many of its checks a TA's override sets
    needs_review: bool                # an override was made against another version of the notebook
    student_name: str                 # from the roster (grader/roster.py), where one was given
    section: str
    on_roster: bool                   # False: a submission whose id the roster does not list
    receipt: Receipt                  # a report released to its student (grader/release.py)
    device_note_i18n: StoredMsg       # device_note as a message (graded results), rendered in any language


@dataclass(frozen=True)
class RunFacts:
    """What a run says about itself beyond its checks; the defaults are what an ungraded result says."""

    device: str = ""
    device_note: str = ""
    device_note_i18n: StoredMsg | None = None
    duration_s: float = 0.0
    npu_remapped: bool = False
    shell_escapes: list[dict[str, Any]] = field(default_factory=list)
    loader_workers: list[int] = field(default_factory=list)
    epoch_cap: int = 0
    batch_cap: int = 0
    kernel_died: bool = False
    fallback_kernel: bool = False
    cells: list[StoredCell] = field(default_factory=list)
    student_curve: dict[str, Any] | None = None
    protections: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    grader_version: str = ""


def build_result(*, submission_id: str, file: str, outcome: str, error: str | None, rubric: Rubric, lang: str,
                 checks: list[StoredCheck], score: float, max_score: float, run: RunFacts,
                 self_check: SelfCheck | None = None) -> StoredResult:
    """The one builder of a stored result, graded or not: every result has every key."""
    result: StoredResult = {
        "schema": SCHEMA, "submission_id": submission_id, "file": file, "notebook": file,
        "outcome": outcome, "error": error,
        "title": {"zh": rubric.meta.title_zh, "en": rubric.meta.title_en},
        "score": score, "max_score": max_score, "device": run.device, "device_note": run.device_note,
        "duration_s": round(run.duration_s, 3),
        "checks": checks, "lang": lang,
        "npu_remapped": run.npu_remapped, "shell_escapes": list(run.shell_escapes),
        "loader_workers": list(run.loader_workers), "epoch_cap": run.epoch_cap,
        "batch_cap": run.batch_cap,
        "kernel_died": run.kernel_died, "fallback_kernel": run.fallback_kernel, "cells": list(run.cells),
        "student_curve": run.student_curve, "protections": run.protections,
        "timings": {k: round(v, 3) for k, v in run.timings.items()},
        "rubric_sha256": rubric.sha256, "grader_version": run.grader_version or _version(),
    }
    if self_check is not None:
        result["self_check"] = cast(SelfCheck, dict(self_check))
    if run.device_note_i18n is not None:
        result["device_note_i18n"] = run.device_note_i18n
    return result


def as_dict(value: object) -> dict[str, Any]:
    """A JSON object read from a stored result, or {} when it is something else (the file is not trusted)."""
    return value if isinstance(value, dict) else {}


def from_json(data: Any, source: str, lang: str = "zh") -> StoredResult:
    """A stored result read back (validate_result): its shape checked, every key present. The other way is
    `dumps`."""
    return validate_result(data, source, lang)


def submission_id_for(notebook: str | Path) -> str:
    """The id `grader check` gives a lone notebook: its file name without suffix."""
    return Path(notebook).stem


def self_check_summary(rubric: Rubric, reference: str = "golden") -> SelfCheck:
    """The `self_check` field for a self-check run under `rubric`: its hidden checks, which were not run."""
    hidden = [spec for spec in rubric.checks.values() if spec.visibility == "hidden"]
    return {"hidden_count": len(hidden), "hidden_points": float(sum(spec.points for spec in hidden)),
            "reference": reference}


def ungraded_result(*, submission_id: str, file: str, outcome: str, error: str, rubric: Rubric,
                    lang: str, duration_s: float = 0.0, device: str = "",
                    self_check: SelfCheck | None = None) -> StoredResult:
    """The result of a submission the pipeline could not grade: every check 0 points, status error.

    `error` is the user-facing reason, already in `lang` (a GraderError's message
    is rendered where it is raised). With `self_check` (see the module docstring;
    `self_check_summary` builds it) the result is a self-check's: it carries the
    field, lists only the visible checks, and `max_score` is theirs.
    """
    if outcome not in OUTCOMES or outcome == "graded":
        raise ValueError(f"not an ungraded outcome: {outcome!r}")
    reason = Msg("report.ungraded", {"outcome": Msg(f"report.outcome_{outcome}"), "error": error})
    specs = [spec for spec in rubric.checks.values() if self_check is None or spec.visibility != "hidden"]
    checks: list[StoredCheck] = [{
        "id": spec.id, "status": "error", "score": 0.0, "max_score": spec.points,
        "message": render(reason, lang), "hint": spec.hint(lang), "diagnosis": None,
        "visibility": spec.visibility, "details": {},
        "i18n": {"message": cast(StoredMsg, reason.to_json()), "diagnosis": None,
                 "hint": {"zh": spec.hint_zh, "en": spec.hint_en}},
    } for spec in specs]
    max_score = rubric.max_score if self_check is None else float(sum(spec.points for spec in specs))
    return build_result(submission_id=submission_id, file=file, outcome=outcome, error=error, rubric=rubric,
                        lang=lang, checks=checks, score=0.0, max_score=max_score,
                        run=RunFacts(device=device, duration_s=duration_s), self_check=self_check)


def _version() -> str:
    from grader import __version__

    return __version__


def validate_result(data: Any, source: str, lang: str = "zh") -> StoredResult:
    """The result if it has the shape every renderer relies on; BadInputError naming the problem."""
    if not isinstance(data, dict):
        raise BadInputError(text("report.bad_result", lang, source=source, problem="not a JSON object"))
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise BadInputError(text("report.bad_result", lang, source=source, problem="missing " + ", ".join(missing)))
    if data["schema"] != SCHEMA:
        wrong = f"schema {data['schema']!r} (expected {SCHEMA})"
        raise BadInputError(text("report.bad_result", lang, source=source, problem=wrong))
    if not isinstance(data["checks"], list):
        raise BadInputError(text("report.bad_result", lang, source=source, problem="checks is not a list"))
    for check in data["checks"]:
        if not isinstance(check, dict) or any(k not in check for k in REQUIRED_CHECK_KEYS):
            raise BadInputError(text("report.bad_result", lang, source=source,
                                     problem="a check lacks id/status/score/max_score"))
    problem = _self_check_problem(data.get("self_check"))
    if problem:
        raise BadInputError(text("report.bad_result", lang, source=source, problem=problem))
    data.setdefault("submission_id", submission_id_for(str(data["notebook"])))
    data.setdefault("file", str(data["notebook"]))
    data.setdefault("outcome", "graded")
    data.setdefault("error", None)
    # A result stored by an older grader lacks the keys added since, and a tampered one may hold a key of the
    # wrong kind (`cells` a string): either gets what an ungraded result says, so renderers can rely on it.
    for key, value in _NEUTRAL.items():
        if key not in data or not _same_kind(data[key], value):
            data[key] = copy.deepcopy(value)
    return cast(StoredResult, data)


def _neutral() -> dict[str, Any]:
    return {**dataclasses.asdict(RunFacts()), "title": {}, "lang": "zh", "rubric_sha256": ""}


_NEUTRAL = _neutral()


def _same_kind(found: object, neutral: object) -> bool:
    """Whether a stored value is of the JSON kind its neutral value is (None: also a str, dict or list)."""
    if neutral is None:
        return found is None or isinstance(found, (str, dict, list))
    if isinstance(neutral, bool):
        return isinstance(found, bool)
    if isinstance(neutral, (int, float)):
        return isinstance(found, (int, float)) and not isinstance(found, bool)
    return isinstance(found, type(neutral))


def neutral_keys() -> dict[str, Any]:
    """Every key of a result a run may not have reached, with the value an ungraded result gives it."""
    return copy.deepcopy(_NEUTRAL)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_points(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value >= 0)


def _self_check_problem(value: Any) -> str | None:
    """What is wrong with a result's `self_check` field; None when it is well formed or absent/null."""
    if value is None:
        return None
    if not isinstance(value, dict):
        return "self_check is not an object"
    if not _is_count(value.get("hidden_count")):
        return f"self_check.hidden_count {value.get('hidden_count')!r} is not a non-negative integer"
    if not _is_points(value.get("hidden_points")):
        return f"self_check.hidden_points {value.get('hidden_points')!r} is not a non-negative number"
    if not isinstance(value.get("reference"), str) or not value["reference"]:
        return f"self_check.reference {value.get('reference')!r} is not a non-empty string"
    return None


def self_check_of(result: StoredResult) -> SelfCheck | None:
    """The result's `self_check` field when it is a well-formed one, else None (full grading)."""
    value = result.get("self_check")
    return value if isinstance(value, dict) and _self_check_problem(value) is None else None


def self_check_notice(result: StoredResult, lang: str) -> str:
    """What every renderer shows next to a self-check's score; "" for a fully graded result.

    Names the visible checks passed, the hidden checks (and their points) that only
    TA grading runs, the fresh inputs grading uses, and that a pass here does not
    guarantee full marks. It never says "all passed".
    """
    info = self_check_of(result)
    if info is None:
        return ""
    checks = [c for c in result.get("checks") or [] if isinstance(c, dict)]
    passed = sum(1 for c in checks if c.get("status") == "passed")
    parts = [text("report.self_check_visible", lang, passed=passed, visible=len(checks),
                  score=_points(result.get("score")), max_score=_points(result.get("max_score")))]
    hidden = info["hidden_count"]
    if hidden == 0:
        parts.append(text("report.self_check_no_hidden", lang))
    else:
        key = "report.self_check_hidden_one" if hidden == 1 else "report.self_check_hidden"
        parts.append(text(key, lang, hidden=hidden, points=_points(info["hidden_points"])))
    parts.append(text("report.self_check_no_guarantee", lang))
    return text("report.self_check_join", lang, first=parts[0], second=parts[1], third=parts[2])


def override_note(check: StoredCheck, lang: str) -> str:
    """"adjusted by a TA from 0 to 8 by ta: reason" (and "needs review" when it is flagged), or "" without one.

    Every renderer shows an override with this text, beside the grader's own verdict."""
    override = check.get("override")
    if not isinstance(override, dict):
        return ""
    note = text("override.adjusted_from", lang, grader_score=_number(override.get("grader_score")),
                points=_number(override.get("points")), by=str(override.get("by", "")),
                reason=str(override.get("reason", "")))
    if override.get("needs_review"):
        note += " (" + text("override.needs_review", lang) + ")"
    return note


def _number(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _points(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return f"{value:g}"
    return str(value)


def load_results(path: Path, lang: str = "zh") -> list[StoredResult]:
    """Results from a JSON file (one object or a list of them) or a folder of *.json files (recursive)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.json") if p.is_file())
        if not files:
            raise BadInputError(text("report.no_results", lang, path=str(path)))
        results: list[StoredResult] = []
        for f in files:
            results += _load_file(f, lang)
        return results
    if not path.is_file():
        raise BadInputError(text("report.no_results", lang, path=str(path)))
    return _load_file(path, lang)


def _load_file(path: Path, lang: str) -> list[StoredResult]:
    if path.stat().st_size > MAX_RESULT_BYTES:
        raise BadInputError(text("report.bad_result", lang, source=str(path), problem="file too large"))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInputError(text("report.bad_result", lang, source=str(path), problem=f"not JSON ({exc})")) from None
    items: Iterable[Any] = data if isinstance(data, list) else [data]
    results = [validate_result(item, str(path), lang) for item in items]
    log.debug("read %d result(s) from %s", len(results), path)  # which files a folder's report is made of
    return results


def localise(result: StoredResult, lang: str) -> StoredResult:
    """A copy whose messages, diagnoses and hints are in `lang` (where the result stored their keys)."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}")
    out = copy.deepcopy(result)
    for check in out["checks"]:
        i18n = as_dict(check.get("i18n"))
        message = Msg.from_json(i18n.get("message"))
        if message is not None:
            check["message"] = render(message, lang)
        diagnosis = Msg.from_json(i18n.get("diagnosis"))
        if diagnosis is not None:
            check["diagnosis"] = render(diagnosis, lang)
        hints = i18n.get("hint")
        if isinstance(hints, dict) and isinstance(hints.get(lang), str) and check.get("hint"):
            check["hint"] = hints[lang]
    note = Msg.from_json(out.get("device_note_i18n"))
    if note is not None:
        out["device_note"] = render(note, lang)
    for cell in out.get("cells", []):
        message = Msg.from_json(cell.get("message_i18n"))
        if message is not None:
            cell["message"] = render(message, lang)
    out["lang"] = lang
    return out


def title(result: StoredResult, lang: str) -> str:
    titles = result.get("title")
    if isinstance(titles, dict) and isinstance(titles.get(lang), str):
        return titles[lang]
    return text("report.default_title", lang)


def dumps(result: StoredResult) -> str:
    """The result as JSON text; C1/bidi controls and lone surrogates as \\u escapes (json_safe: lossless),
    so printing it (`grader check --format json`, `cat results/x.json`) cannot drive a terminal."""
    from grader.safe_text import json_safe

    return json_safe(json.dumps(result, ensure_ascii=False, indent=2))
