"""The per-submission HTML report: one self-contained page from one stored result.

The page is built from a stored result dict (schema 1), never from live pipeline
objects, so `grader report` can re-render it in either language. Much of a result
is student-controlled text (cell source, tracebacks, error values, messages that
quote student code, file names), so everything goes through jinja2's autoescape;
the only markup built in Python is the SVG charts of `svg_plot`, which escape
their own text. Every printed value also passes `html_safe` (the environment's
finalize), which makes bidi overrides and isolates visible. The page loads nothing and runs no script (a CSP meta tag
enforces that in browsers as a second line of defence).

Longer than most modules because it turns every part of a stored result (checks,
details, charts, cells, the run) into the one page's view model; the page itself
is the templates, the drawing is svg_plot and chart_scale.
"""
from __future__ import annotations

import copy
import json
import logging
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from grader.messages import catalogue, text
from grader.report import chart_scale, svg_plot
from grader.report.results import (
    StoredCheck,
    StoredResult,
    as_dict,
    localise,
    override_note,
    self_check_notice,
    self_check_of,
    title,
    validate_result,
)
from grader.report.templating import environment

STATUSES = ("passed", "failed", "error", "skipped")
# Cell states map onto the shared badge colours of base.html.j2.
CELL_BADGE = {"ok": "passed", "error": "failed", "timeout": "error", "not_run": "skipped"}
TRACEBACK_LINES = 40
MAX_VALUE_CHARS = 2000
# Per-name lists in model-check details; each marks a parameter or output as wrong in one way.
STATE_LISTS = ("missing", "not_registered", "wrong_shape", "requires_grad_false", "wrong", "no_grad", "unused")
# Per-name mappings, merged with the lists above into one comparison table.
PER_NAME_KEYS = ("shapes", "shape_expected", "shape_found", "max_abs_error", "grad_status")
# Shown elsewhere on the page (diagnosis text, the training charts).
SKIPPED_DETAIL_KEYS = ("diagnosis", "curve")
PERCENT_KEYS = ("threshold", "best_accuracy")
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
log = logging.getLogger(__name__)



@dataclass(frozen=True)
class Translate:
    """The catalogue's texts in one language under one prefix, for the templates: `html.*` (the report's
    labels) by default, `serve.*` for grader serve's pages."""

    lang: str
    prefix: str = "html"

    def __call__(self, key: str, **params: Any) -> str:
        return text(f"{self.prefix}.{key}", self.lang, **params)

    def label(self, key: str, fallback: str) -> str:
        """The label for `key`, or `fallback` for values a newer grader may produce."""
        return catalogue(self.lang).get(f"{self.prefix}.{key}", fallback)

def render_submission_html(result: StoredResult, lang: str) -> str:
    """The report page for one stored result, in `lang` ("zh" or "en")."""
    return environment().get_template("submission.html.j2").render(**submission_context(result, lang))


def submission_context(result: StoredResult, lang: str) -> dict[str, Any]:
    """What submission.html.j2 renders: also the context of `grader serve`'s student page, which extends it."""
    source = str(result.get("file") or "result") if isinstance(result, dict) else "result"
    checked = validate_result(copy.deepcopy(result), source, lang)
    return _page_context(localise(checked, lang), lang)


