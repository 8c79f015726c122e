"""A flagged similarity pair for a human to judge: the two students' classes side by side, matching lines marked.

The pass (grader/similarity.py) stored, per class, the score and the line ranges the
shared fingerprints came from, as (cell, first line, last line) within each notebook;
the batch stored the flagged submissions' classes with their cell and first line
(grader/batch/class_sources.py). Here the two meet: a class line is marked when its
line in its cell falls in one of the pass's ranges for that cell. Everything is the
students' text, escaped by the template; nothing here builds markup.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grader.plain_numbers import finite_float

MAX_LINES = 2000  # per class shown; a longer class is cut with a note (the pass itself caps what it reads)


@dataclass(frozen=True)
class Line:
    number: int   # within its cell, 1-based, as the pass's ranges count
    text: str
    hit: bool


@dataclass(frozen=True)
class Side:
    """One student's class: its lines (empty when its source was not kept) and where it sits."""

    submission_id: str
    cell: int | None
    lines: tuple[Line, ...]
    cut: bool


@dataclass(frozen=True)
class ClassPair:
    name: str
    score: float
    shared: int
    a: Side
    b: Side


def find_pair(pairs: Sequence[dict[str, Any]], a: str, b: str) -> dict[str, Any] | None:
    """The stored pair of these two ids, in either order."""
    for pair in pairs:
        if isinstance(pair, dict) and {pair.get("a"), pair.get("b")} == {a, b} and a != b:
            return pair
    return None


def class_pairs(pair: dict[str, Any], sources: dict[str, list[dict[str, Any]]]) -> list[ClassPair]:
    """One ClassPair per class the pass matched, from the stored pair and the stored sources by id."""
    a, b = str(pair.get("a")), str(pair.get("b"))
    views = []
    matches = pair.get("matches")
    for match in matches if isinstance(matches, list) else []:
        if not isinstance(match, dict):
            continue
        name = str(match.get("name") or "")
        shared = match.get("shared")
        views.append(ClassPair(
            name=name, score=finite_float(match.get("score")) or 0.0,
            shared=shared if isinstance(shared, int) and not isinstance(shared, bool) else 0,
            a=_side(a, name, sources.get(a, []), match.get("a_lines")),
            b=_side(b, name, sources.get(b, []), match.get("b_lines"))))
    return views


def _side(sid: str, name: str, classes: list[dict[str, Any]], ranges: Any) -> Side:
    source = next((c for c in classes if c.get("name") == name), None)
    if source is None or not isinstance(source.get("text"), str):
        return Side(sid, None, (), False)
    cell, first = _int(source.get("cell")), _int(source.get("line")) or 1
    spans = _ranges(ranges, cell)
    lines = source["text"].splitlines()
    shown = tuple(Line(first + i, text, any(s <= first + i <= e for s, e in spans))
                  for i, text in enumerate(lines[:MAX_LINES]))
    return Side(sid, cell, shown, len(lines) > MAX_LINES)


def _ranges(ranges: Any, cell: int | None) -> list[tuple[int, int]]:
    """The (first, last) line ranges of the pass that fall in `cell`."""
    spans = []
    for item in ranges if isinstance(ranges, list) else []:
        if isinstance(item, dict) and _int(item.get("cell")) == cell:
            start, end = _int(item.get("start")), _int(item.get("end"))
            if start is not None and end is not None:
                spans.append((start, end))
    return spans


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
