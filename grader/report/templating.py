"""The one jinja2 environment every HTML page of the grader renders with (reports, summary, self-check).

Every value printed is student-derived somewhere (an id, a file name, an exception's message), so:
autoescape on for every template (select_autoescape would not match the ".html.j2" names), `html_safe`
as finalize (autoescape leaves bidi overrides, which reorder what a reader sees), StrictUndefined (a
misspelt variable is a bug, not an empty cell).
"""
from __future__ import annotations

import functools

import jinja2

from grader.safe_text import html_safe


@functools.cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("grader.report", "templates"),
        autoescape=True,
        finalize=html_safe,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
