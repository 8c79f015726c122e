"""`--debug` on every command: the grader's DEBUG log lines on stderr, sanitised like everything else printed.

The real CLI in a subprocess (`python -m grader`), on stored results: `grader report` logs each result file it
reads at DEBUG level, and starts no kernel.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grader.cli import build_parser

RESULT = Path(__file__).resolve().parent / "fixtures" / "results" / "passes_all_reference.json"
READ_LINE = "DEBUG grader.report.results: read 1 result(s) from "


def grader(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_graders_debug_lines_on_stderr(tmp_path: Path, where: str) -> None:
    command = ["report", str(RESULT), "-o", str(tmp_path / "out"), "--lang", "en"]
    done = grader(*(["--debug", *command] if where == "before" else [*command, "--debug"]))
    assert done.returncode == 0, done.stderr
    assert f"{READ_LINE}{RESULT}" in done.stderr.splitlines(), done.stderr
    assert "DEBUG" not in done.stdout  # stdout stays the command's own output


def test_without_debug_no_debug_line_is_shown(tmp_path: Path) -> None:
    done = grader("report", str(RESULT), "-o", str(tmp_path / "out"), "--lang", "en")
    assert done.returncode == 0, done.stderr
    assert "DEBUG" not in done.stderr, done.stderr


def test_a_logged_file_name_cannot_drive_the_terminal(tmp_path: Path) -> None:
    """A student's file name with an escape sequence in it (a window-title OSC) is logged, shown, not obeyed."""
    hostile = tmp_path / "x\x1b]0;pwned\x07.json"
    shutil.copy(RESULT, hostile)
    done = grader("--debug", "report", str(hostile), "-o", str(tmp_path / "out"), "--lang", "en")
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stderr and "\x07" not in done.stderr
    assert f"{READ_LINE}{tmp_path}/x\u241b]0;pwned\u2407.json" in done.stderr.splitlines(), done.stderr


def _commands(parser, path: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    """Every leaf command's words and parser, e.g. (("data", "check"), <parser>)."""
    subparsers = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    if not subparsers:
        yield path, parser
        return
    for name, sub in subparsers[0].choices.items():
        yield from _commands(sub, (*path, name))


def test_every_command_accepts_debug() -> None:
    leaves = list(_commands(build_parser()))
    assert len(leaves) >= 8  # check, report, template, golden, data synth, data check, calibrate, grade, demo
    for words, parser in leaves:
        assert "--debug" in parser._option_string_actions, " ".join(words)
