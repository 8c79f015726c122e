"""What `grader check` shows on a terminal while it works (grader/check_progress.py), and nothing in a log."""
from __future__ import annotations

import io

import pytest

from grader.check_progress import CheckProgress
from grader.paths import REFERENCE_NOTEBOOK


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_one_line_is_redrawn_and_cleared_before_the_report():
    screen = Terminal()
    progress = CheckProgress("en", screen)
    progress.start("lab\x1b]0;pwned\x07.ipynb")  # a file name is the student's: shown, never obeyed
    progress.cell(3, 34)
    progress.stage("train")
    progress.finish()
    shown = screen.getvalue()
    assert "checking lab" in shown and "cell 3 of 34" in shown and "training your CustomLSTM" in shown
    assert shown.count("\r") == 4 and shown.endswith("\r\x1b[K") and "\x07" not in shown and "]0;" in shown


def test_in_a_log_or_a_pipe_nothing_is_printed():
    log = io.StringIO()
    progress = CheckProgress("zh", log)
    progress.start("lab.ipynb")
    progress.cell(1, 2)
    progress.finish()
    assert log.getvalue() == ""


class Recorder(CheckProgress):
    def __init__(self) -> None:
        super().__init__("en", io.StringIO(), is_tty=False)
        self.seen: list[str] = []

    def cell(self, number: int, total: int) -> None:
        self.seen.append(f"cell {number}/{total}")

    def stage(self, name: str) -> None:
        self.seen.append(name)


@pytest.mark.kernel
def test_the_pipeline_reports_every_cell_then_the_checks():
    from grader.pipeline import CheckOptions, check_notebook

    recorder = Recorder()
    report = check_notebook(REFERENCE_NOTEBOOK, CheckOptions(self_check=True, device="cpu"), lang="en",
                            progress=recorder)
    cells = [s for s in recorder.seen if s.startswith("cell ")]
    total = len(report.cells)
    assert cells == [f"cell {i}/{total}" for i in range(1, total + 1)]
    assert recorder.seen[len(cells):] == ["model", "train"]
