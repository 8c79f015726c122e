"""Regenerate the end-to-end fixture notebooks of `grader check` from the reference.

Each fixture is the reference notebook with one change, named by the outcome
it expects. Class bodies come from tests/fixtures/models/*.py (the model-check
fixtures), so one student mistake is written once.

    .venv/bin/python tests/notebooks/check/make_fixtures.py
"""
from __future__ import annotations

import ast
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
MODELS = ROOT / "tests" / "fixtures" / "models"
REFERENCE = ROOT / "reference" / "lab.ipynb"

HANG = """# a cell that ignores interrupts forever
import time
while True:
    try:
        time.sleep(0.05)
    except KeyboardInterrupt:
        pass"""
KILL = """# a cell that kills its own kernel
import os
os._exit(1)"""


def class_source(fixture: str, name: str) -> str:
    text = (MODELS / fixture).read_text(encoding="utf-8")
    for node in ast.parse(text).body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return ast.get_source_segment(text, node)
    raise SystemExit(f"{fixture} has no class {name}")


def reference() -> nbformat.NotebookNode:
    nb = nbformat.read(REFERENCE, as_version=4)
    nb.cells = [c for c in nb.cells if "solution-only" not in c.metadata.get("tags", [])]
    nb.metadata["kernelspec"] = {"name": "modelarts-python3-npu", "display_name": "MindSpore", "language": "python"}
    return nb


def class_cell(nb: nbformat.NotebookNode, name: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and f"class {name}(" in c.source)


def with_classes(fixture: str, names: tuple[str, ...] = ("CustomRNN", "CustomLSTM")) -> nbformat.NotebookNode:
    nb = reference()
    for name in names:
        nb.cells[class_cell(nb, name)].source = class_source(fixture, name)
    return nb


def with_cell_after(name: str, source: str) -> nbformat.NotebookNode:
    nb = reference()
    cell = nbformat.v4.new_code_cell(source)
    cell.id = "inserted-by-fixture"  # fixed, so regenerating gives the same bytes
    nb.cells.insert(class_cell(nb, name) + 1, cell)
    return nb


FIXTURES = {
    "passes_all_with_w_at_x_orientation": lambda: with_classes("correct_w_at_x.py"),
    "passes_all_with_mixed_orientation": lambda: with_classes("correct_mixed_orientation.py"),
    "fails_lstm_forward_grad_train_first_step_logits": lambda: with_classes("lstm_first_step_logits.py", ("CustomLSTM",)),
    "fails_rnn_grad_detached_hidden": lambda: with_classes("rnn_detached_hidden.py", ("CustomRNN",)),
    # A correct loop crashes because of the model (issue 13 item 9): the model's checks charge it, not the loops.
    "fails_rnn_forward_grad_runs_all_steps_logits_loops_pass":
        lambda: with_classes("rnn_all_steps_logits.py", ("CustomRNN",)),
    "fails_rnn_params_grad_runs_plain_tensors_loops_pass":
        lambda: with_classes("rnn_params_not_registered.py", ("CustomRNN",)),
    "fails_lstm_init_only_2d_bias_xavier": lambda: with_classes("lstm_2d_bias_xavier_init.py", ("CustomLSTM",)),
    # torch.zeros(batch, hidden) for c_t: the notebook runs and trains on the CPU; on the NPU it would crash.
    "fails_lstm_device_only_cell_state_on_cpu": lambda: with_classes("lstm_cell_state_on_cpu.py", ("CustomLSTM",)),
    "passes_all_with_global_device": lambda: with_classes("correct_global_device.py"),
    "hangs_after_lstm_yet_every_check_graded": lambda: with_cell_after("CustomLSTM", HANG),
    "kills_kernel_after_lstm_yet_models_graded": lambda: with_cell_after("CustomLSTM", KILL),
}


def main() -> None:
    for name, build in FIXTURES.items():
        nbformat.write(build(), HERE / f"{name}.ipynb")
        print("wrote", name)


if __name__ == "__main__":
    main()
