"""Copies of the lab rubric with settings changed, for tests: every edit must land, or the test stops.

Edits by plain text replacement silently did nothing once the rubric's value changed; these fail instead.
"""
from __future__ import annotations

import re
from pathlib import Path

from grader.paths import DEFAULT_RUBRIC
from grader.rubric import load_rubric


def replaced_once(text: str, old: str, new: str) -> str:
    """`text` with its one occurrence of `old` replaced; AssertionError when there is none or several."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in the rubric"
    return text.replace(old, new)


def lab_rubric_with(path: Path, **settings: float | int) -> Path:
    """The lab rubric at `path`, with `key = value` of [limits] and [training] set; checked by loading it."""
    text = DEFAULT_RUBRIC.read_text(encoding="utf-8")
    for key, value in settings.items():
        text, count = re.subn(rf"^{re.escape(key)}\s*=\s*[^#\n]*?(\s*(#.*)?)$", f"{key} = {value!r}\\1", text,
                              flags=re.MULTILINE)
        assert count == 1, f"the rubric has {count} '{key} = ...' lines"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    loaded = load_rubric(path)
    for key, value in settings.items():
        section = loaded.limits if hasattr(loaded.limits, key) else loaded.training
        assert getattr(section, key) == value, (key, getattr(section, key), value)
    return path
