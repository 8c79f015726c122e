"""data.loaders / loop.train / loop.eval on the reference and on variants of it named by outcome."""
from __future__ import annotations

import copy

import pytest

from grader.checks.loops import CellRun, check_loaders, check_loops
from grader.notebook import read_notebook
from grader.paths import REFERENCE_NOTEBOOK, TEMPLATE_NOTEBOOK
from grader.result import Status


def _variant(**replacements: str):
    nb = copy.deepcopy(read_notebook(REFERENCE_NOTEBOOK))
    for cell in nb.cells:
        if cell.cell_type == "code":
            for old, new in replacements.items():
                cell.source = cell.source.replace(old, new)
    return nb


def _statuses(nb, runs=None) -> dict[str, tuple[Status, list]]:
    results = [check_loaders(nb, runs or {}), *check_loops(nb, runs or {})]
    return {r.id: (r.status, r.details.get("problems", [])) for r in results}


def test_reference_passes_every_loop_check():
    assert {k: s for k, (s, _) in _statuses(read_notebook(REFERENCE_NOTEBOOK)).items()} == {
        "data.loaders": Status.PASSED, "loop.train": Status.PASSED, "loop.eval": Status.PASSED,
    }


def test_untouched_template_fails_every_loop_check():
    assert all(s is Status.FAILED for s, _ in _statuses(read_notebook(TEMPLATE_NOTEBOOK)).values())


def test_unshuffled_train_loader_fails_loaders():
    status, problems = _statuses(_variant(**{"shuffle=True": "shuffle=False"}))["data.loaders"]
    assert status is Status.FAILED and problems == ["train_not_shuffled"]


def test_loaders_without_collate_fn_fail_loaders():
    status, problems = _statuses(_variant(**{", collate_fn=collate_fn": ""}))["data.loaders"]
    assert status is Status.FAILED and problems == ["no_collate_fn", "no_collate_fn"]


def test_missing_backward_fails_train_loop_for_both_models():
    nb = _variant(**{"        loss.backward()  # [solution] TODO: 反向传播 / backpropagate\n": ""})
    status, problems = _statuses(nb)["loop.train"]
    assert status is Status.FAILED and problems == ["rnn:no_backward", "lstm:no_backward"]


def test_step_before_backward_fails_train_loop():
    nb = _variant(**{
        "        loss.backward()  # [solution] TODO: 反向传播 / backpropagate\n        optimizer.step()":
        "        optimizer.step()  # swapped\n        loss.backward()",
    })
    status, problems = _statuses(nb)["loop.train"]
    assert status is Status.FAILED and problems == ["rnn:wrong_order", "lstm:wrong_order"]


def test_missing_permute_fails_both_loops():
    nb = _variant(**{"features = features.permute(1, 0, 2)": "features = features"})
    statuses = _statuses(nb)
    assert statuses["loop.train"][1] == ["rnn:no_permute", "lstm:no_permute"]
    assert statuses["loop.eval"][1] == ["rnn:no_permute", "lstm:no_permute"]


@pytest.mark.parametrize("spelling", ["features.transpose(0, 1)", "torch.permute(features, (1, 0, 2))"])
def test_equivalent_reshapes_pass(spelling):
    nb = _variant(**{"features.permute(1, 0, 2)": spelling})
    assert _statuses(nb)["loop.train"][0] is Status.PASSED


def test_torch_max_with_dim_counts_as_argmax():
    nb = _variant(**{"predicted = torch.argmax(logits, dim=1)": "_, predicted = torch.max(logits, 1)"})
    assert _statuses(nb)["loop.eval"][0] is Status.PASSED


def test_eval_without_argmax_fails():
    nb = _variant(**{"predicted = torch.argmax(logits, dim=1)": "predicted = logits"})
    assert _statuses(nb)["loop.eval"][1] == ["rnn:no_argmax", "lstm:no_argmax"]


def _train_cells(nb) -> list[int]:
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "loss.backward()" in c.source]


def test_a_correct_loop_that_crashes_inside_the_model_still_passes():
    nb = read_notebook(REFERENCE_NOTEBOOK)
    crash = CellRun("error", 'Cell In[12], line 9\n----> 9 logits = model(features)\nFile ..., in forward(self, x)\nRuntimeError: mat1 and mat2 shapes cannot be multiplied', model_frames=True)
    runs = {i: crash for i in _train_cells(nb)}
    assert _statuses(nb, runs)["loop.train"][0] is Status.PASSED


def test_a_loop_that_crashes_in_its_own_code_fails():
    nb = read_notebook(REFERENCE_NOTEBOOK)
    crash = CellRun("error", "Cell In[12], line 3\nNameError: name 'train_loadr' is not defined")
    runs = {i: crash for i in _train_cells(nb)}
    status, problems = _statuses(nb, runs)["loop.train"]
    assert status is Status.FAILED and problems == ["rnn:cell_error", "lstm:cell_error"]


def test_only_traceback_frames_blame_the_model_never_the_message():
    from grader.hosting.records import frames_in_forward

    frame = "\x1b[0;31mFile\x1b[0m /tmp/x.py:3, in CustomLSTM.forward(self, x)\n      2 def forward(self, x):\n----> 3 ..."
    assert frames_in_forward(["Cell In[5], line 9\n----> 9 logits = model(x)", frame, "RuntimeError: shapes"])
    assert not frames_in_forward(["Cell In[5], line 3\n----> 3 optimiser.step()", "RuntimeError: in forward"])
    assert not frames_in_forward(["Cell In[5], line 3", "NameError: x\nFile a.py:1, in forward(self)"])
    assert not frames_in_forward("not a list")
