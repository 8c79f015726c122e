"""The wheel students install must not hand them the solution (issue #7).

Students get the grader as a wheel in their template repository (grader/distribution/student_repo.py). Anything in it can
be unzipped and read, so it must hold neither the reference notebook nor the reference implementation of the
gate equations: `grader check` compares against packaged golden vectors instead. Each assertion names the
offending wheel member.
"""
from __future__ import annotations

import ast
import json
import re
import zipfile
from pathlib import Path, PurePosixPath

import pytest

from grader.distribution.student_repo import build_wheel
from grader.paths import PROJECT_ROOT

REFERENCE_NOTEBOOK = PROJECT_ROOT / "reference" / "lab.ipynb"
SOLUTION_MARKERS = ("# [solution] TODO:", "# [solution] OPTIONAL:")
MIN_SOLUTION_CHARS = 15  # shorter solution lines (`x_t = x[t]`) are too trivial to tell a leak from a coincidence
FORBIDDEN_MODULE_NAMES = {"functional.py", "refsolution.py"}
# The LSTM's gates cannot be written without the logistic function: any of its names in a module is a gate equation.
SIGMOID_NAMES = {"sigmoid", "sigmoid_", "expit"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


class Members(dict):
    """The wheel's files, name -> bytes; short in pytest's failure output."""

    def __repr__(self) -> str:
        return f"<{len(self)} wheel members>"


@pytest.fixture(scope="module")
def members(wheel: Path) -> Members:
    with zipfile.ZipFile(wheel) as archive:
        return Members({info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()})


def _text(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None  # binary (golden .npz): no source code to leak


def _no_space(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _is_bare_api_call(code: str) -> bool:
    """`optimizer.step()`, `loss.backward()`: a no-argument method call that the lab's own hints name."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return False
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
        return False
    call = tree.body[0].value
    return (isinstance(call, ast.Call) and not call.args and not call.keywords
            and isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name))


def solution_lines() -> list[str]:
    """The code of every marked solution line of the reference notebook, worth looking for."""
    notebook = json.loads(REFERENCE_NOTEBOOK.read_text(encoding="utf-8"))
    found: list[str] = []
    for cell in notebook["cells"]:
        if cell.get("cell_type") != "code":
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        for line in source.splitlines():
            for marker in SOLUTION_MARKERS:
                if marker in line:
                    code = line.split(marker, 1)[0].strip()
                    if len(_no_space(code)) >= MIN_SOLUTION_CHARS and not _is_bare_api_call(code):
                        found.append(code)
    return sorted(set(found))


def test_the_reference_has_solution_lines_to_look_for() -> None:
    lines = solution_lines()
    assert len(lines) >= 20, lines
    assert any("sigmoid" in line for line in lines), "the LSTM gates should be among the solution lines"


def test_wheel_holds_no_notebook(members: dict[str, bytes]) -> None:
    notebooks = [name for name in members if name.lower().endswith(".ipynb")]
    assert not notebooks, f"notebooks in the wheel: {notebooks}"


def test_wheel_holds_nothing_under_reference(members: dict[str, bytes]) -> None:
    under = [name for name in members if "reference" in PurePosixPath(name).parts[:-1]]
    assert not under, f"members under a reference/ folder: {under}"


def test_wheel_holds_no_reference_modules(members: dict[str, bytes]) -> None:
    named = [name for name in members if PurePosixPath(name).name in FORBIDDEN_MODULE_NAMES]
    assert not named, f"reference modules in the wheel: {named}"


def test_no_solution_line_in_any_text_member(members: dict[str, bytes]) -> None:
    texts = {name: _no_space(text) for name, data in members.items() if (text := _text(data)) is not None}
    leaks = [f"{name}: {line!r}" for line in solution_lines() for name, text in texts.items()
             if _no_space(line) in text]
    assert not leaks, "solution lines of reference/lab.ipynb found in the wheel:\n" + "\n".join(leaks)


def _logistic_uses(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) for each use of the logistic function: by name, as an attribute, imported, or `1/(1+exp(-x))`."""
    uses: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id.lower() in SIGMOID_NAMES:
            uses.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute) and node.attr.lower() in SIGMOID_NAMES:
            uses.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.alias) and node.name.split(".")[-1].lower() in SIGMOID_NAMES:
            uses.append((getattr(node, "lineno", 0), f"import {node.name}"))
        elif (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)
              and isinstance(node.left, ast.Constant) and node.left.value == 1
              and any(isinstance(n, ast.Call) and "exp" in ast.unparse(n.func).split(".")[-1]
                      for n in ast.walk(node.right))
              and any(isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub) for n in ast.walk(node.right))):
            uses.append((node.lineno, ast.unparse(node)))
    return uses


def test_logistic_detector_catches_the_usual_spellings() -> None:
    code = ("import torch\nimport torch.nn.functional as F\nfrom scipy.special import expit\n"
            "a = torch.sigmoid(x)\nb = F.sigmoid(x)\nc = torch.nn.Sigmoid()\nd = x.sigmoid()\n"
            "e = 1 / (1 + np.exp(-x))\nf = torch.tanh(x)\n")
    found = {line for line, _ in _logistic_uses(ast.parse(code))}
    assert found == {3, 4, 5, 6, 7, 8}


def test_no_module_implements_gate_equations(members: dict[str, bytes]) -> None:
    offences = []
    for name, data in sorted(members.items()):
        if not name.endswith(".py"):
            continue
        try:
            tree = ast.parse(data.decode("utf-8"), filename=name)
        except (SyntaxError, UnicodeDecodeError) as exc:
            offences.append(f"{name}: cannot be parsed ({exc})")
            continue
        offences += [f"{name}:{line}: {what}" for line, what in _logistic_uses(tree)]
    assert not offences, "gate equations (the logistic function) in the wheel:\n" + "\n".join(offences)


def test_wheel_holds_the_golden_vectors(members: dict[str, bytes]) -> None:
    golden = [name for name in members if name.startswith("grader/golden/")]
    assert any(name.endswith(".npz") for name in golden), f"no grader/golden/*.npz in the wheel (golden: {golden})"
    assert any(name.endswith(".json") for name in golden), f"no grader/golden/*.json in the wheel (golden: {golden})"


def test_wheel_holds_the_default_rubric(members: dict[str, bytes]) -> None:
    rubrics = [name for name in members if name.startswith("grader/") and PurePosixPath(name).name == "lab.toml"]
    assert rubrics, "no default rubric (grader/**/lab.toml) in the wheel"


def test_wheel_is_built_from_tracked_files_only(members: dict[str, bytes]) -> None:
    stray = [name for name in members if "__pycache__" in name or name.endswith(".pyc")]
    assert not stray, f"build leftovers in the wheel: {stray}"
