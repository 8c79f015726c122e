"""The committed student template is exactly what `grader template` produces."""
from __future__ import annotations

import ast

import pytest

from grader.cli import main
from grader.distribution.template import make_template, render, template_line
from grader.errors import BadInputError
from grader.notebook import read_notebook
from grader.paths import REFERENCE_NOTEBOOK, TEMPLATE_NOTEBOOK


def test_committed_template_is_in_sync_with_reference():
    expected = render(make_template(read_notebook(REFERENCE_NOTEBOOK)))
    assert TEMPLATE_NOTEBOOK.read_text(encoding="utf-8") == expected, "run `grader template` and commit"


def test_template_check_command_fails_on_a_stale_template(tmp_path, capsys):
    stale = tmp_path / "lab.ipynb"
    stale.write_text(TEMPLATE_NOTEBOOK.read_text(encoding="utf-8").replace("TODO", "DONE", 1), encoding="utf-8")
    assert main(["template", "--check", "--out", str(stale)]) == 1
    assert "stale" in capsys.readouterr().out
    assert main(["template", "--check"]) == 0


def test_template_holds_no_solution_code():
    text = TEMPLATE_NOTEBOOK.read_text(encoding="utf-8")
    for leak in ("[solution]", "torch.sigmoid(", "torch.tanh(x_t", "nn.Parameter(", "solution-only",
                 "loss.backward()", "pd.read_csv(", "torch.argmax("):
        assert leak not in text, f"solution code leaked into the template: {leak}"


def test_template_keeps_the_labs_npu_lines_and_hyperparameters():
    cells = [c.source for c in read_notebook(TEMPLATE_NOTEBOOK).cells if c.cell_type == "code"]
    joined = "\n".join(cells)
    for line in ("import torch_npu", "device = torch.device('npu')", "input_size = 13", "hidden_size = 32",
                 "output_size = 3", "learning_rate = 0.005", "num_epochs = 50", "batch_size = 16",
                 "!pip install librosa==0.11.0", "!unzip -q -n data.zip"):
        assert line in joined


def test_every_reference_cell_has_a_template_counterpart_in_order():
    ref = [c for c in read_notebook(REFERENCE_NOTEBOOK).cells if "solution-only" not in c.metadata.get("tags", [])]
    tpl = read_notebook(TEMPLATE_NOTEBOOK).cells
    assert [c.cell_type for c in ref] == [c.cell_type for c in tpl]
    assert [c.get("id") for c in ref] == [c.get("id") for c in tpl]


@pytest.mark.parametrize(
    ("line", "gap"),
    [
        ("    x = f(y)  # [solution] TODO: hint", "    x = # TODO: hint"),
        ("        self.W = nn.Parameter(t)  # [solution] TODO: 权重", "        self.W = # TODO: 权重"),
        ("    opt.step()  # [solution] TODO: 更新", "    # TODO: 更新"),
        ("    x_t = x[t]  # [solution] OPTIONAL: 可选", "    # TODO: 可选"),
        ("plain = 1  # an ordinary comment", "plain = 1  # an ordinary comment"),
    ],
)
def test_template_line(line, gap):
    assert template_line(line, "test") == gap


def test_a_multiline_solution_statement_is_refused():
    with pytest.raises(BadInputError, match="one complete statement"):
        template_line("    x = f(  # [solution] TODO: hint", "cell 3, line 2")


def test_reference_code_cells_parse():
    """Every reference code cell, shell escapes aside, is valid Python."""
    from grader.notebook import python_source

    for cell in read_notebook(REFERENCE_NOTEBOOK).cells:
        if cell.cell_type == "code":
            ast.parse(python_source(cell.source))
