"""DataLoader workers: the kernel runs every loader in its own process (num_workers=0), and the report says
what the notebook asked for (#13 item 8)."""
from __future__ import annotations

import io

import nbformat
import torch
from torch.utils.data import DataLoader, TensorDataset

from grader.inkernel import startup
from grader.notebook import find_loader_workers


def test_the_kernel_shim_runs_loaders_without_workers(monkeypatch) -> None:
    monkeypatch.setattr(DataLoader, "__init__", DataLoader.__init__)  # undone after the test
    startup._no_loader_workers()
    data = TensorDataset(torch.arange(8.0))
    asked = DataLoader(data, batch_size=4, shuffle=True, num_workers=6, persistent_workers=True, prefetch_factor=4)
    positional = DataLoader(data, 4, False, None, None, 3)
    assert asked.num_workers == 0 and positional.num_workers == 0
    assert sum(len(b[0]) for b in asked) == 8


def test_the_values_asked_for_are_found_in_the_source() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("a = DataLoader(d, num_workers=6)\nb = DataLoader(d, num_workers = 2)"),
                nbformat.v4.new_code_cell("c = DataLoader(d, num_workers=0)\nif num_workers == 3: pass\n" + " " * 10**6),
                nbformat.v4.new_markdown_cell("num_workers=9")]
    assert find_loader_workers(nb) == [6, 2]


def test_the_terminal_says_what_ran_as_zero() -> None:
    from grader.report.terminal import _write_footer

    out = io.StringIO()
    _write_footer(out, {"device": "cpu", "duration_s": 1.0, "score": 1, "max_score": 2, "loader_workers": [6]},
                  "en", False)
    assert "num_workers=6" in out.getvalue() and "0 workers" in out.getvalue()
