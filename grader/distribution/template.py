"""Generate the student template from the reference notebook.

The reference marks its solution one line at a time: a line ending in
`# [solution] TODO: <hint>` is a solution region. In the template,
- an assignment `lhs = <solution>  # [solution] TODO: hint` keeps its target:
  `lhs = # TODO: hint` (the lab's own gap style, deliberately not valid Python:
  an unfilled gap fails loudly where it is, not later);
- any other statement becomes `# TODO: hint` at the same indentation;
- a line ending in `# [solution] OPTIONAL: <hint>` is a step students may
  skip (an intermediate variable): it always becomes `# TODO: hint`.
Cells tagged `solution-only` (the reference's staff banner) are dropped, and
outputs and execution counts are cleared. Line markers, rather than
begin/end blocks, keep every gap next to the code it replaces, so the
template and reference cannot drift apart silently.
"""
from __future__ import annotations

import ast
import copy
import difflib
import sys
from pathlib import Path

import nbformat

from grader.errors import BadInputError
from grader.notebook import read_notebook
from grader.paths import REFERENCE_NOTEBOOK, TEMPLATE_NOTEBOOK

MARKER = "# [solution] TODO:"
OPTIONAL_MARKER = "# [solution] OPTIONAL:"
SOLUTION_ONLY_TAG = "solution-only"


def template_line(line: str, where: str) -> str:
    """Turn one marked solution line into its template gap; unmarked lines pass unchanged."""
    if OPTIONAL_MARKER in line:
        code_part, hint = line.split(OPTIONAL_MARKER, 1)
        indent = code_part[: len(code_part) - len(code_part.lstrip())]
        return f"{indent}# TODO: {hint.strip()}"
    if MARKER not in line:
        return line
    code_part, hint = line.split(MARKER, 1)
    indent = code_part[: len(code_part) - len(code_part.lstrip())]
    statement = code_part.strip()
    hint = hint.strip()
    try:
        tree = ast.parse(statement)
    except SyntaxError:
        raise BadInputError(f"{where}: a solution line must be one complete statement: {statement!r}") from None
    if len(tree.body) != 1:
        raise BadInputError(f"{where}: a solution line must hold exactly one statement: {statement!r}")
    node = tree.body[0]
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = ast.get_source_segment(statement, node.targets[0])
        return f"{indent}{target} = # TODO: {hint}"
    return f"{indent}# TODO: {hint}"


def template_source(source: str, where: str) -> str:
    lines = source.split("\n")
    return "\n".join(template_line(line, f"{where}, line {n}") for n, line in enumerate(lines, 1))


def make_template(reference: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The template notebook for a reference notebook (pure: the input is not modified)."""
    nb = copy.deepcopy(reference)
    cells = []
    for index, cell in enumerate(nb.cells):
        if SOLUTION_ONLY_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        if cell.cell_type == "code":
            cell.source = template_source(cell.source, f"reference cell {index}")
            cell.outputs = []
            cell.execution_count = None
        cells.append(cell)
    nb.cells = cells
    return nb


def render(nb: nbformat.NotebookNode) -> str:
    """The exact bytes we commit: nbformat's canonical JSON plus a final newline."""
    text: str = nbformat.writes(nb)
    return text + "\n"


def write_template(reference: Path | None, out: Path | None, *, check_only: bool = False) -> int:
    """`grader template`: write (or, with check_only, compare) the template. Returns an exit code."""
    reference = reference or REFERENCE_NOTEBOOK
    out = out or TEMPLATE_NOTEBOOK
    expected = render(make_template(read_notebook(reference)))
    if check_only:
        current = out.read_text(encoding="utf-8") if out.exists() else ""
        if current == expected:
            print(f"{out} is in sync with {reference}")
            return 0
        diff = difflib.unified_diff(
            current.splitlines(), expected.splitlines(), str(out), "generated", lineterm="", n=1
        )
        sys.stdout.write("\n".join(list(diff)[:60]) + "\n")
        print(f"{out} is stale: run `grader template` and commit the result")
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(expected, encoding="utf-8")
    print(f"wrote {out} from {reference}")
    return 0
