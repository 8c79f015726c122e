"""Model checks end to end: student fixtures run in a real subprocess "kernel".

Each fixture under tests/fixtures/models/ is named after the outcome it
expects; EXPECTED lists, per fixture, the checks that must fail and the
diagnosis each must carry. Every other check of the fixture's class must pass,
with both oracles: the live reference (TA grading) and the packaged golden
vectors (students' self-checks).
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest

from grader.checks.model import OTHER_SIZES, run_model_checks
from grader.messages import LANGUAGES, render
from grader.notebook import find_class_sources
from grader.oracle import load_oracle
from grader.result import CheckResult, Status

pytestmark = pytest.mark.kernel  # the probes run in SubprocessRunner (a real process) or a kernel

FIXTURES = Path(__file__).parent / "fixtures" / "models"
_spec = importlib.util.spec_from_file_location("subprocess_runner", FIXTURES / "subprocess_runner.py")
runner_mod = importlib.util.module_from_spec(_spec)
sys.modules["subprocess_runner"] = runner_mod
_spec.loader.exec_module(runner_mod)
SubprocessRunner = runner_mod.SubprocessRunner

CHECKS = ("defined", "params", "init", "forward", "grad", "no_builtin", "device")
ORACLES = {kind: load_oracle(kind) for kind in ("live", "golden")}
LIVE = ORACLES["live"]

# fixture -> {check: diagnosis key suffix or None}: the checks that must FAIL.
EXPECTED: dict[str, dict[str, str | None]] = {
    "correct_x_at_w": {},
    "correct_w_at_x": {},
    "correct_mixed_orientation": {},
    "correct_rnn_float32_hardcoded": {},
    "correct_global_device": {},
    "rnn_hidden_state_on_cpu": {"device": "device_created_on_cpu"},
    "lstm_cell_state_on_cpu": {"device": "device_created_on_cpu"},
    "rnn_no_tanh": {"forward": "no_tanh", "grad": "no_tanh"},
    "rnn_x0_every_step": {"forward": "x0_every_step", "grad": "x0_every_step"},
    "rnn_first_step_logits": {"forward": "first_step_logits", "grad": "first_step_logits"},
    "rnn_all_steps_logits": {"forward": "all_steps_logits", "grad": "all_steps_logits"},
    "rnn_detached_hidden": {"grad": "detached_hidden"},
    "rnn_ignores_hidden_state": {"forward": "ignores_hidden_state"},
    # plain tensors are not moved by model.to(device): on the NPU the forward pass meets them on the CPU
    "rnn_params_not_registered": {"params": "not_registered", "grad": "not_registered", "device": "device_not_moved"},
    "rnn_randn_init": {"init": None},
    "rnn_uses_nn_rnn": {"no_builtin": None, "forward": None, "grad": "unused_params"},
    "lstm_tanh_on_forget_gate": {"forward": "tanh_forget_gate", "grad": "tanh_forget_gate"},
    "lstm_tanh_on_input_gate": {"forward": "tanh_input_gate", "grad": "tanh_input_gate"},
    "lstm_tanh_on_output_gate": {"forward": "tanh_output_gate", "grad": "tanh_output_gate"},
    "lstm_no_tanh_on_cell": {"forward": "no_cell_tanh", "grad": "no_cell_tanh"},
    "lstm_no_input_gate": {"forward": "no_input_gate", "grad": "no_input_gate"},
    "lstm_updated_h_in_output_gate": {"forward": "updated_h_in_output_gate", "grad": "updated_h_in_output_gate"},
    "lstm_detached_hidden": {"grad": "detached_hidden"},
    "lstm_x0_every_step": {"forward": "x0_every_step", "grad": "x0_every_step"},
    "lstm_first_step_logits": {"forward": "first_step_logits", "grad": "first_step_logits"},
    "lstm_all_steps_logits": {"forward": "all_steps_logits", "grad": "all_steps_logits"},
    "lstm_params_not_registered": {"params": "not_registered", "grad": "not_registered", "device": "device_not_moved"},
    "lstm_uses_torch_vf": {"no_builtin": None},
    "lstm_2d_bias_xavier_init": {"init": None},
}


def test_every_fixture_has_an_expectation() -> None:
    files = {p.stem for p in FIXTURES.glob("*.py") if p.stem != "subprocess_runner"}
    assert files == set(EXPECTED)


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory):
    runner = SubprocessRunner(tmp_path_factory.mktemp("kernel"))
    yield runner
    runner.close()


def class_sources(source: str) -> dict[str, str]:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    return find_class_sources(nb, ["CustomRNN", "CustomLSTM"])


def run_fixture(runner, source: str, seed: int | None = 1234, oracle=LIVE) -> dict[str, CheckResult]:
    runner.reset()
    assert runner.run_code(source, 60).ok
    results = run_model_checks(runner, class_sources(source), oracle, rng_seed=seed, probe_timeout_s=60)
    assert [r.id for r in results] == [f"{p}.{c}" for p in ("rnn", "lstm") for c in CHECKS]
    return {r.id: r for r in results}


def prefixes_of(name: str) -> tuple[str, ...]:
    if name.startswith(("rnn_", "correct_rnn_")):
        return ("rnn",)
    if name.startswith("lstm_"):
        return ("lstm",)
    return ("rnn", "lstm")


@pytest.mark.parametrize("oracle", sorted(ORACLES))
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_outcome(kernel, name: str, oracle: str) -> None:
    results = run_fixture(kernel, (FIXTURES / f"{name}.py").read_text(), oracle=ORACLES[oracle])
    for prefix in prefixes_of(name):
        for check in CHECKS:
            res = results[f"{prefix}.{check}"]
            if check in EXPECTED[name]:
                assert res.status is Status.FAILED, (res.id, render(res.message, "en"))
                want = EXPECTED[name][check]
                got = res.diagnosis.key if res.diagnosis else None
                assert got == (f"checks.diag.{want}" if want else None), (res.id, got)
            else:
                assert res.status is Status.PASSED, (res.id, res.status, render(res.message, "en"), res.details)
            for lang in LANGUAGES:  # every message renders, no missing key or placeholder
                text = render(res.message, lang)
                assert text and not text.startswith("checks."), text
                if res.diagnosis:
                    assert not render(res.diagnosis, lang).startswith("checks.")
    assert not list(kernel.workdir.glob(".grader-probe-*")), "probe folders must be cleaned up"


def test_tolerances_are_stated(kernel) -> None:
    results = run_fixture(kernel, (FIXTURES / "correct_x_at_w.py").read_text())
    fwd = results["lstm.forward"]
    assert fwd.details["tolerance"] == {"atol": 1e-8, "rtol": 1e-6, "dtype": "float64"}
    assert fwd.details["seed"] == 1234 + 1
    f32 = run_fixture(kernel, (FIXTURES / "correct_rnn_float32_hardcoded.py").read_text())
    assert f32["rnn.forward"].status is Status.PASSED
    assert f32["rnn.forward"].details["tolerance"]["dtype"] == "float32"
    assert f32["rnn.forward"].details["dtype_run"] == "float32"


def test_orientation_is_reported(kernel) -> None:
    results = run_fixture(kernel, (FIXTURES / "correct_mixed_orientation.py").read_text())
    orient = results["lstm.params"].details["orientation"]
    assert orient["W_xf"] == "transposed" and orient["W_xi"] == "canonical" and orient["W_hf"] == "square"


def test_fresh_seed_per_run(kernel) -> None:
    a = run_fixture(kernel, (FIXTURES / "correct_x_at_w.py").read_text(), seed=None)
    b = run_fixture(kernel, (FIXTURES / "correct_x_at_w.py").read_text(), seed=None)
    assert a["rnn.forward"].details["seed"] != b["rnn.forward"].details["seed"]
    assert a["rnn.forward"].passed and b["rnn.forward"].passed


def test_missing_classes_fail_defined_and_skip_the_rest(kernel) -> None:
    results = run_fixture(kernel, "x = 1\n")
    for prefix in ("rnn", "lstm"):
        assert results[f"{prefix}.defined"].status is Status.FAILED
        assert results[f"{prefix}.defined"].message.key == "checks.defined.missing"
        for check in CHECKS[1:]:
            assert results[f"{prefix}.{check}"].status is Status.SKIPPED


def test_not_a_module_and_constructor_error(kernel) -> None:
    source = (
        "import torch.nn as nn\n"
        "class CustomRNN:\n    pass\n"
        "class CustomLSTM(nn.Module):\n"
        "    def __init__(self, i, h, o):\n        super().__init__()\n        raise ValueError('boom')\n"
    )
    results = run_fixture(kernel, source)
    assert results["rnn.defined"].message.key == "checks.defined.not_module"
    assert results["lstm.defined"].message.key == "checks.defined.ctor_error"
    assert "boom" in results["lstm.defined"].message.params["error"]


def test_wrong_shape_skips_forward_and_grad(kernel) -> None:
    source = (FIXTURES / "correct_x_at_w.py").read_text().replace(
        "self.W_xh = nn.Parameter(torch.empty(input_size, hidden_size))",
        "self.W_xh = nn.Parameter(torch.empty(input_size, input_size))")
    results = run_fixture(kernel, source)
    assert results["rnn.params"].status is Status.FAILED
    assert "W_xh" in results["rnn.params"].message.params["wrong_shape"]
    assert results["rnn.forward"].status is Status.SKIPPED
    assert results["rnn.grad"].status is Status.SKIPPED


def test_device_mixing_that_meta_itself_lets_through_still_fails(kernel) -> None:
    """A matrix product or einsum of a CPU tensor with a meta one does not raise on meta: the watch checks."""
    source = (FIXTURES / "correct_x_at_w.py").read_text().replace(
        "hidden_state = torch.zeros(batch_size, self.hidden_size).to(x.device)",
        "hidden_state = torch.zeros(batch_size, self.hidden_size)").replace(
        "hidden_state @ self.W_hh", "torch.einsum('bh,hk->bk', hidden_state, self.W_hh)")
    results = run_fixture(kernel, source)
    device = results["rnn.device"]
    assert device.status is Status.FAILED and device.diagnosis.key == "checks.diag.device_created_on_cpu"
    assert device.message.params["code"] == "hidden_state = torch.zeros(batch_size, self.hidden_size)"
    assert results["rnn.forward"].passed and results["lstm.device"].passed


def test_a_forward_pass_that_catches_the_device_error_still_fails(kernel) -> None:
    """A student's try/except around the mixing operation would swallow the stand-in's error: it still counts."""
    source = (FIXTURES / "rnn_hidden_state_on_cpu.py").read_text().replace(
        "            hidden_state = torch.tanh(x[t] @ self.W_xh + hidden_state @ self.W_hh + self.b_h)",
        "            try:\n"
        "                hidden_state = torch.tanh(x[t] @ self.W_xh + hidden_state @ self.W_hh + self.b_h)\n"
        "            except RuntimeError:\n"
        "                hidden_state = torch.tanh(x[t] @ self.W_xh + self.b_h)")
    assert "except RuntimeError" in source
    device = run_fixture(kernel, source)["rnn.device"]
    assert device.status is Status.FAILED and device.diagnosis.key == "checks.diag.device_created_on_cpu"


def test_the_device_check_leaves_a_layer_shared_with_the_notebook_where_it_was(kernel) -> None:
    source = (FIXTURES / "correct_x_at_w.py").read_text().replace(
        "        self.fc = nn.Linear(hidden_size, output_size)", "        self.fc = SHARED_FC")
    results = run_fixture(kernel, "import torch.nn as nn\nSHARED_FC = nn.Linear(32, 3)\n" + source)
    assert results["lstm.device"].passed
    assert kernel.run_code("assert SHARED_FC.weight.device.type == 'cpu'", 60).ok  # not left on meta


def test_a_notebook_default_device_counts_as_naming_the_device(kernel) -> None:
    """torch.set_default_device(device) makes torch.zeros(b, h) land on the model's device on the NPU too."""
    source = (FIXTURES / "rnn_hidden_state_on_cpu.py").read_text() + "\ntorch.set_default_device('cpu')\n"
    try:
        assert run_fixture(kernel, source)["rnn.device"].passed
    finally:
        kernel.run_code("torch.set_default_device(None)", 60)


