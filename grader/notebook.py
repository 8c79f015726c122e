"""Reading notebooks and finding things in them, without running anything.

The same static view serves three jobs: validating a submission before it
runs, pulling class definitions out of a notebook (the reference's, for the
equivalence tests; a student's, as the fallback when their kernel died), and
classifying cells for the loop/loader checks.

Student source is hostile input. Every parse of it in the grader goes through
`parse_source`, which never raises and is bounded in time (see "Bounded
parsing" below), and no regular expression here can backtrack: the IPython
line forms are recognised with plain string operations, linear in the line.

A little over 400 lines because the parse budget and every reader of a notebook's
code share one bounded parser: split up, each would need the same guards again.
"""
from __future__ import annotations

import ast
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from grader.errors import NotANotebookError

log = logging.getLogger(__name__)

# Notebooks larger than this are refused before parsing: no lab notebook comes close.
MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024


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
        nb: nbformat.NotebookNode = nbformat.reads(text, as_version=4)
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


# ---------------------------------------------------------------- IPython lines, in linear time
#
# The forms were once regular expressions such as `^(\s*)(?:[!%]|[\w\.\[\], ]+=\s*[!%])`:
# `\s*` and the space in the class after it can split a run of spaces in every way, so a
# line of 1,000,000 spaces took hours. What follows reads each line once, left to right.


def _split_indent(line: str) -> tuple[str, str]:
    """(leading whitespace, the rest)."""
    rest = line.lstrip()
    return line[: len(line) - len(rest)], rest


def _is_target_char(ch: str) -> bool:
    # The characters of an assignment target in `x = !cmd`, `a.b[0], c = %magic`: [\w.\[\], ]
    return ch.isalnum() or ch in "_.[], "


def _assigned_value(rest: str) -> str | None:
    """What follows `target =` when `rest` starts with a plain assignment target, else None.

    The target is everything before the first `=`; it must be non-empty and made of
    target characters only (so `f(a=!x)` has none).
    """
    equals = rest.find("=")
    if equals <= 0 or not all(_is_target_char(ch) for ch in rest[:equals]):
        return None
    return rest[equals + 1 :].lstrip()


def _leading_word(text: str, limit: int = 256) -> str:
    """The run of word characters (letters, digits, `_`) `text` starts with, cut at `limit`:
    it is only ever compared with short names."""
    end = 0
    while end < min(len(text), limit) and (text[end].isalnum() or text[end] == "_"):
        end += 1
    return text[:end]


def _ipython_indent(line: str) -> str | None:
    """The line's indentation when it is IPython-only (`!cmd`, `%magic`, `%%cellmagic`,
    `x = !cmd`, `x = %magic`), else None."""
    indent, rest = _split_indent(line)
    if rest[:1] in ("!", "%"):
        return indent
    value = _assigned_value(rest)
    return indent if value is not None and value[:1] in ("!", "%") else None


def python_source(source: str) -> str:
    """Turn a cell's IPython source into plain Python of the same line count.

    Shell escapes and magics become `pass` so `ast` can parse the rest of the cell.
    """
    lines = []
    for line in source.splitlines():
        indent = _ipython_indent(line)
        lines.append(line if indent is None else f"{indent}pass")
    return "\n".join(lines)


# ---------------------------------------------------------------- bounded parsing
#
# Why in this process and not in a resource-limited child: measured on CPython 3.11,
# the parser fails fast on every nesting attack (200 brackets: SyntaxError; 7,000 unary
# minus signs: MemoryError from its stack guard; a 1,000-deep AST: RecursionError), all
# in milliseconds, so a catch-all is enough for those. What is slow is size: some
# valid sources parse in quadratic time (an f-string with 200,000 `{1}` takes 18 s). So
# a cell over MAX_PARSE_CHARS is not parsed at all (the worst 64 KiB cell we know takes
# 0.3 s; real lab cells are under 10 KiB), and a ParseBudget bounds a whole notebook's
# analysis in characters and in wall time, checked between cells. That bounds every
# static analysis without a process per notebook: a child would cost about as much as
# the whole 0.3 s hardening budget of `grader check` just to start, and could not hand
# the AST back without pickling it, which recurses on deep trees.

MAX_PARSE_CHARS = 64 * 1024
# One static analysis (one walk over a notebook's cells) parses at most this much ...
MAX_ANALYSED_CHARS = 2 * 1024 * 1024
# ... and starts no new parse after this many seconds.
ANALYSIS_DEADLINE_S = 5.0

