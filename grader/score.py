"""Scoring: check results + rubric -> points. Pure: no I/O, no student code.

A check earns its rubric points only when it passed; anything else earns 0.
A check id that produced no result at all is recorded as SKIPPED with a
reason, so a result is never silently lost.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grader.messages import Msg
from grader.result import CheckResult, Status
from grader.rubric import Rubric


@dataclass(frozen=True)
class ScoredCheck:
    id: str
    status: Status
    score: float
    max_score: float
    visibility: str
    message: Msg | None
    diagnosis: Msg | None
    details: dict[str, Any] = field(default_factory=dict)


def score_results(results: list[CheckResult], rubric: Rubric, *, include_hidden: bool = True) -> list[ScoredCheck]:
    """One ScoredCheck per rubric check, in rubric order; without the hidden ones for a self-check."""
    by_id: dict[str, CheckResult] = {}
    for result in results:
        by_id.setdefault(result.id, result)  # the first verdict for an id wins; later ones are duplicates
    scored = []
    for check_id, spec in rubric.checks.items():
        if spec.visibility == "hidden" and not include_hidden:
            continue
        result = by_id.get(check_id) or CheckResult(check_id, Status.SKIPPED, Msg("report.not_graded"))
        unmet = unmet_requirements(spec.requires, by_id)
        if unmet and result.status is Status.PASSED:
            result = CheckResult(check_id, Status.SKIPPED, requirement_message(unmet), details=result.details)
        points = spec.points if result.status is Status.PASSED else 0.0
        scored.append(ScoredCheck(
            id=check_id, status=result.status, score=points, max_score=spec.points,
            visibility=spec.visibility, message=result.message, diagnosis=result.diagnosis,
            details=result.details,
        ))
    return scored


def unmet_requirements(requires: tuple[str, ...], by_id: dict[str, CheckResult]) -> list[str]:
    """The required checks that did not pass (no result counts as not passed)."""
    return [r for r in requires if r not in by_id or by_id[r].status is not Status.PASSED]


def requirement_message(unmet: list[str]) -> Msg:
    return Msg("report.requires_unmet", {"checks": ", ".join(unmet)})


def total(scored: list[ScoredCheck]) -> tuple[float, float]:
    return sum(c.score for c in scored), sum(c.max_score for c in scored)