def test_forward_crash_is_an_error_with_the_exception(kernel) -> None:
    source = (FIXTURES / "correct_x_at_w.py").read_text().replace(
        "        return self.fc(h_t)", "        raise RuntimeError('student bug')")
    results = run_fixture(kernel, source)
    assert results["lstm.forward"].status is Status.ERROR
    assert "student bug" in results["lstm.forward"].message.params["error"]
    assert results["lstm.grad"].status is Status.ERROR
    assert results["lstm.params"].passed and results["lstm.init"].passed


def test_hostile_namespace_changes_nothing(tmp_path: Path) -> None:
    """Rebound names and a patched torch.allclose: a wrong LSTM still fails, a right RNN still passes."""
    runner = SubprocessRunner(tmp_path)
    try:
        source = (FIXTURES / "correct_x_at_w.py").read_text() + (FIXTURES / "lstm_tanh_on_forget_gate.py").read_text()
        source += (
            "\nimport numpy, json as _j, os\n"
            "torch.allclose = lambda *a, **k: True\n"
            "numpy.allclose = lambda *a, **k: True\n"
            "np = json = open = print = globals = exec = compile = None\n"
            "_j.dump(dict(steps={}, arrays={}), __builtins__['open']('manifest.json', 'w')) if isinstance(__builtins__, dict) else None\n"
        )
        assert runner.run_code(source, 60).ok
        results = {r.id: r for r in run_model_checks(runner, class_sources(source), LIVE, rng_seed=7, probe_timeout_s=60)}
        assert all(results[f"rnn.{c}"].passed for c in CHECKS)
        assert results["lstm.forward"].status is Status.FAILED
        assert results["lstm.forward"].diagnosis.key == "checks.diag.tanh_forget_gate"
    finally:
        runner.close()


