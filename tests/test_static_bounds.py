"""Static analysis of student code is bounded (issue #12 part 4).

Every parse of student source goes through grader.notebook.parse_source: any failure is a
value ("this cell cannot be analysed"), never an exception, and a cell's size and a
notebook's budget bound the time. The IPython-line and shell-escape scans are plain string
operations, linear in the line: the regular expressions they replace were quadratic.

Fixtures are named by the outcome they expect. Time bounds are generous hang guards
(a quadratic scan of 1 MB takes hours), not benchmarks.
"""
from __future__ import annotations

import ast
import re
import time

import nbformat
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from grader import notebook
from grader.checks.builtin import scan_source
from grader.checks.loops import CellRun, _mentions_loop_over, check_loaders, check_loops
from grader.notebook import (
    MAX_PARSE_CHARS,
    NOT_PYTHON,
    OUT_OF_BUDGET,
    TOO_COMPLEX,
    TOO_LARGE,
    ParseBudget,
    class_header_name,
    find_class_sources,
    find_shell_escapes,
    find_top_level_imports,
    is_shell_cell_magic,
    is_shell_line,
    parse_source,
    python_source,
    read_notebook,
)
from grader.paths import REFERENCE_NOTEBOOK

HANG_GUARD_S = 5.0
MEGABYTE = 1_000_000

# name (the outcome expected) -> source
UNANALYSABLE = {
    "too_complex_7000_minus_signs": ("x = " + "-" * 7000 + "1", TOO_COMPLEX),
    "too_complex_7000_not": ("x = " + "not " * 7000 + "1", TOO_COMPLEX),
    "too_complex_deep_attribute_chain": ("x = a" + ".b" * 20_000, TOO_COMPLEX),
    "too_large_200000_open_parens": ("(" * 200_000, TOO_LARGE),
    "too_large_200000_open_brackets": ("[" * 200_000, TOO_LARGE),
    "too_large_1000000_spaces_line": ("x = 1\n" + " " * MEGABYTE + "\ny = 2", TOO_LARGE),
    "not_python_60000_open_parens": ("(" * 60_000, NOT_PYTHON),
    "not_python_60000_open_brackets": ("x = " + "[" * 60_000, NOT_PYTHON),
    "not_python_null_bytes": ("x = 1\x00\ny = 2", NOT_PYTHON),
    "not_python_lone_surrogate": ("x = '\ud800'", NOT_PYTHON),
    "not_python_unfilled_gap": ("x = # TODO", NOT_PYTHON),
}


@pytest.mark.parametrize("name", sorted(UNANALYSABLE))
def test_hostile_source_is_a_verdict_not_an_exception(name: str) -> None:
    source, problem = UNANALYSABLE[name]
    began = time.monotonic()
    outcome = parse_source(source)
    assert time.monotonic() - began < HANG_GUARD_S
    assert outcome.tree is None and outcome.problem == problem


def test_spaces_under_the_size_cap_parse() -> None:
    outcome = parse_source("x = 1\n" + " " * (MAX_PARSE_CHARS - 20) + "\ny = 2")
    assert outcome.tree is not None and outcome.problem is None


def test_the_slowest_valid_source_under_the_cap_is_still_fast() -> None:
    # f-strings parse in quadratic time on CPython 3.11: the cap is what bounds this one.
    source = "x = f'" + "{1}" * ((MAX_PARSE_CHARS - 10) // 3) + "'"
    began = time.monotonic()
    assert parse_source(source).tree is not None
    assert time.monotonic() - began < HANG_GUARD_S


@pytest.mark.parametrize("error, problem", [(MemoryError(), TOO_COMPLEX), (RecursionError(), TOO_COMPLEX),
                                            (OverflowError(), TOO_COMPLEX), (KeyError("x"), "failed"),
                                            (SyntaxError("x"), NOT_PYTHON), (ValueError("x"), NOT_PYTHON)])
def test_whatever_the_parser_raises_is_a_problem_code(monkeypatch, error: Exception, problem: str) -> None:
    def explode(*_args, **_kwargs):
        raise error

    monkeypatch.setattr(notebook.ast, "parse", explode)
    assert parse_source("x = 1") == notebook.ParseOutcome(None, problem)


def test_not_a_string_is_not_analysable() -> None:
    assert parse_source(None).problem == "failed"  # type: ignore[arg-type]


def test_a_spent_budget_refuses_further_cells() -> None:
    budget = ParseBudget(chars_left=10)
    assert parse_source("x = 1", budget).tree is not None
    assert parse_source("y = 22", budget).problem == OUT_OF_BUDGET  # 6 > the 5 left
    expired = ParseBudget(deadline=time.monotonic() - 1)
    assert parse_source("x = 1", expired).problem == OUT_OF_BUDGET


def test_unparsable_cells_do_not_stop_the_notebooks_analysis() -> None:
    nb = read_notebook(REFERENCE_NOTEBOOK)
    hostile = [source for source, _ in UNANALYSABLE.values()]
    nb.cells[0:0] = [nbformat.v4.new_code_cell(s) for s in hostile]
    sources = find_class_sources(nb, ["CustomRNN", "CustomLSTM"])
    assert set(sources) == {"CustomRNN", "CustomLSTM"}
    assert "import torch" in "\n".join(find_top_level_imports(nb))
    runs = {c.index: CellRun("ok") for c in notebook.code_cells(nb)}
    assert check_loaders(nb, runs).status.value == "passed"
    assert [r.status.value for r in check_loops(nb, runs)] == ["passed", "passed"]


def test_a_class_in_a_cell_too_large_to_parse_is_cut_out_and_still_scanned() -> None:
    """Padding a class past the parse cap must not hide a built-in LSTM from no_builtin."""
    padding = "\n".join(f"    # padding {i}" for i in range(MAX_PARSE_CHARS // 10))
    cell = ("class CustomLSTM(nn.Module):\n    def forward(self, x):\n        return torch._VF.lstm(x)\n"
            + padding + "\n\nprint('after')")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])
    assert parse_source(cell).problem == TOO_LARGE
    source = find_class_sources(nb, ["CustomLSTM"])["CustomLSTM"]
    assert source.startswith("class CustomLSTM") and "print('after')" not in source
    assert "_VF" in scan_source(source)


def test_a_class_in_a_cell_that_is_not_python_is_skipped_as_the_kernel_would() -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("class CustomLSTM:\n    x = # TODO")])
    assert find_class_sources(nb, ["CustomLSTM"]) == {}


