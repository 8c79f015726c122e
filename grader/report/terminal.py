"""The terminal table a student reads after `grader check`.

Like every renderer it takes a stored result dict (grader/report/results.py),
so it prints the same thing for a fresh run and for a stored one.

A self-check result (one with `self_check`) gets its score labelled as the
visible checks' only, and right below it the self-check notice: the hidden
checks not run here, the fresh inputs of TA grading, and that a pass here does
not guarantee full marks. Nothing here ever prints "all tests passed".
"""
from __future__ import annotations

import os
import sys
import textwrap
import unicodedata
from typing import TextIO

from typing import Any

from grader.messages import text
from grader.report.results import localise, self_check_notice, self_check_of, title
from grader.result import Status

MARKS = {Status.PASSED: "✓", Status.FAILED: "✗", Status.ERROR: "!", Status.SKIPPED: "-"}
COLOURS = {Status.PASSED: "32", Status.FAILED: "31", Status.ERROR: "33", Status.SKIPPED: "90"}


def _width(s: str) -> int:
    """Display width: CJK characters take two columns."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def _pad(s: str, width: int) -> str:
    return s + " " * max(0, width - _width(s))


def _colour(s: str, code: str, enabled: bool) -> str:
    return f"\033[{code}m{s}\033[0m" if enabled else s


def print_report(result: dict[str, Any], lang: str, out: TextIO = sys.stdout) -> None:
    result = localise(result, lang)
    colour = out.isatty() and "NO_COLOR" not in os.environ
    out.write(f"{title(result, lang)} — {result['notebook']}\n\n")
    if result.get("outcome", "graded") != "graded":
        out.write(_colour(text("report.ungraded_line", lang, error=result.get("error") or ""), "31", colour) + "\n")
    checks = result["checks"]
    id_width = max((len(c["id"]) for c in checks), default=0)
    for c in checks:
        status = Status(c["status"])
        mark = _colour(MARKS[status], COLOURS[status], colour)
        label = _pad(text(f"report.{status.value}", lang), 6)
        points = f"{c['score']:g}/{c['max_score']:g}".rjust(5)
        out.write(f" {mark} {c['id'].ljust(id_width)}  {label} {points}  {c.get('message') or ''}\n")
        # A skipped check's subject is missing; the failed check upstream already says why.
        if status in (Status.FAILED, Status.ERROR):
            indent = " " * (id_width + 4)
            if c.get("diagnosis"):
                out.write(f"{indent}{text('report.diagnosis', lang, text=c['diagnosis'])}\n")
            if c.get("hint"):
                for line in textwrap.wrap(text("report.hint", lang, text=c["hint"]), 100) or [""]:
                    out.write(f"{indent}{line}\n")
    out.write("\n")
    remap = text("report.npu_remapped", lang) if result.get("npu_remapped") else ""
    out.write(text("report.device_line", lang, device=result.get("device", ""), remap=remap,
                   duration=result.get("duration_s", 0.0)) + "\n")
    protections = result.get("protections")
    if isinstance(protections, dict) and protections.get("filesystem") is False:
        # Students see a line only when the sandbox was missing: then their code could reach more than usual.
        out.write(text("report.sandbox_missing", lang, reason=protections.get("unavailable") or "") + "\n")
    if result.get("shell_escapes"):
        commands = ", ".join(f"[{e['cell']}] {e['command']}" for e in result["shell_escapes"])
        out.write(text("report.skipped_commands", lang, commands=commands) + "\n")
    self_check = self_check_of(result) is not None
    score_key = "report.score_line_self_check" if self_check else "report.score_line"
    score_line = text(score_key, lang, score=result["score"], max_score=result["max_score"])
    out.write(_colour(score_line, "1", colour) + "\n")
    if self_check:
        out.write(_colour(self_check_notice(result, lang), "33", colour) + "\n")