def write_submission_html(result: StoredResult, path: Path, lang: str) -> Path:
    """Render and write the page (parent folders created); returns the path written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_submission_html(result, lang), encoding="utf-8")
    return path


def _page_context(data: StoredResult, lang: str) -> dict[str, Any]:
    t = Translate(lang)
    checks = [_check_view(c, t) for c in data["checks"] if isinstance(c, dict)]
    counts = {s: sum(1 for c in checks if c["status"] == s) for s in STATUSES}
    outcome = str(data.get("outcome") or "graded")
    lab_title = title(data, lang)
    submission = str(data.get("submission_id") or "")
    self_check = _self_check_view(data, lang)
    return {
        "lang": lang,
        "html_lang": "zh-CN" if lang == "zh" else "en",
        "t": t,
        "page_title": t("page_title", submission=submission, title=lab_title),
        "lab_title": lab_title,
        "submission_id": submission,
        "file": str(data.get("file") or ""),
        "student": " · ".join(str(data.get(k) or "") for k in ("student_name", "section") if data.get(k)),
        "score": _score_view(data, t),
        "counts": counts,
        "self_check": self_check,
        "heading": t("report_heading_self_check") if self_check else t("report_heading"),
        "score_label": t("score_self_check") if self_check else t("score"),
        "counts_key": "summary_counts_self_check" if self_check else "summary_counts",
        "graded": outcome == "graded",
        "outcome_label": t.label(f"outcome.{outcome}", outcome),
        "error": _plain(data.get("error")),
        "kernel_died": bool(data.get("kernel_died")),
        "fallback_kernel": bool(data.get("fallback_kernel")),
        "checks": checks,
        "training": _training_view(data["checks"], t),
        "student_curve": _student_curve_view(data.get("student_curve"), t, _cap_text(data, "epoch_cap"),
                                             _cap_text(data, "batch_cap")),
        "cells": _cells_view(data.get("cells"), t),
        "shell_escapes": _shell_view(data.get("shell_escapes")),
        "run_rows": _run_rows(data, t),
        "receipt": _receipt_rows(data, t),
        "version": str(data.get("grader_version") or ""),
    }


def _receipt_rows(data: StoredResult, t: Translate) -> list[tuple[str, str]]:
    """A released report's receipt (grader/release.py) as label/value rows; [] for a TA's report."""
    receipt = data.get("receipt")
    if not isinstance(receipt, dict):
        return []
    rows = [(t(f"receipt_{key}"), _plain(receipt.get(key)))
            for key in ("notebook_sha256", "graded_at", "grader_version", "rubric_sha256", "device", "released_at")]
    hidden = receipt.get("not_shown_points")
    if _is_number(hidden) and hidden > 0:
        rows.append((t("receipt_not_shown_points"), _fmt_points(hidden)))
    return rows


def _plain(value: Any) -> str:
    return "" if value is None else str(value)


def _self_check_view(data: StoredResult, lang: str) -> dict[str, str] | None:
    """The banner of a self-check result (next to the score); None for a fully graded one."""
    if self_check_of(data) is None:
        return None
    return {"title": text("report.self_check_title", lang), "notice": self_check_notice(data, lang)}


# ---------------------------------------------------------------- numbers


def _fmt_num(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return "0" if value == 0 else f"{value:.4g}"
    return str(value)


def _fmt_points(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _fmt_percent(value: Any) -> str:
    # as_finite, not math.isfinite: an int beyond the float range (a tampered result) raises in isfinite.
    number = chart_scale.as_finite(value)
    if number is not None:
        return f"{number * 100:.1f}%".replace(".0%", "%")
    return _plain(value)


def _fmt_shape(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_fmt_num(v) for v in value) + ")"
    return "—" if value is None else str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _score_view(data: StoredResult, t: Translate) -> dict[str, Any]:
    score, max_score = data.get("score"), data.get("max_score")
    percent = score / max_score * 100 if _is_number(score) and _is_number(max_score) and max_score > 0 else 0.0
    percent = min(100.0, max(0.0, percent)) if math.isfinite(percent) else 0.0
    return {
        "text": t("score_of", score=_fmt_points(score), max_score=_fmt_points(max_score)),
        "percent": t("percent", percent=f"{percent:.0f}"),
        "bar": f"{percent:.1f}",
        "level": "passed" if percent >= 85 else ("error" if percent >= 60 else "failed"),
        "adjusted": _adjusted_total(data, t.lang),
    }


def _adjusted_total(data: StoredResult, lang: str) -> str:
    """Beside an overridden total: what the grader gave, how many checks a TA changed, and a review flag."""
    grader_score, count = data.get("grader_score"), data.get("overridden")
    if not isinstance(grader_score, (int, float)) or not isinstance(count, int) or isinstance(count, bool):
        return ""
    note = text("override.total_note", lang, grader_score=float(grader_score), count=count)
    return note + (" " + text("override.needs_review", lang) if data.get("needs_review") is True else "")


# ---------------------------------------------------------------- checks


def _check_view(check: StoredCheck, t: Translate) -> dict[str, Any]:
    status = str(check.get("status"))
    details = as_dict(check.get("details"))
    return {
        "id": str(check.get("id")),
        "status": status if status in STATUSES else "error",
        "status_label": t.label(f"status.{status}", status),
        "points": f"{_fmt_points(check.get('score'))}/{_fmt_points(check.get('max_score'))}",
        "message": _plain(check.get("message")),
        # A passed check needs no advice; a hint beside it would read as a complaint.
        "hint": _plain(check.get("hint")) if status != "passed" else "",
        "diagnosis": _plain(check.get("diagnosis")),
        "hidden": check.get("visibility") == "hidden",
        "override": _override_view(check, t),
        "blocks": _detail_blocks(details, t),
        "open": status != "passed",
    }


def _override_view(check: StoredCheck, t: Translate) -> dict[str, str] | None:
    """A TA's override beside the grader's verdict: a badge by the points, the note under the message."""
    note = override_note(check, t.lang)
    if not note:
        return None
    return {"badge": text("override.adjusted", t.lang), "text": note}


def _detail_blocks(details: dict[str, Any], t: Translate) -> list[dict[str, Any]]:
    """The numbers behind a verdict as small tables: a per-name comparison, then key/value rows."""
    blocks = []
    comparison = _comparison_table(details, t)
    if comparison:
        blocks.append(comparison)
    handled = set(PER_NAME_KEYS) | set(STATE_LISTS) | set(SKIPPED_DETAIL_KEYS)
    kv_rows: list[dict[str, Any]] = []
    for key, value in details.items():
        if key in handled:
            continue
        label = t.label(f"detail.{key}", key)
        if _is_record_table(value):
            blocks.append(_record_table(label, value))
        elif value == [] or value == {} or value is None:
            continue  # an empty list of problems says nothing the status does not
        else:
            kv_rows.append({"cells": [label, _fmt_detail(key, value, t)], "bad": False})
    if kv_rows:
        kv = {"kind": "kv", "title": "", "headers": [], "rows": kv_rows, "numeric": []}
        blocks.insert(1 if comparison else 0, kv)
    return blocks


def _comparison_table(details: dict[str, Any], t: Translate) -> dict[str, Any] | None:
    """One row per parameter or output the model checks named: shapes, error, and what is wrong with it."""
    names = _named_in(details)
    if not names:
        return None
    expected, found = _shapes(details)
    errors = as_dict(details.get("max_abs_error"))
    grad_status = as_dict(details.get("grad_status"))
    show_shapes = bool(expected or found)
    headers = [t("col.name")]
    if show_shapes:
        headers += [t("col.expected_shape"), t("col.found_shape")]
    if errors:
        headers.append(t("col.max_abs_error"))
    headers.append(t("col.state"))
    rows = []
    for name in names:
        states = _states(name, details, expected, found, grad_status)
        cells = [name]
        if show_shapes:
            cells += [_fmt_shape(expected.get(name)), _fmt_shape(found.get(name))]
        if errors:
            cells.append(_fmt_num(errors[name]) if name in errors else "—")
        cells.append(", ".join(t.label(f"state.{s}", s) for s in states) or t("state.ok"))
        rows.append({"cells": cells, "bad": bool(states)})
    return {"kind": "data", "title": "", "headers": headers, "rows": rows,
            "numeric": [i for i, h in enumerate(headers) if h == t("col.max_abs_error")]}


def _named_in(details: dict[str, Any]) -> list[str]:
    """The names the per-name details mention, in order of first mention."""
    names: list[str] = []
    for key in PER_NAME_KEYS:
        names += [n for n in as_dict(details.get(key)) if isinstance(n, str)]
    for key in STATE_LISTS:
        value = details.get(key)
        names += [n for n in (value if isinstance(value, list) else []) if isinstance(n, str)]
    return list(dict.fromkeys(names))


def _shapes(details: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(expected, found) shape per name, from `shapes` and the older shape_expected/shape_found keys."""
    shapes = {n: v for n, v in as_dict(details.get("shapes")).items() if isinstance(v, dict)}
    expected = {n: v.get("expected") for n, v in shapes.items()} | as_dict(details.get("shape_expected"))
    found = {n: v.get("found") for n, v in shapes.items()} | as_dict(details.get("shape_found"))
    return expected, found


