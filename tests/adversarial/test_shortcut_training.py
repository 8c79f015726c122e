"""lstm.train is earned only by the student's LSTM (issue 13, item 2): two shortcuts that once trained past the
threshold (+14 points) while their LSTM's equations were wrong now earn nothing, and say why."""
from __future__ import annotations

import pytest
from advkit import assert_graded, check_in_process, class_cell, reference, require_sandbox, write

pytestmark = pytest.mark.kernel  # lstm.train runs in a real kernel

_INPUT_GATE = "i_t = torch.sigmoid(x_t @ self.W_xi + h_t @ self.W_hi + self.b_i)"
_HEAD = "        self.fc = nn.Linear(hidden_size, output_size)"
_READOUT = "        logits = self.fc(h_t)  # (batch_size, output_size)"

# A pooled-statistics classifier added to a broken LSTM's logits (no input gate).
POOLED_SHORTCUT = (_HEAD + "\n        self.pool = nn.Linear(2 * input_size, output_size)",
                   _READOUT + "\n        logits = logits + self.pool(torch.cat([x.mean(0), x.std(0)], dim=1))")
# A classifier that takes over only when the grader's training is on the call stack.
STACK_SHORTCUT = (_HEAD + "\n        self.pool = nn.Linear(2 * input_size, output_size)",
                  _READOUT + "\n        import inspect\n"
                  "        if any('train_probe' in (f.filename or '') or 'grader' in f.function for f in inspect.stack()):\n"
                  "            logits = self.pool(torch.cat([x.mean(0), x.std(0)], dim=1))")


@pytest.fixture(autouse=True)
def _sandbox_is_active() -> None:
    require_sandbox()


def _shortcut(head: str, readout: str):
    nb = reference()
    cell = nb.cells[class_cell(nb)]
    assert _INPUT_GATE in cell.source and _HEAD in cell.source and _READOUT in cell.source
    cell.source = (cell.source.replace(_INPUT_GATE, "i_t = 1.0")  # the broken LSTM: no input gate
                   .replace(_HEAD, head).replace(_READOUT, readout))
    return nb


@pytest.mark.parametrize(("name", "change"), [("pooled_statistics", POOLED_SHORTCUT), ("stack_detector", STACK_SHORTCUT)])
def test_a_shortcut_beside_a_broken_lstm_earns_no_training_points(contained, quick_rubric, name, change):
    checked = check_in_process(write(_shortcut(*change), contained.parent, f"shortcut_{name}"), quick_rubric)
    assert_graded(checked)
    assert checked.statuses["lstm.forward"] == "failed"
    train = next(c for c in checked.result["checks"] if c["id"] == "lstm.train")
    assert train["status"] == "skipped" and train["score"] == 0, train
    assert "lstm.forward" in train["message"]


def test_a_correct_lstm_that_switches_to_a_shortcut_in_training_earns_no_training_points(contained, quick_rubric):
    """Its equations pass lstm.forward (the probe is not the training), so only the recomputed predictions can
    tell: they are not what its LSTM computes with its trained weights."""
    head, readout = STACK_SHORTCUT
    nb = reference()
    cell = nb.cells[class_cell(nb)]
    cell.source = cell.source.replace(_HEAD, head).replace(_READOUT, readout)
    checked = check_in_process(write(nb, contained.parent, "shortcut_correct_lstm"), quick_rubric)
    assert_graded(checked)
    assert checked.statuses["lstm.forward"] == "passed"
    train = next(c for c in checked.result["checks"] if c["id"] == "lstm.train")
    assert train["status"] == "failed" and train["score"] == 0, train
    if train["details"].get("predictions_recomputed"):  # it reached the threshold: the predictions gave it away
        assert train["details"]["predictions_recomputed"]["disagreement"] > 0.02
        assert "trained weights" in train["message"]


def test_the_reference_s_predictions_are_recomputed_and_agree(contained, quick_rubric):
    checked = check_in_process(write(reference(), contained.parent, "reference_recomputed"), quick_rubric)
    train = next(c for c in checked.result["checks"] if c["id"] == "lstm.train")
    assert train["status"] == "passed", train
    assert train["details"]["predictions_recomputed"] == {"checked": True, "disagreement": 0.0}