# Why a cell cannot be analysed (ParseOutcome.problem).
NOT_PYTHON = "not_python"        # SyntaxError, null bytes, lone surrogates: the kernel refuses it too
TOO_LARGE = "too_large"          # over MAX_PARSE_CHARS
TOO_COMPLEX = "too_complex"      # the parser ran out of stack or recursion depth, or of memory
OUT_OF_BUDGET = "out_of_budget"  # the notebook's analysis budget (characters or time) was spent
FAILED = "failed"                # anything else the parser raised


@dataclass(frozen=True)
class ParseOutcome:
    """A cell's AST, or why it cannot be analysed: a value, never an exception."""

    tree: ast.Module | None
    problem: str | None = None

    @property
    def kernel_may_run_it(self) -> bool:
        """The grader could not analyse the cell, yet the kernel may well run it (it was only
        too big for static analysis, or the budget was spent), so its code must not be ignored.

        Not so for NOT_PYTHON and TOO_COMPLEX: the kernel compiles with the same parser and
        fails the same way, so such a cell defines nothing there either. Taking its class
        anyway would let a later broken definition stand in, for the static checks, for the
        earlier one the kernel actually holds.
        """
        return self.tree is None and self.problem not in (NOT_PYTHON, TOO_COMPLEX)


@dataclass
class ParseBudget:
    """What one static analysis of a notebook may still spend: characters parsed, and time."""

    chars_left: int = MAX_ANALYSED_CHARS
    deadline: float = field(default_factory=lambda: time.monotonic() + ANALYSIS_DEADLINE_S)

    def spend(self, chars: int) -> bool:
        """Take `chars` from the budget; False (taking nothing) when it cannot pay for them."""
        if chars > self.chars_left or time.monotonic() > self.deadline:
            return False
        self.chars_left -= chars
        return True


def parse_source(source: object, budget: ParseBudget | None = None) -> ParseOutcome:
    """The AST of a cell's (IPython) source, or why it cannot be analysed. Never raises."""
    if not isinstance(source, str):
        return ParseOutcome(None, FAILED)
    if len(source) > MAX_PARSE_CHARS:
        return ParseOutcome(None, TOO_LARGE)
    if budget is not None and not budget.spend(len(source)):
        return ParseOutcome(None, OUT_OF_BUDGET)
    try:
        return ParseOutcome(ast.parse(python_source(source)))
    except (SyntaxError, ValueError):  # ValueError: null bytes; UnicodeError: lone surrogates
        return ParseOutcome(None, NOT_PYTHON)
    except (MemoryError, RecursionError, OverflowError):
        return ParseOutcome(None, TOO_COMPLEX)
    except Exception:  # "could not be analysed" either way; the traceback tells a bug of ours from odd input
        log.debug("a cell's source could not be parsed", exc_info=True)
        return ParseOutcome(None, FAILED)


def parse_cell(source: str, budget: ParseBudget | None = None) -> ast.Module | None:
    """The cell's AST, or None when it cannot be analysed (an unfilled `x = # TODO`, say)."""
    return parse_source(source, budget).tree


def find_class_sources(nb: nbformat.NotebookNode, names: list[str]) -> dict[str, str]:
    """Source of the last top-level definition of each named class.

    Students often redefine a class further down; the last definition is the
    one their kernel would hold. Cells that are not Python are skipped (the
    kernel cannot run them either). A cell the grader could not analyse but the
    kernel may run (too large, too slow to parse) gives its class cut out by
    indentation instead: ignoring it would let a student hide code from the
    static checks (no_builtin) by padding its cell.
    """
    found: dict[str, str] = {}
    budget = ParseBudget()
    for cell in code_cells(nb):
        outcome = parse_source(cell.source, budget)
        if outcome.tree is not None:
            found.update(_classes_in_tree(python_source(cell.source), outcome.tree, names))
        elif outcome.kernel_may_run_it:
            found.update(_classes_by_indentation(cell.source, names))
    return found


def _classes_in_tree(text: str, tree: ast.Module, names: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name in names:
            segment = ast.get_source_segment(text, node)
            if segment is not None:
                found[node.name] = _with_decorators(text, node, segment)
    return found


def class_header_name(line: str) -> str | None:
    """`Name` when the line is a top-level `class Name...` statement."""
    if not line.startswith("class") or not line[5:6].isspace():
        return None
    return _leading_word(line[5:].lstrip()) or None


def _classes_by_indentation(source: str, names: list[str]) -> dict[str, str]:
    """The last `class Name` block of each named class, cut by indentation alone (no parsing)."""
    found: dict[str, str] = {}
    lines = source.splitlines()
    for start, line in enumerate(lines):
        name = class_header_name(line)
        if name in names:
            found[name] = "\n".join(lines[start : class_block_end(lines, start)])
    return found


def class_block_end(lines: list[str], start: int) -> int:
    """One past the last line of the block that begins at `lines[start]`: blank, indented
    and comment lines belong to it."""
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end][:1] in (" ", "\t", "#")):
        end += 1
    return end