def _states(name: str, details: dict[str, Any], expected: dict[str, Any], found: dict[str, Any],
            grad_status: dict[str, Any]) -> list[str]:
    """What is wrong with one name: the state lists that hold it, a shape mismatch, its gradient's status."""
    states = [key for key in STATE_LISTS if isinstance(details.get(key), list) and name in details[key]]
    if name in expected and name in found and expected[name] != found[name] and "wrong_shape" not in states:
        states.append("shape_mismatch")
    status = grad_status.get(name)
    if isinstance(status, str) and status != "ok" and status not in states:
        states.append(status)
    return states


def _is_record_table(value: Any) -> bool:
    """A mapping of names to flat mappings (init stats, say): one row per name reads best."""
    return (isinstance(value, dict) and bool(value)
            and all(isinstance(v, dict) and v and all(not isinstance(x, (dict, list)) for x in v.values())
                    for v in value.values()))


def _record_table(label: str, value: dict[str, dict[str, Any]]) -> dict[str, Any]:
    columns: list[str] = []
    for row in value.values():
        for key in row:
            if key not in columns:
                columns.append(key)
    rows = [{"cells": [str(name)] + [_fmt_num(row[c]) if c in row else "—" for c in columns], "bad": False}
            for name, row in value.items()]
    return {"kind": "data", "title": label, "headers": ["", *columns], "rows": rows,
            "numeric": list(range(1, len(columns) + 1))}