def test_dead_kernel_gives_errors(tmp_path: Path) -> None:
    runner = SubprocessRunner(tmp_path)
    try:
        source = (FIXTURES / "correct_x_at_w.py").read_text().replace(
            "        seq_len, batch_size, _ = x.shape\n        if hidden_state",
            "        import os; os._exit(3)\n        if hidden_state")
        assert runner.run_code(source, 60).ok
        results = {r.id: r for r in run_model_checks(runner, {}, LIVE, rng_seed=1, probe_timeout_s=60)}
        assert results["rnn.params"].passed  # inspect ran before forward killed the kernel
        assert results["rnn.forward"].status is Status.ERROR
        assert results["rnn.forward"].message.key == "checks.kernel.died"
        for check in CHECKS:
            assert results[f"lstm.{check}"].status is Status.ERROR
    finally:
        runner.close()


def test_hanging_forward_times_out(tmp_path: Path) -> None:
    runner = SubprocessRunner(tmp_path)
    try:
        source = (FIXTURES / "correct_x_at_w.py").read_text().replace(
            "        for t in range(seq_len):\n            hidden_state",
            "        while True:\n            pass\n        for t in range(seq_len):\n            hidden_state")
        assert runner.run_code(source, 60).ok
        results = {r.id: r for r in run_model_checks(runner, {}, LIVE, rng_seed=1, probe_timeout_s=2.0)}
        assert results["rnn.forward"].message.key == "checks.kernel.timeout"
        assert results["rnn.grad"].status is Status.ERROR
    finally:
        runner.close()