def _with_decorators(text: str, node: ast.ClassDef, segment: str) -> str:
    if not node.decorator_list:
        return segment
    lines = text.splitlines()
    start = min(d.lineno for d in node.decorator_list) - 1
    return "\n".join(lines[start : node.end_lineno])


def find_top_level_imports(nb: nbformat.NotebookNode) -> list[str]:
    """Every top-level import statement of every parseable code cell, in order."""
    imports: list[str] = []
    budget = ParseBudget()
    for cell in code_cells(nb):
        tree = parse_cell(cell.source, budget)
        if tree is None:
            continue
        text = python_source(cell.source)
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                segment = ast.get_source_segment(text, node)
                if segment:
                    imports.append(segment)
    return imports


# Shell escapes the grader's kernel skips. Line forms: `!cmd`, `!!cmd`, `x = !cmd`,
# `%pip ...` and friends; cell forms: a first line `%%bash`, `%%sh`, `%%script ...`.
_SHELL_LINE_MAGICS = frozenset({"pip", "conda", "mamba", "micromamba", "uv", "system", "sx", "sc"})
_SHELL_CELL_MAGICS = frozenset({"bash", "sh", "zsh", "script", "system", "sx", "perl", "ruby",
                                "python", "python2", "python3", "pypy"})
_ESCAPE_COMMAND_CHARS = 500


def _starts_shell_command(text: str) -> bool:
    """`!cmd`, or a line magic that runs a shell or a package manager."""
    if text.startswith("!"):
        return True
    return text.startswith("%") and _leading_word(text[1:]) in _SHELL_LINE_MAGICS


def is_shell_line(line: str) -> bool:
    """`!cmd`, `x = !cmd`, `%pip ...` (indented or not)."""
    rest = _split_indent(line)[1]
    if _starts_shell_command(rest):
        return True
    value = _assigned_value(rest)
    return value is not None and _starts_shell_command(value)


def is_shell_cell_magic(line: str) -> bool:
    """A first line `%%bash`, `%%script ...` and friends."""
    rest = _split_indent(line)[1]
    return rest.startswith("%%") and _leading_word(rest[2:]) in _SHELL_CELL_MAGICS


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
        if is_shell_cell_magic(first):
            body = cell.source.strip()
            found.append(ShellEscape(cell.index, body[:_ESCAPE_COMMAND_CHARS]))
            continue
        for line in lines:
            if is_shell_line(line):
                found.append(ShellEscape(cell.index, line.strip()[:_ESCAPE_COMMAND_CHARS]))
    return found


_WORKERS_KEY = "num_workers"
_MAX_WORKER_VALUES = 20


def find_loader_workers(nb: nbformat.NotebookNode) -> list[int]:
    """The literal `num_workers=N` values (N > 0) in the code cells, at most 20; the kernel runs them as 0.

    A plain scan of the text (linear: str.find, then digits), so a report can say what the notebook asked for.
    """
    found: list[int] = []
    for cell in nb.cells:
        if cell.get("cell_type") != "code" or not isinstance(cell.get("source"), str):
            continue
        source = cell.source
        at = source.find(_WORKERS_KEY)
        while at >= 0 and len(found) < _MAX_WORKER_VALUES:
            value = _int_after_equals(source, at + len(_WORKERS_KEY))
            if value:
                found.append(value)
            at = source.find(_WORKERS_KEY, at + len(_WORKERS_KEY))
    return found


def _int_after_equals(source: str, at: int) -> int | None:
    end = min(len(source), at + 40)  # `num_workers = 6`: a few spaces at most; never a long walk
    i = at
    while i < end and source[i] in " \t":
        i += 1
    if i >= end or source[i] != "=" or source[i + 1:i + 2] == "=":
        return None
    i += 1
    while i < end and source[i] in " \t":
        i += 1
    digits = ""
    while i < end and source[i].isdigit() and len(digits) < 6:
        digits += source[i]
        i += 1
    return int(digits) if digits else None

