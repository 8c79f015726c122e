"""The terminal table a student reads after `grader check`.

Like every renderer it takes a stored result dict (grader/report/results.py),
so it prints the same thing for a fresh run and for a stored one.

A self-check result (one with `self_check`) gets its score labelled as the
visible checks' only, and right below it the self-check notice: the hidden
checks not run here, the fresh inputs of TA grading, and that a pass here does
not guarantee full marks. Nothing here ever prints "all tests passed".

Most of the table is student-controlled (check messages quoting their code,
exception names and values, ids, the notebook's file name), so every line goes
out through `_write_line`: its text made safe by `grader.safe_text`, our own
colour codes added around it through the stream's control channel.
"""
from __future__ import annotations

import os
import sys
import textwrap
import unicodedata
from collections.abc import Sequence
from typing import Any, TextIO

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
from grader.result import Status
from grader.safe_text import safe_line, write_control

MARKS = {Status.PASSED: "✓", Status.FAILED: "✗", Status.ERROR: "!", Status.SKIPPED: "-"}
COLOURS = {Status.PASSED: "32", Status.FAILED: "31", Status.ERROR: "33", Status.SKIPPED: "90"}
# A piece of a line: plain text, or (text, SGR colour code).
Segment = str | tuple[str, str]


def _width(s: str) -> int:
    """Display width: CJK characters take two columns."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def _pad(s: str, width: int) -> str:
    return s + " " * max(0, width - _width(s))


def _write_line(out: TextIO, segments: Sequence[Segment], colour: bool) -> None:
    """One line: each segment's text shown literally (student text included), coloured ones in colour."""
    for segment in segments:
        piece, code = segment if isinstance(segment, tuple) else (segment, "")
        if colour and code:
            write_control(out, f"\033[{code}m")
        out.write(safe_line(piece))
        if colour and code:
            write_control(out, "\033[0m")
    out.write("\n")


def print_report(result: StoredResult, lang: str, out: TextIO | None = None) -> None:
    out = out if out is not None else sys.stdout  # looked up now: the CLI may have wrapped it
    result = localise(result, lang)
    colour = out.isatty() and "NO_COLOR" not in os.environ
    _write_line(out, [f"{title(result, lang)} — {result['notebook']}"], colour)
    _write_line(out, [], colour)
    if result.get("outcome", "graded") != "graded":
        _write_line(out, [(text("report.ungraded_line", lang, error=result.get("error") or ""), "31")], colour)
    checks = result["checks"]
    ids = [safe_line(c["id"]) for c in checks]  # made safe before measuring, so the column lines up
    id_width = max((len(i) for i in ids), default=0)
    for c, check_id in zip(checks, ids):
        _write_check(out, c, check_id, id_width, lang, colour)
    _write_line(out, [], colour)
    _write_footer(out, result, lang, colour)


def _write_check(out: TextIO, c: StoredCheck, check_id: str, id_width: int, lang: str, colour: bool) -> None:
    status = Status(c["status"])
    label = _pad(text(f"report.{status.value}", lang), 6)
    points = f"{c['score']:g}/{c['max_score']:g}".rjust(5)
    _write_line(out, [" ", (MARKS[status], COLOURS[status]),
                      f" {check_id.ljust(id_width)}  {label} {points}  {c.get('message') or ''}"], colour)
    adjusted = override_note(c, lang)
    if adjusted:  # shown whatever the status: the points on the line are the TA's
        _write_line(out, [" " * (id_width + 4), (adjusted, "33")], colour)
    # A skipped check's subject is missing; the failed check upstream already says why.
    if status not in (Status.FAILED, Status.ERROR):
        return
    indent = " " * (id_width + 4)
    if c.get("diagnosis"):
        _write_line(out, [indent + text("report.diagnosis", lang, text=c["diagnosis"])], colour)
    if c.get("hint"):
        # Safe before wrapping: a control character must not count as a place to break or as width.
        hint = text("report.hint", lang, text=safe_line(c["hint"]))
        for line in textwrap.wrap(hint, 100) or [""]:
            _write_line(out, [indent + line], colour)


def _worker_counts(value: Any) -> str:
    """"6, 2" from a stored list of the num_workers values asked for; "" for anything else."""
    if not isinstance(value, list):
        return ""
    return ", ".join(str(v) for v in value[:20] if isinstance(v, int) and not isinstance(v, bool) and 0 < v < 10**6)


def _write_footer(out: TextIO, result: StoredResult, lang: str, colour: bool) -> None:
    remap = text("report.npu_remapped", lang) if result.get("npu_remapped") else ""
    _write_line(out, [text("report.device_line", lang, device=result.get("device", ""), remap=remap,
                           duration=result.get("duration_s", 0.0))], colour)
    if result.get("device_note"):
        _write_line(out, ["  " + safe_line(str(result["device_note"]))], colour)
    protections = result.get("protections")
    if isinstance(protections, dict) and protections.get("filesystem") is False:
        # Students see a line only when the sandbox was missing: then their code could reach more than usual.
        _write_line(out, [text("report.sandbox_missing", lang, reason=protections.get("unavailable") or "")], colour)
    workers = _worker_counts(result.get("loader_workers"))
    if workers:
        _write_line(out, [text("report.loader_workers", lang, counts=workers)], colour)
    if result.get("shell_escapes"):
        commands = ", ".join(f"[{e['cell']}] {e['command']}" for e in result["shell_escapes"])
        _write_line(out, [text("report.skipped_commands", lang, commands=commands)], colour)
    self_check = self_check_of(result) is not None
    score_key = "report.score_line_self_check" if self_check else "report.score_line"
    score_line = text(score_key, lang, score=result["score"], max_score=result["max_score"])
    _write_line(out, [(score_line, "1")], colour)
    if self_check:
        _write_line(out, [(self_check_notice(result, lang), "33")], colour)
