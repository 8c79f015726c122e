"""One submission never costs the class its similarity comparison (issue #12 parts 4 and 8).

A submission whose code cannot be analysed, is too large, or takes too long is left out with
a note (grader.similarity.LeftOut) and every other submission is compared as usual. Fixtures
are named by the outcome they expect.
"""
from __future__ import annotations

import time

import nbformat
import pytest

from grader import similarity
from grader.messages import LANGUAGES, render
from grader.paths import REFERENCE_NOTEBOOK, TEMPLATE_NOTEBOOK
from grader.similarity import (
    DEADLINE,
    FAILED,
    MAX_CLASS_CHARS,
    MAX_TOKENS,
    NOT_A_NOTEBOOK,
    TOO_LARGE,
    compare,
    find_similar,
    similarity_for_files,
)

HANG_GUARD_S = 5.0


@pytest.fixture(scope="module")
def reference() -> nbformat.NotebookNode:
    return nbformat.read(REFERENCE_NOTEBOOK, as_version=4)


@pytest.fixture(scope="module")
def template() -> nbformat.NotebookNode:
    return nbformat.read(TEMPLATE_NOTEBOOK, as_version=4)


def _with_cells(nb: nbformat.NotebookNode, *sources: str) -> nbformat.NotebookNode:
    out = nbformat.from_dict(nb)
    out.cells = [nbformat.v4.new_code_cell(s) for s in sources] + list(out.cells)
    return out


def _lstm_cell(nb: nbformat.NotebookNode) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.source.startswith("class CustomLSTM"))


def still_compared_minus_signs_and_spaces(reference):
    """The reference with the issue's two attack cells: the classes themselves are fine."""
    return _with_cells(reference, "x = " + "-" * 7000 + "1", "y = 1\n" + " " * 1_000_000 + "\nz = 2")


def still_compared_class_that_does_not_parse(reference):
    """A CustomLSTM whose body the parser refuses (7,000 minus signs): cut out by indentation."""
    nb = nbformat.from_dict(reference)
    cell = nb.cells[_lstm_cell(nb)]
    cell.source = cell.source.replace("\n    def forward", "\n    junk = " + "-" * 7000 + "1\n    def forward", 1)
    return nb


def left_out_too_large_class(reference):
    """A CustomLSTM padded past MAX_CLASS_CHARS with code (not comments)."""
    nb = nbformat.from_dict(reference)
    cell = nb.cells[_lstm_cell(nb)]
    padding = "".join(f"    pad_{i} = {i}\n" for i in range(MAX_CLASS_CHARS // 12))
    cell.source = cell.source.replace("\n    def forward", "\n" + padding + "    def forward", 1)
    return nb


def left_out_too_many_tokens(reference):
    nb = nbformat.from_dict(reference)
    cell = nb.cells[_lstm_cell(nb)]
    dense = "    t = (" + "1," * (MAX_TOKENS // 2 + 10) + ")\n"
    assert len(dense) < MAX_CLASS_CHARS
    cell.source = cell.source.replace("\n    def forward", "\n" + dense + "    def forward", 1)
    return nb


def test_the_attack_cells_beside_normal_submissions_change_nothing(reference, template):
    subs = {"s1": reference, "s2": reference, "hostile": still_compared_minus_signs_and_spaces(reference)}
    began = time.monotonic()
    report = compare(subs, template)
    assert time.monotonic() - began < 3 * HANG_GUARD_S
    assert report.left_out == []
    assert {frozenset((p.a, p.b)) for p in report.pairs} == {
        frozenset(("s1", "s2")), frozenset(("s1", "hostile")), frozenset(("s2", "hostile"))}


def test_a_class_the_parser_refuses_is_still_compared(reference, template):
    report = compare({"s1": reference, "odd": still_compared_class_that_does_not_parse(reference)}, template)
    assert report.left_out == []
    assert [(p.a, p.b) for p in report.pairs] == [("odd", "s1")]


@pytest.mark.parametrize("make", [left_out_too_large_class, left_out_too_many_tokens])
def test_an_oversized_class_is_left_out_and_the_others_are_compared(reference, template, make):
    subs = {"s1": reference, "s2": reference, "big": make(reference)}
    began = time.monotonic()
    report = compare(subs, template)
    assert time.monotonic() - began < 3 * HANG_GUARD_S
    assert [(p.a, p.b) for p in report.pairs] == [("s1", "s2")]
    assert [(item.id, item.reason) for item in report.left_out] == [("big", TOO_LARGE)]


def test_a_submission_whose_analysis_raises_is_left_out(reference, template, monkeypatch):
    real = similarity.normalise

    def fragile(source, **kwargs):
        if "BOOM" in source:
            raise MemoryError
        return real(source, **kwargs)

    monkeypatch.setattr(similarity, "normalise", fragile)
    bad = nbformat.from_dict(reference)
    cell = bad.cells[_lstm_cell(bad)]
    cell.source = cell.source.replace("\n    def forward", "\n    BOOM = 1\n    def forward", 1)
    report = compare({"s1": reference, "s2": reference, "bad": bad}, template)
    assert [(p.a, p.b) for p in report.pairs] == [("s1", "s2")]
    assert [(item.id, item.reason) for item in report.left_out] == [("bad", FAILED)]
    assert "MemoryError" in render(report.left_out[0].note_msg, "en")
    assert find_similar({"s1": reference, "s2": reference, "bad": bad}, template) == report.pairs


def test_a_submission_past_its_deadline_is_left_out(reference, template):
    report = compare({"s1": reference, "s2": reference}, template, deadline_s=-1.0)
    assert report.pairs == []
    assert [(item.id, item.reason) for item in report.left_out] == [("s1", DEADLINE), ("s2", DEADLINE)]


def test_batch_files_note_what_was_left_out(tmp_path, reference):
    for name in ("s1", "s2"):
        (tmp_path / f"{name}.ipynb").write_bytes(REFERENCE_NOTEBOOK.read_bytes())
    (tmp_path / "junk.ipynb").write_text("not a notebook", encoding="utf-8")
    nbformat.write(left_out_too_large_class(reference), tmp_path / "big.ipynb")
    files = {p.stem: p for p in tmp_path.glob("*.ipynb")}
    done = similarity_for_files(files, lang="en")
    assert [(p["a"], p["b"]) for p in done.pairs] == [("s1", "s2")]
    assert [(d["id"], d["reason"]) for d in done.left_out] == [("big", TOO_LARGE), ("junk", NOT_A_NOTEBOOK)]
    for item in done.left_out:
        for lang in LANGUAGES:
            note = render(similarity.Msg.from_json(item["note_i18n"]), lang)
            assert note and "similarity.left_out" not in note
