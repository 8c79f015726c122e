"""The files `grader check` writes for one submission, each behind its own option.

`--html`, `--junit`, `--gradescope` and `--json` each name a file; all of them
are rendered from the same result dict the terminal shows, so they agree.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from grader.report.results import StoredResult, dumps
from grader.safe_text import json_safe


@dataclass(frozen=True)
class SingleExports:
    html: Path | None = None
    junit: Path | None = None
    gradescope: Path | None = None
    json: Path | None = None


def write_single_exports(result: StoredResult, exports: SingleExports, lang: str) -> list[Path]:
    """Write every requested file; the paths written, in option order."""
    written: list[Path] = []
    if exports.html is not None:
        from grader.report.html import write_submission_html

        written.append(write_submission_html(result, _ready(exports.html), lang))
    if exports.junit is not None:
        from grader.report.junit import junit_xml

        _ready(exports.junit).write_text(junit_xml([result], lang), encoding="utf-8")
        written.append(exports.junit)
    if exports.gradescope is not None:
        from grader.report.gradescope import gradescope_json

        _ready(exports.gradescope).write_text(
            json_safe(json.dumps(gradescope_json(result, lang), ensure_ascii=False, indent=2)) + "\n", encoding="utf-8")
        written.append(exports.gradescope)
    if exports.json is not None:
        _ready(exports.json).write_text(dumps(result) + "\n", encoding="utf-8")
        written.append(exports.json)
    return written


def _ready(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
