"""The model checks through the real KernelSession (IPython kernel, startup shims, limits)."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from grader.checks.model import run_model_checks
from grader.devices import resolve_device
from grader.hosting.limits import ExecutionLimits
from grader.hosting.session import KernelSession
from grader.notebook import find_class_sources
from grader.oracle import load_oracle
from grader.result import Status

pytestmark = pytest.mark.kernel  # the model checks through a real KernelSession

FIXTURES = Path(__file__).parent / "fixtures" / "models"
LIMITS = ExecutionLimits(cell_timeout_s=30, notebook_timeout_s=120, epoch_cap=2, kill_grace_s=2, output_bytes_per_cell=50_000)


def _notebook(*sources: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


def test_kernel_session_end_to_end(tmp_path: Path) -> None:
    # One correct class, one with a known mistake, printed noise and a rebound name in between.
    rnn = (FIXTURES / "correct_w_at_x.py").read_text().split("class CustomLSTM")[0]
    lstm = (FIXTURES / "lstm_no_input_gate.py").read_text()
    nb = _notebook(rnn, "print('100%'); np = None", lstm)
    with KernelSession(tmp_path, resolve_device("cpu"), LIMITS) as session:
        executed = session.run_notebook(nb)
        assert not executed.kernel_died
        results = {r.id: r for r in run_model_checks(session, find_class_sources(nb, ["CustomRNN", "CustomLSTM"]), load_oracle("live"),
                                                     rng_seed=3, probe_timeout_s=60)}
    assert all(results[f"rnn.{c}"].passed for c in ("defined", "params", "init", "forward", "grad", "no_builtin"))
    assert results["lstm.forward"].status is Status.FAILED
    assert results["lstm.forward"].diagnosis.key == "checks.diag.no_input_gate"
    assert results["lstm.grad"].diagnosis.key == "checks.diag.no_input_gate"
    assert results["lstm.params"].passed and results["lstm.init"].passed and results["lstm.no_builtin"].passed
    assert not list(tmp_path.glob(".grader-probe-*"))
