"""A TA's "reviewed, not a concern" mark on a flagged similarity pair, kept in the store beside the ledger.

Like the overrides (grader/overrides.py), marks are events that are only ever added
(`reviewed`, `reopened`), so who decided what and when stays on record; the mark in
force for a pair is its last event when that is `reviewed`. A pair is named by its two
ids in sorted order, so (a, b) and (b, a) are the same pair whichever way a pass listed them.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

REVIEWED, REOPENED = "reviewed", "reopened"
MAX_NOTE_CHARS = 2000


@dataclass(frozen=True)
class PairReview:
    """One event: a pair marked reviewed (not a concern), or the mark taken back."""

    a: str
    b: str
    action: str   # REVIEWED or REOPENED
    note: str
    by: str
    at: str       # ISO 8601, UTC


def pair_key(a: str, b: str) -> tuple[str, str]:
    """The pair's name whichever order its ids come in."""
    return (a, b) if a <= b else (b, a)


def reviewed_pairs(events: Iterable[PairReview]) -> dict[tuple[str, str], PairReview]:
    """The marks in force, by pair_key: each pair's last event, when it is REVIEWED."""
    last: dict[tuple[str, str], PairReview] = {}
    for event in events:
        last[pair_key(event.a, event.b)] = event
    return {key: event for key, event in last.items() if event.action == REVIEWED}