def _fmt_detail(key: str, value: Any, t: Translate) -> str:
    if key == "tolerance" and isinstance(value, dict):
        parts = [f"{k}={_fmt_num(value[k])}" for k in ("atol", "rtol") if k in value]
        dtype = f" ({value['dtype']})" if "dtype" in value else ""
        return ", ".join(parts) + dtype
    if key in PERCENT_KEYS and _is_number(value) and 0 <= value <= 1:
        return _fmt_percent(value)
    if key.endswith("_s") and _is_number(value):
        return t("seconds", value=_fmt_num(value))
    if key.endswith("cells") and isinstance(value, list):
        return ", ".join(_fmt_num(v) for v in value)
    return _fmt_value(value, t)


def _fmt_value(value: Any, t: Translate) -> str:
    """Any JSON value as one short line (unknown keys from newer graders land here)."""
    if isinstance(value, bool):
        return t("yes") if value else t("no")
    if value is None:
        return t("none")
    if _is_number(value):
        return _fmt_num(value)
    if isinstance(value, str):
        return _clip(value)
    if isinstance(value, list):
        if value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return _fmt_shape(value)
        if all(isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) for v in value):
            return _clip(", ".join(f"{v[0]} {_fmt_value(v[1], t)}" for v in value))
        return _clip(", ".join(_fmt_value(v, t) for v in value))
    if isinstance(value, dict):
        return _clip(", ".join(f"{k}={_fmt_value(v, t)}" for k, v in value.items()))
    return _clip(json.dumps(value, ensure_ascii=False, default=str))


def _clip(value: str) -> str:
    return value if len(value) <= MAX_VALUE_CHARS else value[:MAX_VALUE_CHARS] + " …"


# ---------------------------------------------------------------- charts


