"""Where the model checks' expected answers come from.

Two sources answer the same questions (the reference's logits and gradients,
and those of each known mistake, on given weights and inputs):
- `live`: the reference equations in reference/functional.py, on fresh secret
  data drawn after the student's notebook ran. TA grading; needs the course's
  source checkout.
- `golden`: vectors computed once from the live reference by `grader golden`
  and packaged in the wheel (grader/golden/). Students' self-checks; the wheel
  carries numbers, never the equations.
"""
from __future__ import annotations

from grader.oracle.base import Oracle, OracleKind
from grader.oracle.probe_data import ProbeData

__all__ = ["Oracle", "OracleKind", "ProbeData", "load_oracle"]


def load_oracle(kind: OracleKind) -> Oracle:
    """The oracle of that kind; a BadInputError naming what is missing when it cannot load."""
    if kind == "live":
        from grader.oracle.live import LiveOracle

        return LiveOracle.load()
    from grader.oracle.golden import GoldenOracle

    return GoldenOracle.load()
