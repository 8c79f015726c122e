"""The self-check cell in a real notebook, in a real kernel of a clean venv holding only the student wheel.

No reference/ is reachable there (the wheel has golden vectors instead). The notebook defines the
reference's classes, a class with a known mistake, and a class that reads the lab's global
`device = torch.device('npu')` with the grader's stand-in NPU; each self-check cell prints what scripts
read and displays the table. The executed notebook is exported to HTML (nbconvert) and opened in a real
headless Chromium, screenshots in test-artifacts/.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import nbformat
import pytest
from test_report_browser import DESKTOP, PHONE, _open, _save_screenshot, _severe_console_entries, browser  # noqa: F401
from test_student_repo import clean_machine

from grader.distribution.student_repo import build_wheel
from grader.notebook import find_class_sources, read_notebook
from grader.paths import REFERENCE_NOTEBOOK

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

FIXTURES = Path(__file__).parent / "fixtures" / "models"
RUN_NOTEBOOK = """
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True).execute()
nbformat.write(nb, sys.argv[2])
"""


def _notebook() -> nbformat.NotebookNode:
    sources = find_class_sources(read_notebook(REFERENCE_NOTEBOOK), ["CustomRNN", "CustomLSTM"])
    mistake = (FIXTURES / "lstm_no_input_gate.py").read_text(encoding="utf-8")
    cells = [
        "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F",
        "import grader.paths\nprint('REFERENCE', grader.paths.REFERENCE_NOTEBOOK.exists())",
        sources["CustomRNN"],
        "from grader import selfcheck\nr = selfcheck.check(CustomRNN, lang='en')\n"
        "print('SELF_RNN', r.passed, r.score, r.max_score, r.device, r.precision)\nr",
        sources["CustomLSTM"],
        "r = selfcheck.check(CustomLSTM)\nprint('SELF_LSTM', r.passed, r.score, r.max_score)\nr",
        mistake + "\nr = selfcheck.check(CustomLSTM, lang='en')\n"
        "print('MISTAKE', r.passed, [c.diagnosis_key for c in r.checks if c.status != 'passed'])\nr",
        "import torch_npu\ndevice = torch.device('npu')\n" + sources["CustomLSTM"].replace(
            "def forward(self, x):", "def forward(self, x):\n        torch.zeros(1, device=device)", 1)
        + "\nr = selfcheck.check(CustomLSTM, lang='en')\nprint('NPU', r.passed, r.device, str(device))\nr",
    ]
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> tuple[nbformat.NotebookNode, Path]:
    root = tmp_path_factory.mktemp("student-machine")
    machine = clean_machine(root)
    wheel = build_wheel(root / "dist")
    pip = [str(machine.bin / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "torch==2.13.0"], check=True, capture_output=True, timeout=900)
    subprocess.run([*pip, str(wheel)], check=True, capture_output=True, timeout=900)
    fakes = subprocess.run([str(machine.bin / "python"), "-c", "import grader.inkernel, pathlib; "
                            "print(pathlib.Path(grader.inkernel.__file__).parent / 'fakes')"],
                           check=True, capture_output=True, text=True).stdout.strip()
    source, done = root / "lab.ipynb", root / "lab.executed.ipynb"
    nbformat.write(_notebook(), source)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PYTHONPATH=fakes, GRADER_TORCH_DEVICE="cpu", OMP_NUM_THREADS="1", GRADER_CACHE_DIR=str(root / "c"),
               HOME=str(root), JUPYTER_PLATFORM_DIRS="1")
    run = subprocess.run([str(machine.bin / "python"), "-c", RUN_NOTEBOOK, str(source), str(done)], env=env,
                         cwd=root, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    return nbformat.read(done, as_version=4), root


def _printed(nb: nbformat.NotebookNode) -> dict[str, list[str]]:
    lines = [line for cell in nb.cells for out in cell.get("outputs", []) if out.get("name") == "stdout"
             for line in out["text"].splitlines()]
    return {line.split()[0]: line.split()[1:] for line in lines if line}


def test_the_wheel_alone_checks_the_reference_a_mistake_and_an_npu_class(executed):
    nb, _ = executed
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == [], json.dumps(errors)[:2000]
    said = _printed(nb)
    assert said["REFERENCE"] == ["False"]  # the wheel holds no reference
    assert said["SELF_RNN"] == ["True", "27.0", "27.0", "cpu", "float64"]
    assert said["SELF_LSTM"] == ["True", "35.0", "35.0"]
    assert said["MISTAKE"][0] == "False" and "checks.diag.no_input_gate" in " ".join(said["MISTAKE"])
    assert said["NPU"] == ["True", "cpu", "npu"]
    tables = [o for c in nb.cells for o in c.get("outputs", []) if "text/html" in o.get("data", {})]
    assert len(tables) == 4 and all("data-selfcheck" in t["data"]["text/html"] for t in tables)


@pytest.mark.parametrize(("size", "label"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_the_check_cells_render_like_the_reports_in_a_browser(browser, executed, size, label):  # noqa: F811
    from nbconvert import HTMLExporter
    from selenium.webdriver.common.by import By

    nb, root = executed
    page = root / f"selfcheck-{label}.html"
    # The "basic" template: the cells alone (the full one loads MathJax from a CDN, unreachable here)
    body = HTMLExporter(template_name="basic").from_notebook_node(nb)[0]
    page.write_text(f'<!DOCTYPE html><html><head><meta charset="utf-8"><meta name="viewport" '
                    f'content="width=device-width, initial-scale=1"></head><body>{body}</body></html>',
                    encoding="utf-8")
    _open(browser, page, size)
    tables = browser.find_elements(By.CSS_SELECTOR, "[data-selfcheck]")
    assert len(tables) == 4 and all(t.is_displayed() for t in tables)
    assert _severe_console_entries(browser) == []
    assert _save_screenshot(browser, f"selfcheck-notebook-{label}.png").stat().st_size > 0
