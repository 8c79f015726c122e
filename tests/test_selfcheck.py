"""`selfcheck.check(...)` in process, as a student's notebook calls it: the same verdicts as `grader check`.

The classes are the real fixture files (tests/fixtures/models/, each the reference with one known mistake),
imported as modules so their source is there as a notebook's would be; the checks run against the packaged
golden vectors on this CPU. The kernel-level tests (the wheel alone, a real notebook) are in
tests/test_selfcheck_notebook.py.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from test_checks_model import EXPECTED, prefixes_of

from grader import selfcheck
from grader.lab_api import CHECK_NAMES
from grader.selfcheck_view import as_html, as_text

FIXTURES = Path(__file__).parent / "fixtures" / "models"
FAKES = Path(__file__).resolve().parents[1] / "grader" / "inkernel" / "fakes"


def module_of(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"selfcheck_fixture_{name}", FIXTURES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_reference_passes_every_model_check_with_the_rubrics_points():
    module = module_of("correct_x_at_w")
    for cls, prefix, points in ((module.CustomRNN, "rnn", 27), (module.CustomLSTM, "lstm", 35)):
        result = selfcheck.check(cls, lang="en")
        assert result.passed and result.error == "", as_text(result)
        assert [c.id for c in result.checks] == [f"{prefix}.{n}" for n in CHECK_NAMES]
        assert (result.score, result.max_score) == (points, points)
        assert result.device == "cpu" and result.precision == "float64"
        assert "2 more hidden checks" in result.notice and "does not guarantee full marks" in result.notice


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if not n.startswith("correct")))
def test_each_known_mistake_fails_where_grader_check_fails_it_with_the_same_diagnosis(name):
    module = module_of(name)
    for prefix in prefixes_of(name):
        cls = module.CustomRNN if prefix == "rnn" else module.CustomLSTM
        result = selfcheck.check(cls, lang="en")
        failing = {c.id.split(".")[1]: c for c in result.checks if c.status != "passed"}
        assert set(failing) == set(EXPECTED[name]), as_text(result)
        for check, want in EXPECTED[name].items():
            assert failing[check].diagnosis_key == (f"checks.diag.{want}" if want else ""), failing[check]
            assert failing[check].hint  # the rubric's hint, as `grader check` gives it
        assert not result.passed and result.score < result.max_score


def test_checking_leaves_the_students_random_state_as_it_was():
    module = module_of("correct_x_at_w")
    torch.manual_seed(1234)
    before = torch.get_rng_state().clone()
    selfcheck.check(module.CustomLSTM)
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.get_default_dtype() == torch.float32


@pytest.mark.parametrize(("thing", "said"), [
    (42, "takes the class itself"),
    (torch.nn.Linear(2, 2), "takes the class itself"),
    (dict, "is not one of the lab's classes"),
])
def test_what_is_not_a_lab_class_gets_one_clear_line(thing, said):
    result = selfcheck.check(thing, lang="en")
    assert said in result.error and not result.checks and not result.passed
    assert len(as_text(result).splitlines()) == 2


def test_a_class_that_cannot_be_built_fails_defined_with_its_error_not_a_traceback():
    namespace: dict = {}
    exec("import torch.nn as nn\nclass CustomRNN(nn.Module):\n"
         "    def __init__(self, input_size, hidden_size, output_size):\n"
         "        raise ValueError('sizes?')\n", namespace)
    result = selfcheck.check(namespace["CustomRNN"], lang="en")
    defined = result.checks[0]
    assert defined.id == "rnn.defined" and defined.status == "failed" and "sizes?" in defined.message
    assert "Traceback" not in as_text(result)


def test_the_html_is_a_table_of_the_checks_and_escapes_the_students_words():
    namespace: dict = {}
    exec("import torch.nn as nn\nclass CustomLSTM(nn.Module):\n"
         "    def __init__(self, input_size, hidden_size, output_size):\n"
         "        raise ValueError('<img src=x onerror=alert(1)>')\n", namespace)
    page = as_html(selfcheck.check(namespace["CustomLSTM"], lang="zh"))
    assert page.count("data-check-id=") == len(CHECK_NAMES) and "data-selfcheck" in page
    assert "<img" not in page and "&lt;img" in page
    assert "自查" in page


def test_a_class_reading_a_global_npu_device_is_checked_on_the_cpu_with_the_fake_npu(tmp_path):
    """The lab's `device = torch.device('npu')` in a notebook where the NPU is the grader's stand-in."""
    script = tmp_path / "npu_notebook.py"
    script.write_text(
        "import torch, torch_npu\n"
        "import torch.nn as nn\n"
        f"exec(open({str(FIXTURES / 'correct_x_at_w.py')!r}).read())\n"
        "device = torch.device('npu')\n"
        "_forward = CustomLSTM.forward\n"
        "def forward(self, x):\n"
        "    torch.zeros(1, device=device)  # what the lab's code does: it reads the global device\n"
        "    return _forward(self, x)\n"
        "CustomLSTM.forward = forward\n"
        "from grader import selfcheck\n"
        "r = selfcheck.check(CustomLSTM, lang='en')\n"
        "print(r.passed, r.device, str(device))\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(FAKES), os.environ.get("PYTHONPATH", "")]),
           "GRADER_TORCH_DEVICE": "cpu", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-3:] == ["True", "cpu", "npu"]  # checked on the CPU; the global put back
