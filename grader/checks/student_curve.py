"""The student's own loss curve: the notebook's `losses` list, read after it ran.

Display only: it goes into the HTML report next to the grader's curve and is
never scored. The kernel is untrusted, so the answer is treated like any
other probe answer: stdout parsed as JSON, size-capped, and only a list of
numbers is accepted; anything else means "no curve". An entry that is not a
finite number (a loss that diverged to nan or inf) is kept as None (JSON null,
so the stored result stays strict JSON): the report's chart leaves it out and
says how many it left out.
"""
from __future__ import annotations

import json
from typing import Any

from grader.harvest import KernelRunner
from grader.report.chart_scale import as_finite

VARIABLE = "losses"          # the lab's name for the per-epoch loss list
MAX_POINTS = 2000
MAX_STDOUT_CHARS = 200_000
_TIMEOUT_S = 10.0
_CODE = f"""
def __grader_curve():
    import json as _json
    values = globals().get({VARIABLE!r})
    if not isinstance(values, (list, tuple)):
        return None
    return [float(v) for v in list(values)[:{MAX_POINTS}]]
try:
    print(__import__('json').dumps({{"curve": __grader_curve()}}))
except Exception:
    print('{{"curve": null}}')
del __grader_curve
"""


def harvest_student_curve(runner: KernelRunner) -> dict[str, Any] | None:
    """{"variable", "losses"} from the kernel, or None when there is no usable curve."""
    result = runner.run_code(_CODE, timeout_s=_TIMEOUT_S)
    if not result.ok or len(result.stdout) > MAX_STDOUT_CHARS:
        return None
    return parse_curve(result.stdout)


def parse_curve(stdout: str) -> dict[str, Any] | None:
    lines = [line for line in stdout.strip().splitlines() if line.strip()]
    if not lines:
        return None
    try:
        data = json.loads(lines[-1])
    except (ValueError, RecursionError):  # RecursionError: a line of "[[[[..." printed by the notebook
        return None
    values = data.get("curve") if isinstance(data, dict) else None
    if not isinstance(values, list) or not values or len(values) > MAX_POINTS:
        return None
    if not all(_is_number(v) for v in values):
        return None
    # as_finite, not float(): an integer beyond the float range raises OverflowError there.
    return {"variable": VARIABLE, "losses": [as_finite(v) for v in values]}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
