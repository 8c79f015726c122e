"""A TA's overrides: a check's points set by hand for one student, with who, when, why, and on which notebook.

The ledger (OUT/grades.sqlite, table `override_events`) is append-only: setting and
clearing are events, and the override in force for a (student, check) is its last
`set` event unless a `clear` came after it. Overrides live beside the grader's
results, not in them, so a regrade never erases one: they are applied whenever
outputs are written (`apply_overrides`). An override made against another version
of the notebook than the one graded now is kept but flagged `needs_review`.

What an applied override changes in a stored result (grader/report/results.py):
the check's `score` is the TA's points, its `status`, message and details stay the
grader's own, and its `override` says what the grader gave, who changed it and why;
the result's `score` is the new total and its `grader_score` the grader's own total.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from grader.report.results import AppliedOverride, StoredResult

SET, CLEAR = "set", "clear"
MAX_REASON_CHARS = 2000
MAX_NAME_CHARS = 200


@dataclass(frozen=True)
class Override:
    """One event of the ledger."""

    submission_id: str
    check_id: str
    action: str              # SET or CLEAR
    points: float | None     # SET only
    reason: str
    by: str
    at: str                  # ISO 8601, UTC
    notebook_sha256: str     # the notebook graded when the TA decided


class OverrideError(ValueError):
    """An override that cannot be recorded; `key` and `params` name the message (grader/locale/*/override.toml)."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


def in_force(events: Iterable[Override]) -> dict[tuple[str, str], Override]:
    """The overrides in force, by (submission, check): the last event of each, when it is a `set`."""
    last: dict[tuple[str, str], Override] = {}
    for event in events:
        last[(event.submission_id, event.check_id)] = event
    return {key: event for key, event in last.items() if event.action == SET}


def validate_points(points: float, check_id: str, max_score: float) -> float:
    """The points, when they are a finite number within 0..max_score of the check."""
    if not math.isfinite(points) or points < 0 or points > max_score:
        raise OverrideError("override.points_out_of_range", check=check_id, points=points, max=max_score)
    return float(points)


def clean_text(value: str, limit: int) -> str:
    """A reason or a name as stored: one line, no control characters, bounded."""
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in value).split())
    return flat[:limit]


def apply_overrides(result: StoredResult, overrides: Sequence[Override], notebook_sha256: str) -> StoredResult:
    """A copy of `result` with the overrides for its checks applied (see the module docstring).

    `notebook_sha256`: the notebook graded now; an override made against another is flagged needs_review.
    An override for a check the result does not list (another rubric) is ignored.
    """
    if not overrides:
        return result
    adjusted = copy.deepcopy(result)
    by_check = {o.check_id: o for o in overrides if o.submission_id == result["submission_id"] and o.action == SET}
    applied = 0
    review = False
    for check in adjusted["checks"]:
        override = by_check.get(str(check["id"]))
        if override is None or override.points is None:
            continue
        needs_review = bool(override.notebook_sha256) and override.notebook_sha256 != notebook_sha256
        record: AppliedOverride = {
            "points": override.points, "grader_score": float(check["score"]), "reason": override.reason,
            "by": override.by, "at": override.at, "needs_review": needs_review,
        }
        check["override"] = record
        check["score"] = override.points
        applied += 1
        review = review or needs_review
    if applied:
        adjusted["grader_score"] = float(result["score"])
        adjusted["score"] = round(sum(float(c["score"]) for c in adjusted["checks"]), 6)
        adjusted["overridden"] = applied
        adjusted["needs_review"] = review
    return adjusted