def test_probe_runs_on_the_sessions_device(kernel) -> None:
    """A student's `.to(device)` with the notebook's global device works: the probe uses the session's device."""
    from types import SimpleNamespace

    class WithDevice:
        def __init__(self, inner) -> None:
            self.inner, self.workdir = inner, inner.workdir
            self.device = SimpleNamespace(torch_device="cpu")

        def run_code(self, code: str, timeout_s: float):
            return self.inner.run_code(code, timeout_s)

    source = "device = 'cpu'\n" + (FIXTURES / "correct_x_at_w.py").read_text().replace(".to(x.device)", ".to(device)")
    kernel.reset()
    assert kernel.run_code(source, 60).ok
    results = {r.id: r for r in run_model_checks(WithDevice(kernel), class_sources(source), LIVE, rng_seed=5, probe_timeout_s=60)}
    assert all(r.passed for r in results.values())


def _sized_results(kernel, source: str) -> dict[str, CheckResult]:
    kernel.reset()
    assert kernel.run_code(source, 60).ok
    return {r.id: r for r in run_model_checks(kernel, class_sources(source), LIVE, rng_seed=11, other_sizes=True, probe_timeout_s=60)}


def test_other_sizes_pass_for_a_correct_class(kernel) -> None:
    results = _sized_results(kernel, (FIXTURES / "correct_w_at_x.py").read_text())
    assert results["rnn.sizes"].passed and results["lstm.sizes"].passed, results["rnn.sizes"]
    assert list(results) == [f"{p}.{c}" for p in ("rnn", "lstm") for c in (*CHECKS, "sizes")]


