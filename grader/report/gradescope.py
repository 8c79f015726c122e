"""Gradescope autograder `results.json` for one submission.

Only fields Gradescope documents for its autograder specification are used:

    {"score": 86.0, "execution_time": 9.3, "output": "...",
     "output_format": "text", "test_output_format": "text",
     "extra_data": {"grader_version": "...", "rubric_sha256": "...", "device": "cpu", "outcome": "graded",
                    "protections": {...}},
     "tests": [{"name": "lstm.forward", "number": "16", "tags": ["lstm"], "score": 0.0, "max_score": 14.0,
                "status": "failed", "output": "...", "visibility": "visible"}]}

- `score` is set explicitly: Gradescope then uses it instead of summing tests,
  so the total is exactly the grader's (including an ungraded submission's 0).
- `status` is Gradescope's "passed" / "failed" (it knows no other value): a
  check that errored or was skipped earned nothing, so it is "failed"; its
  output says why.
- `visibility`: the rubric's "visible" stays "visible"; "hidden" becomes
  Gradescope's "hidden" (never shown to the student, only to staff), or
  "after_published" where the rubric's [meta] gradescope_hidden says so:
  while any test is "hidden", Gradescope hides the total score from students.
- `output_format` / `test_output_format` are set to "text" explicitly: the
  top-level default is simple_format, which Gradescope renders as HTML.
- `number` orders the tests as the rubric does; `tags` is the check's group;
  `extra_data` records what graded it (grader version, rubric hash, device,
  the kernel's protections) for staff.
- `name` is the stable check id (what TAs search for); `output` is the
  check's message, then the likely cause and the hint, in `lang`.
- Plain text only (Gradescope's default output format), so nothing a student
  wrote can inject markup into Gradescope's page.
- A self-check result (grader/report/results.py: hidden checks not run, only
  the visible ones listed) is exported as it is, with the self-check notice
  (hidden checks, no guarantee of full marks) below the score in `output`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grader.messages import text
from grader.report.results import (
    StoredCheck,
    StoredResult,
    localise,
    override_note,
    self_check_notice,
    self_check_of,
    title,
)
from grader.safe_text import json_safe

PASSED = "passed"
FAILED = "failed"


def _number(value: Any) -> float:
    """JSON number without float noise (Gradescope shows it verbatim)."""
    try:
        return round(float(value), 4)
    except (TypeError, ValueError):
        return 0.0


def check_output(check: StoredCheck, lang: str) -> str:
    """The check's message, likely cause and hint, one per line (a localised check)."""
    lines = [str(check.get("message") or ""), override_note(check, lang)]
    if check.get("diagnosis"):
        lines.append(text("report.diagnosis", lang, text=check["diagnosis"]))
    if check.get("hint") and check.get("status") != PASSED:
        lines.append(text("report.hint", lang, text=check["hint"]))
    return "\n".join(line for line in lines if line)


def gradescope_test(check: StoredCheck, lang: str, number: int = 0, hidden_as: str = "hidden") -> dict[str, Any]:
    check_id = str(check["id"])
    visibility = str(check.get("visibility", "visible"))
    return {
        "name": check_id,
        "number": str(number) if number else "",
        "tags": [check_id.split(".")[0]],
        "score": _number(check["score"]),
        "max_score": _number(check["max_score"]),
        "status": PASSED if check.get("status") == PASSED else FAILED,
        "output": check_output(check, lang),
        # Anything but an explicit "visible" is hidden: an unknown value must not leak a check.
        "visibility": "visible" if visibility == "visible" else (hidden_as if visibility == "hidden" else "hidden"),
    }


def overall_output(result: StoredResult, lang: str, *, with_score: bool = True) -> str:
    score_key = "report.score_line_self_check" if self_check_of(result) is not None else "report.score_line"
    lines = [title(result, lang)]
    if with_score:
        lines.append(text(score_key, lang, score=_number(result["score"]), max_score=_number(result["max_score"])))
    outcome = result.get("outcome") or "graded"
    if outcome != "graded":
        lines.append(text("report.ungraded", lang, outcome=text(f"report.outcome_{outcome}", lang),
                          error=result.get("error") or ""))
    notice = self_check_notice(result, lang)
    if notice:
        lines.append(notice)
    return "\n".join(lines)


def gradescope_json(result: StoredResult, lang: str, *, hidden_as: str = "hidden") -> dict[str, Any]:
    """The results.json object for one stored result, its prose in `lang`.

    `hidden_as`: Gradescope's visibility for the rubric's hidden checks (the rubric's [meta] gradescope_hidden).
    """
    local = localise(result, lang)
    # Gradescope hides the total from students while any test is "hidden"; the text must not print it either.
    hides_total = hidden_as == "hidden" and any(c.get("visibility") == "hidden" for c in local["checks"])
    return {
        "score": _number(local["score"]),
        "execution_time": _number(local.get("duration_s") or 0.0),
        "output": overall_output(local, lang, with_score=not hides_total),
        "output_format": "text",
        "test_output_format": "text",
        "extra_data": {
            "grader_version": str(local.get("grader_version") or ""),
            "rubric_sha256": str(local.get("rubric_sha256") or ""),
            "device": str(local.get("device") or ""),
            "outcome": str(local.get("outcome") or "graded"),
            "protections": local.get("protections"),
        },
        "tests": [gradescope_test(c, lang, i, hidden_as) for i, c in enumerate(local["checks"], start=1)],
    }


def write_gradescope_json(result: StoredResult, path: Path, lang: str, *, hidden_as: str = "hidden") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json_safe(json.dumps(gradescope_json(result, lang, hidden_as=hidden_as), ensure_ascii=False, indent=2))
    path.write_text(body + "\n", encoding="utf-8")
    return path
