"""`grader check` end to end: real kernels, the real synthetic dataset, the CLI's JSON and exit codes.

`grader check` is the student's self-check: golden vectors, the rubric's hidden
checks (rnn.sizes, lstm.sizes: 4 points) neither run nor listed, the score out
of the 96 visible points. `grader check --full` is TA grading of one notebook:
live reference, fresh secret inputs, every check, out of 100.

Fixture notebooks (tests/notebooks/check/) are the reference with one change,
named by the outcome they expect; regenerate them with make_fixtures.py.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.cli import main
from grader.paths import DEFAULT_RUBRIC, REFERENCE_NOTEBOOK, TEMPLATE_NOTEBOOK

pytestmark = pytest.mark.kernel  # `grader check` end to end, real kernels

FIXTURES = Path(__file__).resolve().parent / "notebooks" / "check"
ALL_CHECKS = 22
VISIBLE_CHECKS = 20
VISIBLE_POINTS = 96


def run_check(capsys, notebook: Path, *extra: str) -> tuple[int, dict]:
    code = main(["check", str(notebook), "--format", "json", "--lang", "en", *extra])
    captured = capsys.readouterr()
    # No JSON means the CLI stopped with an error (exit 2 or 3): show what it said, not a JSONDecodeError.
    assert captured.out.strip(), f"exit {code}, no JSON on stdout; stderr:\n{captured.err[-4000:]}"
    return code, json.loads(captured.out)


def statuses(result: dict) -> dict[str, str]:
    return {c["id"]: c["status"] for c in result["checks"]}


def not_passed(result: dict) -> set[str]:
    return {c["id"] for c in result["checks"] if c["status"] != "passed"}


def test_reference_scores_full_marks_in_ta_grading(capsys):
    code, result = run_check(capsys, REFERENCE_NOTEBOOK, "--full")
    assert code == 0, not_passed(result)
    assert result["score"] == result["max_score"] == 100 and result.get("self_check") is None
    assert len(result["checks"]) == ALL_CHECKS
    assert statuses(result)["rnn.sizes"] == statuses(result)["lstm.sizes"] == "passed"


def test_reference_passes_every_visible_check_of_the_self_check(capsys):
    code, result = run_check(capsys, REFERENCE_NOTEBOOK)
    assert code == 0, not_passed(result)
    assert result["schema"] == 1 and result["score"] == result["max_score"] == VISIBLE_POINTS
    assert result["self_check"] == {"hidden_count": 2, "hidden_points": 4.0, "reference": "golden"}
    assert len(result["checks"]) == VISIBLE_CHECKS and "rnn.sizes" not in statuses(result)
    assert set(result["checks"][0]) >= {"id", "status", "score", "max_score", "message", "hint"}
    assert {e["command"] for e in result["shell_escapes"]} == {"!pip install librosa==0.11.0", "!unzip -q -n data.zip"}
    assert result["npu_remapped"] is True and result["device"] == "cpu" and "CPU" in result["device_note"]
    train = next(c for c in result["checks"] if c["id"] == "lstm.train")
    assert train["details"]["best_accuracy"] >= train["details"]["threshold"] == 0.80 and train["details"]["curve"]


def test_a_self_check_does_not_run_hidden_checks(capsys, tmp_path):
    """A course that hides lstm.train: the self-check never trains, and says 3 checks (18 points) are hidden."""
    rubric = tmp_path / "lab.toml"
    text = DEFAULT_RUBRIC.read_text(encoding="utf-8")
    train = text.index('[checks."lstm.train"]')
    rubric.write_text(text[:train] + text[train:].replace('visibility = "visible"', 'visibility = "hidden"', 1),
                      encoding="utf-8")
    code, result = run_check(capsys, REFERENCE_NOTEBOOK, "--rubric", str(rubric))
    assert code == 0 and result["score"] == result["max_score"] == 100 - 4 - 14
    assert result["self_check"] == {"hidden_count": 3, "hidden_points": 18.0, "reference": "golden"}
    assert "lstm.train" not in statuses(result)
    assert "train_check_s" not in result["timings"] and "model_checks_s" in result["timings"]


def test_untouched_template_scores_zero_without_crashing(capsys):
    code, result = run_check(capsys, TEMPLATE_NOTEBOOK)
    assert code == 1
    assert result["score"] == 0 and result["max_score"] == VISIBLE_POINTS
    assert statuses(result)["notebook.parses"] == "passed"
    assert all(c["score"] == 0 for c in result["checks"])
    assert statuses(result)["lstm.train"] == "skipped"


@pytest.mark.parametrize("fixture", ["passes_all_with_w_at_x_orientation", "passes_all_with_mixed_orientation",
                                     "passes_all_with_global_device"])
def test_correct_notebooks_in_any_orientation_pass(capsys, fixture):
    code, result = run_check(capsys, FIXTURES / f"{fixture}.ipynb")
    assert not_passed(result) == set() and code == 0


def test_first_step_logits_fails_exactly_lstm_forward_grad_train(capsys):
    code, result = run_check(capsys, FIXTURES / "fails_lstm_forward_grad_train_first_step_logits.ipynb")
    assert code == 1
    assert not_passed(result) == {"lstm.forward", "lstm.grad", "lstm.train"}
    forward = next(c for c in result["checks"] if c["id"] == "lstm.forward")
    assert "first" in forward["diagnosis"].lower()
    assert result["score"] == VISIBLE_POINTS - 10 - 8 - 14


@pytest.mark.parametrize("full", [False, True], ids=["self_check", "ta_grading"])
def test_a_cell_state_made_on_the_cpu_fails_exactly_lstm_device_with_its_line(capsys, full):
    code, result = run_check(capsys, FIXTURES / "fails_lstm_device_only_cell_state_on_cpu.ipynb", *(["--full"] if full else []))
    assert code == 1 and not_passed(result) == {"lstm.device"}
    device = next(c for c in result["checks"] if c["id"] == "lstm.device")
    assert "c_t = torch.zeros(batch_size, self.hidden_size)" in device["message"]
    assert "device=" in device["diagnosis"] and "device=x.device" in device["hint"]
    assert result["score"] == result["max_score"] - 2


def test_detached_hidden_fails_exactly_rnn_grad(capsys):
    _, result = run_check(capsys, FIXTURES / "fails_rnn_grad_detached_hidden.ipynb")
    assert not_passed(result) == {"rnn.grad"}
    grad = next(c for c in result["checks"] if c["id"] == "rnn.grad")
    assert "detach" in grad["diagnosis"].lower()


@pytest.mark.parametrize(("fixture", "fails"), [
    # the RNN returns every step's logits: criterion(logits, labels) raises in the (correct) training cell
    ("fails_rnn_forward_grad_runs_all_steps_logits_loops_pass", {"rnn.forward", "rnn.grad", "notebook.runs"}),
    # the RNN's weights are plain tensors: Adam(model.parameters()) raises "empty parameter list", and
    # model.to(device) would leave them on the CPU (rnn.device)
    ("fails_rnn_params_grad_runs_plain_tensors_loops_pass", {"rnn.params", "rnn.grad", "rnn.device", "notebook.runs"}),
    # (1, H) LSTM biases Xavier-initialised by the template's dim() > 1 rule are not zero at initialisation
    ("fails_lstm_init_only_2d_bias_xavier", {"lstm.init"}),
])
def test_a_model_mistake_is_charged_to_the_model_never_to_a_correct_loop(capsys, fixture, fails):
    # A fixed seed: how fast this mis-initialised LSTM learns depends on it (seeds 1-18 all reached 80 %, seed 11 at
    # exactly 80 % after 6 epochs; a fresh secret on a clean CI machine once missed it). The seed is derived from
    # the notebook and the user's secret otherwise, so the run would differ per machine.
    code, result = run_check(capsys, FIXTURES / f"{fixture}.ipynb", "--seed", "3")
    assert code == 1
    assert not_passed(result) == fails, [(c["id"], c["message"]) for c in result["checks"] if c["status"] != "passed"]


def test_a_cell_that_swallows_interrupts_is_killed_and_every_check_still_gets_a_verdict(capsys, quick_rubric):
    code, result = run_check(capsys, FIXTURES / "hangs_after_lstm_yet_every_check_graded.ipynb", "--rubric", str(quick_rubric))
    assert code == 1
    assert len(result["checks"]) == VISIBLE_CHECKS
    # the kernel was killed, so later cells never ran; the models are graded in a fresh kernel
    assert result["kernel_died"] is True and result["fallback_kernel"] is True
    assert not_passed(result) == {"notebook.runs"}


def test_a_notebook_that_kills_its_kernel_is_graded_from_its_definitions(capsys):
    _, result = run_check(capsys, FIXTURES / "kills_kernel_after_lstm_yet_models_graded.ipynb")
    assert result["kernel_died"] is True and result["fallback_kernel"] is True
    assert not_passed(result) == {"notebook.runs"}
    assert result["score"] == VISIBLE_POINTS - 4


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("truncated.ipynb", b'{"cells": [{"cell_type": "code", "sour'),
        ("renamed.ipynb", b"import torch\nprint('not a notebook')\n"),
        ("empty.ipynb", b""),
        ("binary.ipynb", bytes(range(256)) * 4),
        ("list.ipynb", b"[1, 2, 3]"),
    ],
)
def test_a_file_that_is_not_a_notebook_gets_one_line_and_exit_2(capsys, tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    assert main(["check", str(path), "--lang", "en"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0]
    assert "Traceback" not in captured.err + captured.out


def test_missing_notebook_is_bad_input(capsys, tmp_path):
    assert main(["check", str(tmp_path / "nope.ipynb")]) == 2


def test_fail_under_sets_the_pass_mark(capsys):
    # the template scores 0: below 1 fails, at 0 passes
    assert main(["check", str(TEMPLATE_NOTEBOOK), "--format", "json", "--fail-under", "1"]) == 1
    capsys.readouterr()
    assert main(["check", str(TEMPLATE_NOTEBOOK), "--format", "json", "--fail-under", "0"]) == 0
