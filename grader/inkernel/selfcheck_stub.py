"""`grader.selfcheck` as the grading kernel sees it: a check cell left in a notebook costs nothing.

The grading kernel gets a copy of grader/inkernel/ (grader/hosting/launch.py) and this file as the
copy's `grader/selfcheck.py`, so `from grader import selfcheck; display(selfcheck.check(CustomLSTM))`
in a submitted notebook shows one line at once: no probe runs twice, nothing can fail.
"""
from __future__ import annotations

_SKIPPED = {
    "zh": "自查已跳过：该 notebook 正在评分",
    "en": "self-check skipped: this notebook is being graded",
}


class Skipped:
    """What check() returns while grading: it shows as one line."""

    def __init__(self, lang: object) -> None:
        self.line = _SKIPPED.get(lang, "") if isinstance(lang, str) else ""
        self.line = self.line or _SKIPPED["zh"] + " / " + _SKIPPED["en"]
        self.passed, self.score, self.max_score, self.checks = False, 0.0, 0.0, []

    def __repr__(self) -> str:
        return self.line


def check(*_args: object, lang: object = None, **_kwargs: object) -> Skipped:
    return Skipped(lang)
