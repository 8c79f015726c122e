"""Reading notebooks and finding things in them, without running anything.

The same static view serves three jobs: validating a submission before it
runs, pulling class definitions out of a notebook (the reference's, for the
equivalence tests; a student's, as the fallback when their kernel died), and
classifying cells for the loop/loader checks.
"""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from grader.errors import NotANotebookError

# Notebooks larger than this are refused before parsing: no lab notebook comes close.
MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024

# IPython-only lines: `!cmd`, `%magic`, `%%cellmagic`, `x = !cmd`, `x = %magic`.
_IPY_LINE = re.compile(r"^(\s*)(?:[!%]|[\w\.\[\], ]+=\s*[!%])")


@dataclass(frozen=True)
class CodeCell:
    """One code cell: its position among all cells and its source."""

    index: int
    source: str


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """Read and validate a notebook, or raise NotANotebookError with one clear line."""
    path = Path(path)
    if not path.is_file():
        raise NotANotebookError(f"{path}: no such file")
    size = path.stat().st_size
    if size == 0:
        raise NotANotebookError(f"{path}: the file is empty, not a notebook")
    if size > MAX_NOTEBOOK_BYTES:
        raise NotANotebookError(f"{path}: {size / 2**20:.0f} MiB is too large for a lab notebook")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotANotebookError(f"{path}: not UTF-8 text (byte {exc.start}), not a notebook") from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise NotANotebookError(f"{path}: JSON nested too deeply to be a notebook") from None
    except json.JSONDecodeError as exc:
        raise NotANotebookError(
            f"{path}: not a notebook (invalid JSON at line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(data, dict) or "cells" not in data or "nbformat" not in data:
        raise NotANotebookError(f"{path}: JSON, but not a Jupyter notebook (no 'cells'/'nbformat')")
    try:
        # reads() also joins list-of-lines sources and upgrades old nbformat versions
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # nbformat raises several unrelated types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NotANotebookError(f"{path}: not a valid notebook: {first[:200]}") from None
    return nb


def code_cells(nb: nbformat.NotebookNode) -> list[CodeCell]:
    """The notebook's code cells, keeping their index among all cells."""
    return [
        CodeCell(index=i, source=cell.source)
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
    ]


def python_source(source: str) -> str:
    """Turn a cell's IPython source into plain Python of the same line count.

    Shell escapes and magics become `pass` so `ast` can parse the rest of the cell.
    """
    lines = []
    for line in source.splitlines():
        match = _IPY_LINE.match(line)
        lines.append(f"{match.group(1)}pass" if match else line)
    return "\n".join(lines)


def parse_cell(source: str) -> ast.Module | None:
    """The cell's AST, or None when it does not parse (an unfilled `x = # TODO`, say)."""
    try:
        return ast.parse(python_source(source))
    except (SyntaxError, ValueError, RecursionError):
        return None


def find_class_sources(nb: nbformat.NotebookNode, names: list[str]) -> dict[str, str]:
    """Source of the last top-level definition of each named class.

    Students often redefine a class further down; the last definition is the
    one their kernel would hold. Cells that do not parse are skipped.
    """
    found: dict[str, str] = {}
    for cell in code_cells(nb):
        text = python_source(cell.source)
        tree = parse_cell(cell.source)
        if tree is None:
            continue
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name in names:
                segment = ast.get_source_segment(text, node)
                if segment is not None:
                    found[node.name] = _with_decorators(text, node, segment)
    return found


def _with_decorators(text: str, node: ast.ClassDef, segment: str) -> str:
    if not node.decorator_list:
        return segment
    lines = text.splitlines()
    start = min(d.lineno for d in node.decorator_list) - 1
    return "\n".join(lines[start : node.end_lineno])


def find_top_level_imports(nb: nbformat.NotebookNode) -> list[str]:
    """Every top-level import statement of every parseable code cell, in order."""
    imports: list[str] = []
    for cell in code_cells(nb):
        text = python_source(cell.source)
        tree = parse_cell(cell.source)
        if tree is None:
            continue
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                segment = ast.get_source_segment(text, node)
                if segment:
                    imports.append(segment)
    return imports


# Shell escapes the grader's kernel skips. Line forms: `!cmd`, `!!cmd`, `x = !cmd`,
# `%pip ...` and friends; cell forms: a first line `%%bash`, `%%sh`, `%%script ...`.
_SHELL_LINE = re.compile(
    r"^\s*(?:[\w\.\[\], ]+=\s*)?(?:!|%(?:pip|conda|mamba|micromamba|uv|system|sx|sc)\b)"
)
_SHELL_CELL = re.compile(
    r"^\s*%%(?:bash|sh|zsh|script|system|sx|perl|ruby|python[23]?|pypy)\b"
)
_ESCAPE_COMMAND_CHARS = 500


@dataclass(frozen=True)
class ShellEscape:
    """A shell command or shell magic in a code cell, which the grader does not run."""

    cell_index: int
    command: str


def find_shell_escapes(nb: nbformat.NotebookNode) -> list[ShellEscape]:
    """Every shell escape in the notebook's code cells, found statically.

    The report lists these as skipped; reading them from the source rather than
    from the kernel means nothing the student's code prints can change the list.
    """
    found: list[ShellEscape] = []
    for cell in code_cells(nb):
        lines = cell.source.splitlines()
        first = next((line for line in lines if line.strip()), "")
        if _SHELL_CELL.match(first):
            body = cell.source.strip()
            found.append(ShellEscape(cell.index, body[:_ESCAPE_COMMAND_CHARS]))
            continue
        for line in lines:
            if _SHELL_LINE.match(line):
                found.append(ShellEscape(cell.index, line.strip()[:_ESCAPE_COMMAND_CHARS]))
    return found
