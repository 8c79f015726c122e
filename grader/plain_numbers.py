"""Numbers that came from a notebook or a stored result: a plain finite float, or nothing.

JSON from a kernel or a hand-edited results file can hold booleans, strings, nan, inf or an integer of 400 digits
(which float() turns into an OverflowError); every reader that needs a number asks here.
"""
from __future__ import annotations

import math
import numbers
from typing import Any


def finite_float(value: Any) -> float | None:
    """`value` as a float when it is a finite real number (never a bool: True would count as 1); else None."""
    if type(value) is float:  # the common case, checked first: a chart's million points come through here
        return value if math.isfinite(value) else None
    if type(value) is not int and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
        return None
    try:
        number = float(value)
    except (OverflowError, TypeError, ValueError):  # an int past the float range
        return None
    return number if math.isfinite(number) else None
