"""JUnit XML for CI readers (GitHub test reporters, Jenkins, GitLab).

    <testsuites name="grader" tests= failures= errors= skipped= time=>
      <testsuite name="<submission id>" tests= failures= errors= skipped= time=>
        <properties>score, max_score, percent, outcome, device, grader_version, rubric_sha256, name, section
                    [, self_check, hidden_checks, hidden_points, reference, self_check_notice]</properties>
        <testcase classname="grader.<submission id>" name="<check id>" time="0">
          <failure message="<message>" type="<diagnosis code or check_failed>">
              message, likely cause, hint, details</failure>
          | <error message= type=>  (the check could not judge, or the submission was not graded)
          | <skipped message=/>     (the check's subject is missing)
        </testcase>
        <system-out>a self-check's notice (hidden checks not run; no guarantee of full marks)</system-out>
        <system-err>why an ungraded submission was not graded</system-err>
      </testsuite>
    </testsuites>

JUnit has no points field, so the points live in the suite's properties.
Checks have no timing of their own (the notebook runs once for all of them),
so each testcase's time is 0 and the suite's time is the submission's.
All checks of the result are included, hidden ones too: this file is for staff.
A self-check result (grader/report/results.py) lists only the visible checks,
since the hidden ones were not run; its suite adds the properties
`self_check` ("true"), `hidden_checks`, `hidden_points` and `reference`, and
says in `self_check_notice` and in <system-out> that the score covers the
visible checks only and that passing it does not guarantee full marks.

Student-derived text (messages quote names and errors from the notebook) may
hold characters XML 1.0 forbids (control characters, lone surrogates,
U+FFFE/U+FFFF); ElementTree would write them and produce a file no parser
accepts, so they are removed from every attribute and text first.
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from grader.messages import text
from grader.report.grades_csv import format_number, percent_of
from grader.report.results import StoredCheck, StoredResult, localise, override_note, self_check_notice, self_check_of

# Everything outside XML 1.0's Char production.
_ILLEGAL_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_DETAIL_CHARS = 300  # one line per detail; a loss curve or a long list is cut, not dumped
_SKIP_DETAILS = ("curve",)
PROPERTY_NAMES = ("score", "max_score", "percent", "outcome", "device", "grader_version", "rubric_sha256", "name",
                  "section")
SELF_CHECK_PROPERTY_NAMES = ("self_check", "hidden_checks", "hidden_points", "reference", "self_check_notice")


def xml_safe(value: Any) -> str:
    """Text that XML 1.0 can carry: illegal characters removed."""
    return _ILLEGAL_XML.sub("", "" if value is None else str(value))


def _element(parent: ET.Element, tag: str, body: str | None = None, **attrs: Any) -> ET.Element:
    node = ET.SubElement(parent, tag, {k: xml_safe(v) for k, v in attrs.items()})
    if body:
        node.text = xml_safe(body)
    return node


def details_summary(details: Any) -> list[str]:
    """`key: value` lines, each cut to a readable length (the full details are in the JSON result)."""
    if not isinstance(details, dict):
        return []
    lines = []
    for key, value in details.items():
        if key in _SKIP_DETAILS:
            continue
        shown = json.dumps(value, ensure_ascii=False, default=str)
        if len(shown) > _DETAIL_CHARS:
            shown = shown[:_DETAIL_CHARS] + "…"
        lines.append(f"{key}: {shown}")
    return lines


def failure_text(check: StoredCheck, lang: str) -> str:
    lines = [str(check.get("message") or ""), override_note(check, lang)]
    if check.get("diagnosis"):
        lines.append(text("report.diagnosis", lang, text=check["diagnosis"]))
    if check.get("hint"):
        lines.append(text("report.hint", lang, text=check["hint"]))
    lines += details_summary(check.get("details"))
    return "\n".join(line for line in lines if line)


def _counts(checks: list[StoredCheck]) -> dict[str, int]:
    statuses = [c.get("status") for c in checks]
    return {"tests": len(checks), "failures": statuses.count("failed"),
            "errors": statuses.count("error"), "skipped": statuses.count("skipped")}


def _testcase(suite: ET.Element, submission: str, check: StoredCheck, lang: str) -> None:
    case = _element(suite, "testcase", classname=f"grader.{submission}", name=check["id"], time="0")
    status = check.get("status")
    message = str(check.get("message") or "")
    if status == "failed":
        details = check.get("details")
        code = details.get("diagnosis") if isinstance(details, dict) else None
        _element(case, "failure", failure_text(check, lang), message=message, type=code or "check_failed")
    elif status == "error":
        _element(case, "error", failure_text(check, lang), message=message, type="check_error")
    elif status == "skipped":
        _element(case, "skipped", message=message)
    adjusted = override_note(check, lang)
    if adjusted and status not in ("failed", "error"):  # a failure's text already carries it
        _element(case, "system-out", adjusted)


def _testsuite(root: ET.Element, result: StoredResult, lang: str) -> dict[str, int]:
    local = localise(result, lang)
    submission = str(local["submission_id"])
    counts = _counts(local["checks"])
    suite = _element(root, "testsuite", name=submission, time=format_number(local.get("duration_s") or 0, 3),
                     **{k: str(v) for k, v in counts.items()})
    values = {
        "score": format_number(local["score"]), "max_score": format_number(local["max_score"]),
        "percent": format_number(percent_of(local["score"], local["max_score"]), 2),
        "outcome": local.get("outcome") or "graded", "device": local.get("device") or "",
        "grader_version": local.get("grader_version") or "", "rubric_sha256": local.get("rubric_sha256") or "",
        "name": str(local.get("student_name") or ""), "section": str(local.get("section") or ""),
    }
    names: tuple[str, ...] = PROPERTY_NAMES
    self_check = self_check_of(local)
    notice = self_check_notice(local, lang)
    if self_check is not None:
        names += SELF_CHECK_PROPERTY_NAMES
        values.update({"self_check": "true", "hidden_checks": str(self_check["hidden_count"]),
                       "hidden_points": format_number(self_check["hidden_points"]),
                       "reference": self_check["reference"], "self_check_notice": notice})
    properties = _element(suite, "properties")
    for name in names:
        _element(properties, "property", name=name, value=values[name])
    for check in local["checks"]:
        _testcase(suite, submission, check, lang)
    if notice:
        _element(suite, "system-out", notice)
    if values["outcome"] != "graded":
        outcome = text(f"report.outcome_{values['outcome']}", lang)
        _element(suite, "system-err", text("report.ungraded", lang, outcome=outcome, error=local.get("error") or ""))
    return counts


def junit_element(results: Iterable[StoredResult], lang: str) -> ET.Element:
    root = ET.Element("testsuites", {"name": "grader"})
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    seconds = 0.0
    for result in results:
        for key, value in _testsuite(root, result, lang).items():
            totals[key] += value
        seconds += float(result.get("duration_s") or 0.0)
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", format_number(seconds, 3))
    return root


def junit_xml(results: Iterable[StoredResult], lang: str) -> str:
    """The whole document, XML declaration included (UTF-8 when written)."""
    root = junit_element(results, lang)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit_xml(results: Iterable[StoredResult], path: Path, lang: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Strict UTF-8 is safe here: xml_safe already removed lone surrogates.
    path.write_text(junit_xml(results, lang), encoding="utf-8")
    return path
