"""How a self-check result shows: a compact HTML table in Jupyter (the reports' colours), text in a terminal.

Every string here may quote the student's code (an exception's message): the HTML is autoescaped by
jinja2 like the reports, and the text goes through safe_line, so neither markup nor terminal escapes survive.
"""
from __future__ import annotations

from grader.messages import text
from grader.report.templating import environment
from grader.safe_text import safe_line
from grader.selfcheck import SelfCheckResult

MARKS = {"passed": "✓", "failed": "✗", "error": "!", "skipped": "-"}


def as_text(result: SelfCheckResult) -> str:
    lang = result.lang
    if result.error:
        return safe_line(text("selfcheck.title", lang, cls=result.class_name)) + "\n  " + safe_line(result.error)
    lines = [safe_line(text("selfcheck.title", lang, cls=result.class_name)),
             safe_line(text("selfcheck.where", lang, device=result.device, precision=result.precision or "-",
                            seconds=f"{result.duration_s:.1f}"))]
    width = max((len(c.id) for c in result.checks), default=0)
    for c in result.checks:
        lines.append(f"  {MARKS.get(c.status, '?')} {c.id.ljust(width)}  {c.score:g}/{c.max_score:g}  "
                     f"{safe_line(c.message)}")
        if c.diagnosis:
            lines.append("      " + safe_line(text("report.diagnosis", lang, text=c.diagnosis)))
        if c.hint:
            lines.append("      " + safe_line(text("report.hint", lang, text=c.hint)))
    lines.append(safe_line(text("selfcheck.score", lang, score=f"{result.score:g}", max_score=f"{result.max_score:g}")))
    lines.append(safe_line(result.notice))
    return "\n".join(lines)


def as_html(result: SelfCheckResult) -> str:
    lang = result.lang
    return environment().get_template("selfcheck.html.j2").render(
        r=result, title=text("selfcheck.title", lang, cls=result.class_name),
        where=text("selfcheck.where", lang, device=result.device, precision=result.precision or "-",
                   seconds=f"{result.duration_s:.1f}"),
        score=text("selfcheck.score", lang, score=f"{result.score:g}", max_score=f"{result.max_score:g}"),
        labels={s: text(f"report.{s}", lang) for s in MARKS},
        diagnosis=text("html.diagnosis", lang), hint=text("html.hint", lang))
