"""Helpers shared by the model checks: tolerances, comparisons, result builders."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.harvest import KERNEL_DIED, TIMED_OUT, ProbeReply
from grader.messages import Msg
from grader.result import CheckResult, Status


@dataclass(frozen=True)
class Tolerance:
    """|student - reference| <= atol + rtol * |reference|, elementwise."""

    atol: float
    rtol: float
    dtype: str

    def as_dict(self) -> dict[str, Any]:
        return {"atol": self.atol, "rtol": self.rtol, "dtype": self.dtype}

    def text(self) -> str:
        return f"atol={self.atol:g}, rtol={self.rtol:g} ({self.dtype})"


# float64 end to end: errors are ~1e-14; the slack covers summation order only.
TOL_FLOAT64 = Tolerance(atol=1e-8, rtol=1e-6, dtype="float64")
# float32 somewhere (a hard-coded dtype in the student's code): errors ~1e-6 on
# logits of order 1 and gradients of order 10; mistakes differ by >1e-2.
TOL_FLOAT32 = Tolerance(atol=1e-4, rtol=1e-3, dtype="float32")


def max_abs_error(a: np.ndarray, b: np.ndarray) -> float | None:
    """Largest |a - b|, inf for non-finite mismatch, None when shapes differ."""
    if a.shape != b.shape:
        return None
    if a.size == 0:
        return 0.0
    diff = np.abs(a - b)
    diff[~np.isfinite(diff)] = np.inf
    return float(diff.max())


def close(found: np.ndarray, expected: np.ndarray, tol: Tolerance) -> bool:
    if found.shape != expected.shape:
        return False
    if not np.all(np.isfinite(found)):
        return False
    return bool(np.all(np.abs(found - expected) <= tol.atol + tol.rtol * np.abs(expected)))


def result(check_id: str, status: Status, key: str | None = None, diagnosis: Msg | None = None,
           details: dict[str, Any] | None = None, **params: Any) -> CheckResult:
    return CheckResult(
        id=check_id,
        status=status,
        message=Msg(f"checks.{key}", params) if key else None,
        diagnosis=diagnosis,
        details=details or {},
    )


def transport_key(reply: ProbeReply) -> str:
    """The message key (under checks.) for a probe call that got no usable reply."""
    keys: dict[str, str] = {KERNEL_DIED: "kernel.died", TIMED_OUT: "kernel.timeout"}
    return keys.get(reply.failure or "", "kernel.no_result")


def names(items: list[str] | tuple[str, ...]) -> str:
    """A language-neutral list for message placeholders."""
    return ", ".join(items) if items else "-"