# ---------------------------------------------------------------- linear time

ONE_MEGABYTE_LINES = {
    "spaces": " " * MEGABYTE,
    "bangs": "!" * MEGABYTE,
    "percents": "%" * MEGABYTE,
    "word_then_equals": "x" * MEGABYTE + "=",
    "spaces_then_equals": "x" + " " * MEGABYTE + "= 1",
    "target_chars": "a.[], " * (MEGABYTE // 6) + "== 1",
    "assignment_then_spaces": "x =" + " " * MEGABYTE + "1",
    "magic_word": "%" + "p" * MEGABYTE,
    "cell_magic_word": "%%" + "b" * MEGABYTE,
    "class_then_spaces": "class" + " " * MEGABYTE + "X",
    "for_words": "for " * (MEGABYTE // 4) + "train_loade",
    "lstm_then_spaces": "LSTM" * 1000 + " " * MEGABYTE,
}


@pytest.mark.parametrize("name", sorted(ONE_MEGABYTE_LINES))
def test_every_scan_of_a_one_megabyte_line_finishes_fast(name: str) -> None:
    line = ONE_MEGABYTE_LINES[name]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(line)])
    began = time.monotonic()
    python_source(line)
    find_shell_escapes(nb)
    class_header_name(line)
    _mentions_loop_over(line, "train_loader")
    scan_source(line)
    find_class_sources(nb, ["CustomLSTM"])
    assert time.monotonic() - began < HANG_GUARD_S


# The regular expressions the string operations replaced: the reference behaviour on short lines.
OLD_IPY_LINE = re.compile(r"^(\s*)(?:[!%]|[\w\.\[\], ]+=\s*[!%])")
OLD_SHELL_LINE = re.compile(r"^\s*(?:[\w\.\[\], ]+=\s*)?(?:!|%(?:pip|conda|mamba|micromamba|uv|system|sx|sc)\b)")
OLD_SHELL_CELL = re.compile(r"^\s*%%(?:bash|sh|zsh|script|system|sx|perl|ruby|python[23]?|pypy)\b")
OLD_CLASS_LINE = re.compile(r"^class\s+(\w+)\b")

_PIECES = st.sampled_from([" ", "\t", "!", "%", "%%", "=", "==", "x", "_", "1", ".", "[", "]", ",", "(", ")",
                           "é", "\u3000", "pip", "pipx", "bash", "python3", "sx", "class", "Custom", "#", "'"])
SHORT_LINES = st.lists(_PIECES, max_size=12).map("".join)


@settings(max_examples=400, deadline=None)
@given(SHORT_LINES)
def test_string_scans_agree_with_the_old_patterns(line: str) -> None:
    # The old patterns took a target of spaces alone (" = !x" was a shell line); the scans need a real target.
    # Such a line is not Python either way, so that quirk is not kept (found by hypothesis).
    assume(not line.lstrip().startswith("="))
    old = OLD_IPY_LINE.match(line)
    assert python_source(line) == (f"{old.group(1)}pass" if old else line)
    assert is_shell_line(line) == bool(OLD_SHELL_LINE.match(line))
    assert is_shell_cell_magic(line) == bool(OLD_SHELL_CELL.match(line))
    old_class = OLD_CLASS_LINE.match(line)
    assert class_header_name(line) == (old_class.group(1) if old_class else None)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([" ", "for", "in", "train_loader", "x", "_", "\n", "fortrain_loader", "(", ":"]),
                max_size=12).map("".join))
def test_loop_prefilter_agrees_with_the_old_pattern(source: str) -> None:
    assert _mentions_loop_over(source, "train_loader") == bool(
        re.search(r"\bfor\b[^\n]*\btrain_loader\b", source))


def test_parse_source_parses_what_ast_parses() -> None:
    source = "import torch\n!pip install x\nfiles = !ls\nclass A:\n    %time y = 1\n"
    assert ast.dump(parse_source(source).tree) == ast.dump(ast.parse(python_source(source)))


def test_a_later_definition_the_parser_refuses_does_not_stand_in_for_the_one_the_kernel_holds() -> None:
    """The kernel compiles with the same parser: a class in a too-complex cell is never defined there."""
    held = "class CustomLSTM(nn.Module):\n    def forward(self, x):\n        return torch._VF.lstm(x)\n"
    refused = "class CustomLSTM(nn.Module):\n    junk = " + "-" * 7000 + "1\n"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(held), nbformat.v4.new_code_cell(refused)])
    assert parse_source(refused).problem == TOO_COMPLEX
    assert find_class_sources(nb, ["CustomLSTM"])["CustomLSTM"] == held.rstrip("\n")
    assert "torch._VF" in scan_source(find_class_sources(nb, ["CustomLSTM"])["CustomLSTM"])
