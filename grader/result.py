"""The verdict of one check, as the checks produce it (before scoring)."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from grader.messages import Msg


class Status(str, Enum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"      # the check could not judge (the student's code crashed on our input, say)
    SKIPPED = "skipped"  # the subject is missing (class undefined, cell never filled in)


@dataclass
class CheckResult:
    """One check's outcome.

    `message` says what was found; `diagnosis` names the likely bug when a known
    mistake matched; `details` holds the numbers behind a failure (shapes,
    largest absolute error, which parameter) for reports.
    """

    id: str
    status: Status
    message: Msg | None = None
    diagnosis: Msg | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status is Status.PASSED
