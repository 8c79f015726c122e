"""`make demo` (grader demo): a small class graded the TA's way, and the two facts the course depends on."""
from __future__ import annotations

import pytest

from grader.distribution.demo import run_demo

pytestmark = pytest.mark.kernel  # `grader demo` grades a class in real kernels


def test_demo_grades_reference_full_and_template_zero_and_writes_every_output(tmp_path, capsys):
    out = tmp_path / "demo-out"
    assert run_demo(out, lang="en") == 0
    printed = capsys.readouterr().out
    assert "reference: 100/100 (expected 100) OK" in printed
    assert "template: 0/100 (expected 0) OK" in printed
    for name in ("grades.sqlite", "summary.html", "summary.csv", "grades.csv", "junit.xml",
                 "reports/reference.html", "reports/template.html"):
        assert (out / name).is_file(), name
    # a second run resumes from the store instead of grading again
    assert run_demo(out, lang="en") == 0
    assert "2 unchanged since the last run" in capsys.readouterr().out