def _training_view(checks: list[Any], t: Translate) -> dict[str, Any] | None:
    """lstm.train's curve as two charts (grader/report/results.py TrainingDetails; read as untrusted JSON)."""
    check = next((c for c in checks if isinstance(c, dict) and c.get("id") == "lstm.train"), None)
    details = as_dict(check.get("details")) if check else {}
    raw_curve = details.get("curve")
    curve = [p for p in raw_curve if isinstance(p, dict)] if isinstance(raw_curve, list) else []
    if not curve:
        return None
    threshold = details.get("threshold")
    losses = [(p.get("epoch"), p.get("loss")) for p in curve]
    accuracies = [(p.get("epoch"), p.get("accuracy")) for p in curve]
    threshold_value = chart_scale.as_finite(threshold)
    hlines = []
    if threshold_value is not None:
        hlines.append(svg_plot.HLine(threshold_value, t("chart_threshold", threshold=_fmt_percent(threshold))))
    loss_chart = _chart_view(svg_plot.Chart(
        title=t("chart_loss_title"), x_label=t("axis_epoch"), y_label=t("axis_loss"),
        series=[svg_plot.Series(t("axis_loss"), [])]), losses, t)
    accuracy_chart = _chart_view(svg_plot.Chart(
        title=t("chart_accuracy_title"), x_label=t("axis_epoch"), y_label=t("axis_accuracy"),
        series=[svg_plot.Series(t("axis_accuracy"), [], svg_plot.PALETTE[2])],
        hlines=hlines, y_range=(0.0, 1.0), y_format=lambda v: f"{v * 100:.0f}%"), accuracies, t)
    protocol = details.get("protocol")
    return {
        "charts": [loss_chart, accuracy_chart],
        "points": len(curve),
        "summary": t("training_summary", epochs=_fmt_num(details.get("epochs", len(curve))),
                     best=_fmt_percent(details.get("best_accuracy")), threshold=_fmt_percent(threshold)),
        "protocol": t("training_protocol", protocol=_fmt_value(protocol, t)) if isinstance(protocol, dict) else "",
    }


def _chart_view(chart: svg_plot.Chart, raw: object, t: Translate) -> dict[str, Any]:
    """{"svg", "note"} for one single-series chart: the SVG (None when nothing is drawable) and what to tell.

    `chart` names the series (its points empty); `raw` are its points as the notebook (or a stored result)
    gave them, so any value may be nan, infinite or no number at all: those are left out and counted, and a
    series without one drawable value gets the note instead of an empty frame.
    """
    total = len(raw) if isinstance(raw, (list, tuple)) else 0
    clean = chart_scale.clean_points(raw)
    if not clean.points:
        return {"svg": None, "note": t("chart_omitted", count=total)}
    series = [svg_plot.Series(s.label, clean.points, s.colour) for s in chart.series[:1]]
    svg = _draw(replace(chart, series=series))
    if svg is None:
        return {"svg": None, "note": t("chart_failed")}
    notes = []
    if clean.dropped:
        notes.append(t("chart_dropped", count=clean.dropped, total=total))
    if len(clean.points) > chart_scale.MAX_PLOTTED:
        notes.append(t("chart_thinned", count=len(clean.points), limit=chart_scale.MAX_PLOTTED))
    return {"svg": svg, "note": " ".join(notes)}


def _draw(chart: svg_plot.Chart) -> Any:
    """The chart's SVG, or None if drawing failed.

    line_chart is total by construction (and fuzzed), so this is only the last
    line of defence: a chart is decoration, and a bug in it must cost the
    student a picture, never the whole report.
    """
    try:
        return svg_plot.line_chart(chart)
    except Exception:
        log.exception("chart %r could not be drawn", chart.title)
        return None


def _student_curve_view(curve: Any, t: Translate, epochs: str, batches: str) -> dict[str, Any] | None:
    if not isinstance(curve, dict) or not isinstance(curve.get("losses"), list) or not curve["losses"]:
        return None
    variable = _clip(str(curve.get("variable") or "losses"))[:80]
    view = _chart_view(svg_plot.Chart(
        title=t("chart_student_title", variable=variable), x_label=t("axis_epoch"), y_label=t("axis_loss"),
        series=[svg_plot.Series(variable, [], svg_plot.PALETTE[1])]),
        [(i + 1, v) for i, v in enumerate(curve["losses"])], t)
    return {"chart": view["svg"], "chart_note": view["note"],
            "note": t("student_curve_note_batches" if batches != "—" else "student_curve_note",
                      variable=variable, count=len(curve["losses"]), epochs=epochs, batches=batches)}


# ---------------------------------------------------------------- cells and run


