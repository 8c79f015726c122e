"""Source the grader's static analysis cannot take, in a batch (issue #12 parts 4 and 8).

Before: a cell `x = -------...1` (7,000 minus signs) made `ast.parse` raise MemoryError, which
crashed the coordinator's similarity pass, so the whole class got no reports, grades.csv or
summary; a line of 1,000,000 spaces sent the shell-escape regexes into quadratic backtracking
(still parsing after 300 s, no kernel started). Now the cells are "cannot be analysed", the
batch finishes, and the honest student beside them keeps the 100.

`grader grade` runs in a child process, so a crash shows as its exit status (3), never as a
crash of the test. Fixtures are named by the outcome they expect.
"""
from __future__ import annotations

import csv
import io
import subprocess
import sys
import time

import nbformat
import pytest
from advkit import grader_env, reference, require_sandbox, template, with_cells, write

pytestmark = pytest.mark.kernel  # `grader grade` on a batch, kernels included

BATCH_TIMEOUT_S = 900  # the reference takes ~1-2 min on two busy cores; a hang would take forever


def graded_minus_signs_and_spaces() -> nbformat.NotebookNode:
    """The untouched template with the issue's two cells first: graded (0 points), not a crash."""
    return with_cells(template(), "x = " + "-" * 7000 + "1", "y = 1\n" + " " * 1_000_000 + "\nz = 2", at="start")


def test_unparsable_cells_cost_neither_their_author_nor_the_class_any_output(contained, quick_rubric):
    require_sandbox()
    folder = contained.parent
    subs = folder / "subs"
    write(reference(), subs, "scores_100_reference")
    write(graded_minus_signs_and_spaces(), subs, "graded_minus_signs_and_spaces")
    out = folder / "out"
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "grader", "grade", str(subs), "-o", str(out), "--jobs", "2", "--lang", "en",
         "--rubric", str(quick_rubric)],
        cwd=folder, env=grader_env(contained), capture_output=True, text=True, timeout=BATCH_TIMEOUT_S,
    )
    elapsed = time.monotonic() - began
    assert done.returncode in (0, 1), (done.returncode, done.stderr[-3000:])
    assert "Traceback" not in done.stdout + done.stderr, done.stderr[-3000:]
    rows = {row["id"]: row for row in csv.DictReader(io.StringIO((out / "grades.csv").read_text(encoding="utf-8-sig")))}
    assert rows["scores_100_reference"]["total"] == "100", rows
    assert rows["graded_minus_signs_and_spaces"]["status"] == "graded", rows
    for name in ("scores_100_reference", "graded_minus_signs_and_spaces"):
        assert (out / "reports" / f"{name}.html").is_file()
        assert (out / "results" / f"{name}.json").is_file()
    assert (out / "summary.html").is_file() and (out / "junit.xml").is_file()
    print(f"\nbatch of 2 graded in {elapsed:.0f} s")