def test_a_hard_coded_hidden_size_fails_only_the_sizes_check(kernel) -> None:
    source = (FIXTURES / "correct_x_at_w.py").read_text().replace(
        "torch.zeros(batch_size, self.hidden_size)", "torch.zeros(batch_size, 32)", 1)
    results = _sized_results(kernel, source)
    assert all(results[f"rnn.{c}"].passed for c in CHECKS)  # right at the lab's sizes
    sizes = results["rnn.sizes"]
    assert sizes.status is Status.ERROR or sizes.status is Status.FAILED
    assert sizes.message.key == "checks.sizes.failed" and sizes.details["first"]["id"] == "rnn.forward"
    for lang in LANGUAGES:
        assert "9, 5, 2" in render(sizes.message, lang)
    assert results["lstm.sizes"].passed


def test_sizes_is_skipped_when_the_forward_pass_already_fails_at_the_lab_sizes(kernel) -> None:
    results = _sized_results(kernel, (FIXTURES / "rnn_no_tanh.py").read_text())
    assert results["rnn.sizes"].status is Status.SKIPPED
    assert results["rnn.sizes"].message.key == "checks.sizes.needs_lab_sizes"


def test_a_gradient_mistake_costs_grad_but_not_sizes(kernel) -> None:
    results = _sized_results(kernel, (FIXTURES / "rnn_detached_hidden.py").read_text())
    assert results["rnn.grad"].status is Status.FAILED
    assert results["rnn.sizes"].passed and results["rnn.sizes"].details["judged"] == ["defined", "params", "forward"]


def test_the_golden_oracle_answers_only_its_packaged_case() -> None:
    from grader.lab_api import LAB_SIZES, RNN
    from grader.oracle.probe_data import draw_data

    golden = ORACLES["golden"]
    with pytest.raises(ValueError):
        golden.probe_data(RNN, OTHER_SIZES, 1)
    with pytest.raises(ValueError):
        golden.outputs(RNN, draw_data(RNN, LAB_SIZES, 1))  # a fresh draw: only the live reference can answer


class _TimeoutRecorder:
    """A real runner that notes the time limit of every call the checks make."""

    def __init__(self, runner) -> None:
        self.runner, self.timeouts = runner, []

    def __getattr__(self, name):
        return getattr(self.runner, name)

    def run_code(self, code: str, timeout_s: float):
        self.timeouts.append(timeout_s)
        return self.runner.run_code(code, timeout_s)


def test_the_rubrics_probe_timeout_is_the_limit_of_every_probe_call(kernel) -> None:
    """[limits] probe_timeout_s used to stop at the pipeline: the probes ran under a hard-coded 60 s."""
    source = (FIXTURES / "correct_x_at_w.py").read_text(encoding="utf-8")
    kernel.reset()
    assert kernel.run_code(source, 60).ok
    recorder = _TimeoutRecorder(kernel)
    run_model_checks(recorder, class_sources(source), LIVE, rng_seed=1, other_sizes=True, probe_timeout_s=37.5)
    assert recorder.timeouts and set(recorder.timeouts) == {37.5}