def _cells_view(cells: Any, t: Translate) -> dict[str, Any]:
    rows, failures = [], []
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, dict):
            continue
        status = str(cell.get("status"))
        # Users count cells from 1, as every message of the grader does.
        number = cell["index"] + 1 if _is_number(cell.get("index")) else "?"
        error = ": ".join(p for p in (_plain(cell.get("error_name")), _first_line(cell.get("error_value"))) if p)
        row = {
            "number": number, "status": status, "badge": CELL_BADGE.get(status, "error"),
            "label": t.label(f"cell_status.{status}", status),
            "duration": t("seconds", value=f"{cell['duration_s']:.2f}") if _is_number(cell.get("duration_s")) else "—",
        }
        rows.append(row)
        if status != "ok":
            failures.append({
                "number": number, "heading": t("cell_failure_heading", number=number, error=error or row["label"]),
                "message": _plain(cell.get("message")), "source": _plain(cell.get("source")),
                "traceback": _short_traceback(cell.get("traceback"), t),
                "truncated": bool(cell.get("output_truncated")),
            })
    ok = sum(1 for r in rows if r["status"] == "ok")
    return {"rows": rows, "failures": failures, "summary": t("cells_summary", ok=ok, total=len(rows))}


def _first_line(value: Any) -> str:
    lines = _plain(value).strip().splitlines()
    return lines[0] if lines else ""


def _short_traceback(value: Any, t: Translate) -> str:
    """The traceback's last lines, where the error is; ANSI colours stripped."""
    lines = ANSI_ESCAPE.sub("", _plain(value)).rstrip().splitlines()
    if len(lines) <= TRACEBACK_LINES:
        return "\n".join(lines)
    dropped = len(lines) - TRACEBACK_LINES
    return "\n".join([t("traceback_shortened", count=dropped), *lines[-TRACEBACK_LINES:]])


def _shell_view(escapes: Any) -> list[dict[str, str]]:
    return [{"cell": _plain(e.get("cell")), "command": _plain(e.get("command"))}
            for e in escapes if isinstance(e, dict)] if isinstance(escapes, list) else []


PROTECTION_LAYERS = ("filesystem", "network", "user_namespace", "pid_namespace", "process_limit", "rlimits",
                     "scrubbed_env", "output_cap")


def _protections_text(protections: dict[str, Any], t: Translate) -> str:
    """Which layers kept the student's code in, and which were missing and why."""
    active = [t(f"protection_{name}") for name in PROTECTION_LAYERS if protections.get(name) is True]
    missing = [t(f"protection_{name}") for name in PROTECTION_LAYERS if protections.get(name) is False]
    text = "; ".join(active) or t("none")
    if missing:
        text += " — " + t("protections_missing", layers="; ".join(missing),
                          reason=_plain(protections.get("unavailable")) or t("none"))
    return text


def _caps_text(data: StoredResult, t: Translate) -> str:
    epochs, batches = _cap_text(data, "epoch_cap"), _cap_text(data, "batch_cap")
    key = "execution_caps_value" if batches == "—" else "execution_caps_value_batches"
    return t(key, epochs=epochs, batches=batches, workers=0)


def _cap_text(data: StoredResult, key: str) -> str:
    cap = data.get(key)
    return str(cap) if isinstance(cap, int) and not isinstance(cap, bool) and 0 < cap < 10**6 else "—"


def _run_rows(data: StoredResult, t: Translate) -> list[tuple[str, str]]:
    note = _plain(data.get("device_note"))
    rows = [(t("device"), (_plain(data.get("device")) or t("none")) + (f" — {note}" if note else "")),
            (t("npu_remapped"), t("yes") if data.get("npu_remapped") else t("no")),
            (t("execution_caps"), _caps_text(data, t))]
    if data.get("kernel_died"):
        rows.append((t("kernel_died_label"), t("yes")))
    self_check = self_check_of(data)
    if self_check is not None:
        reference = self_check["reference"]
        rows.append((t("reference"), t.label(f"reference_{reference}", reference)))
    protections = data.get("protections")
    if isinstance(protections, dict):
        rows.append((t("protections"), _protections_text(protections, t)))
    if _is_number(data.get("duration_s")):
        rows.append((t("duration"), t("seconds", value=f"{data['duration_s']:.1f}")))
    timings = data.get("timings") if isinstance(data.get("timings"), dict) else {}
    for key, value in timings.items():
        if _is_number(value):
            rows.append((t.label(f"timing_{key}", key), t("seconds", value=f"{value:.2f}")))
    if data.get("grader_version"):
        rows.append((t("grader_version"), _plain(data["grader_version"])))
    if data.get("rubric_sha256"):
        rows.append((t("rubric"), _plain(data["rubric_sha256"])[:16]))
    return rows

