"""Notebook-level tricks fed to `grader check` (a child process: a parser that crashed or blew up
would take the test down with it): a clear verdict (exit 2 with one line, or graded), no points,
no trace, and HTML in a cell's output escaped in the HTML report."""
from __future__ import annotations

import json

import nbformat
import pytest
from advkit import Checked, assert_graded, check_subprocess, require_sandbox, template, with_cells, write

pytestmark = pytest.mark.kernel  # `grader check` on each notebook, kernels included


def huge_notebook(folder):
    nb = template()
    nb.cells.append(nbformat.v4.new_markdown_cell("a" * (60 * 2**20)))
    return write(nb, folder, "attack_huge_notebook")


def deeply_nested_json(folder):
    path = folder / "attack_deeply_nested_json.ipynb"
    path.write_text('{"cells": ' + "[" * 100_000 + "]" * 100_000 + ', "nbformat": 4, "nbformat_minor": 5, "metadata": {}}')
    return path


def invalid_utf8(folder):
    raw = nbformat.writes(with_cells(template(), "x = 'INVALID'", at="start")).encode("utf-8")
    path = folder / "attack_invalid_utf8.ipynb"
    path.write_bytes(raw.replace(b"INVALID", b"\xff\xfe\xc3\x28\xed\xa0\x80"))
    return path


def assert_refused(checked: Checked, path) -> None:
    assert checked.code == 2, (checked.code, checked.stderr[-2000:])
    lines = checked.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0], checked.stderr[-2000:]
    assert "Traceback" not in checked.stderr + checked.stdout


@pytest.mark.parametrize("make", [huge_notebook, deeply_nested_json, invalid_utf8])
def test_a_malformed_notebook_is_refused_in_one_line(contained, make):
    path = make(contained.parent)
    checked = check_subprocess(path, contained, timeout=120)
    assert_refused(checked, path)


def test_megabytes_of_cell_source_and_html_in_outputs(contained, quick_rubric):
    """One notebook: a 4 MB code cell, and a cell whose output and error are HTML with scripts
    (stored in the file and produced again when it runs). Graded, 0 points, the HTML report escapes it."""
    require_sandbox()
    script = "<script>alert('pwned')</script><img src=x onerror=alert(1)>"
    big = 'text = """\n' + ("lorem ipsum " * 8 + "\n") * (4 * 2**20 // 97) + '"""\nprint(len(text))\n'
    html_cell = (
        "from IPython.display import HTML, display\n"
        f"display(HTML({script!r}))\n"
        f"print({script!r})\n"
        f"raise ValueError({script!r})"
    )
    nb = with_cells(template(), big, html_cell, at="start")
    nb.cells[1].outputs = [nbformat.v4.new_output("display_data", data={"text/html": script}),
                           nbformat.v4.new_output("error", ename="ValueError", evalue=script, traceback=[script])]
    path = write(nb, contained.parent, "attack_megabytes_source_and_html_output")
    report = contained.parent / "report.html"
    checked = check_subprocess(path, contained, "--rubric", str(quick_rubric), "--html", str(report))
    assert_graded(checked)
    assert checked.score == 0
    assert next(c for c in checked.result["cells"] if c["index"] == 0)["status"] == "ok"
    failed = next(c for c in checked.result["cells"] if c["index"] == 1)
    assert failed["status"] == "error" and "<script>" in failed["error_value"]  # kept as text in JSON...
    page = report.read_text(encoding="utf-8")
    assert "<script>alert" not in page and "<img src=x" not in page  # ...and escaped in HTML
    assert "&lt;script&gt;alert" in page or "&lt;script&gt;" in json.dumps(page)
