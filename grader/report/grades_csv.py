"""grades.csv: one row per submission, for a gradebook (LMS) import.

Layout (otter-grader's final_grades.csv idea: the first data row holds the
maximum points, so a reader needs no rubric to see what each column is out of):

    id,name,section,file,notebook.parses,...,lstm.train,total,percent,status,error,grader_total,adjusted
    POINTS_POSSIBLE,,,,0,4,...,14,100,100,,,100,
    alice,李华,1班,alice.ipynb,0,4,...,0,86,86,graded,,86,
    bob,,,bob.ipynb,0,0,...,0,0,0,bad_input,bob.ipynb: not a valid notebook,0,

Choices, and why:
- The header row is English/ASCII whatever the language, so an LMS import
  (Canvas, Moodle, Blackboard, a spreadsheet macro) maps the same columns every
  term. Only `error` carries prose, in the language it was graded in.
- The max row is always the first data row; its id is the ASCII token
  `POINTS_POSSIBLE` (Canvas calls that row "Points Possible") and its `status`
  and `error` cells are empty, the only row where `status` is. Readers should
  find it by position: a student could name a file POINTS_POSSIBLE.ipynb, and
  refusing that id would let one file break a whole batch's export.
- Per-check columns follow the rubric's stable order (`grader.rubric.CHECK_IDS`),
  always all of them, then any unknown id found in a result (sorted), so a
  column never moves between runs. A check a result lacks is an empty cell.
- `status` is the result's outcome (`graded`, `bad_input`, `crashed`,
  `timeout`). Ungraded submissions still get a row (0 points, `error` says why).
- A TA's override (grader/overrides.py) changes its check's cell and `total`;
  `grader_total` keeps the grader's own total beside it, and `adjusted` says
  which checks a TA changed, from what, by whom and why ("needs review" when
  the notebook changed after the override was made).
- Numbers are rounded to 4 decimals (percent to 2) and printed without
  trailing zeros: 12, 12.5, 33.33; never 12.0000001 or 1e-05.
- The file written by `write_grades_csv` is UTF-8 **with a BOM** and CRLF line
  ends (RFC 4180). Excel on a Chinese-locale Windows reads a BOM-less UTF-8 CSV
  as GBK and garbles every Chinese character; with the BOM it opens directly.
  pandas, Python's csv with `encoding="utf-8-sig"`, and the common LMS
  importers accept the BOM. `grades_csv()` returns the text without the BOM.
- `name` and `section` come from the roster (grader/roster.py), empty without
  one; a student on the roster who submitted nothing has a row (status `missing`).
- Text cells that a student controls (id, file, error) and that start with
  `=`, `+`, `-`, `@`, tab or CR are prefixed with `'`, so a spreadsheet shows
  them as text instead of running them as a formula (CSV injection).
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from grader.messages import LANGUAGES
from grader.report.results import StoredResult, override_note
from grader.rubric import CHECK_IDS

MAX_ROW_ID = "POINTS_POSSIBLE"
LEADING_COLUMNS = ("id", "name", "section", "file")
TRAILING_COLUMNS = ("total", "percent", "status", "error", "grader_total", "adjusted")
CSV_ENCODING = "utf-8-sig"
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def format_number(value: Any, decimals: int = 4) -> str:
    """A number as a spreadsheet should show it: rounded, no trailing zeros, no exponent."""
    if value is None or isinstance(value, bool):
        return ""
    try:
        number = round(float(value), decimals)
    except (TypeError, ValueError):
        return ""
    if number != number or number in (float("inf"), float("-inf")):
        return ""
    text = f"{number:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def percent_of(score: Any, max_score: Any) -> float:
    """score / max_score as a percentage; 0 when there is nothing to score."""
    try:
        score_f, max_f = float(score), float(max_score)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer beyond the float range
        return 0.0
    return 100.0 * score_f / max_f if max_f > 0 else 0.0


def safe_cell(value: Any) -> str:
    """Student-derived text as a CSV (or workbook) cell: one line, no control characters (an escape sequence
    would drive a terminal that shows the file; openpyxl refuses the whole workbook over one), never read
    as a spreadsheet formula."""
    text = "" if value is None else " ".join(str(value).split())
    text = "".join(ch if ch.isprintable() else "\ufffd" for ch in text)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def check_columns(results: Iterable[StoredResult]) -> list[str]:
    """The rubric's checks in their stable order, then any other id seen (sorted)."""
    seen = {str(c["id"]) for r in results for c in r["checks"]}
    return list(CHECK_IDS) + sorted(seen - set(CHECK_IDS))


def header(columns: Sequence[str]) -> list[str]:
    return [*LEADING_COLUMNS, *columns, *TRAILING_COLUMNS]


def max_row(results: Sequence[StoredResult], columns: Sequence[str]) -> list[str]:
    """Each check's maximum points: from the first result that has that check."""
    maxima: dict[str, Any] = {}
    for result in results:
        for check in result["checks"]:
            maxima.setdefault(str(check["id"]), check["max_score"])
    total = results[0]["max_score"] if results else sum(float(v) for v in maxima.values())
    cells = [format_number(maxima.get(c)) for c in columns]
    return [MAX_ROW_ID, "", "", "", *cells, format_number(total), "100", "", "", format_number(total), ""]


def submission_row(result: StoredResult, columns: Sequence[str]) -> list[str]:
    points = {str(c["id"]): c["score"] for c in result["checks"]}
    percent = percent_of(result["score"], result["max_score"])
    return [
        safe_cell(result["submission_id"]), safe_cell(result.get("student_name", "")),
        safe_cell(result.get("section", "")), safe_cell(result.get("file", "")),
        *(format_number(points.get(c)) for c in columns),
        format_number(result["score"]), format_number(percent, 2),
        str(result.get("outcome") or "graded"), safe_cell(result.get("error")),
        format_number(result.get("grader_score", result["score"])), safe_cell(_adjusted(result)),
    ]


def _adjusted(result: StoredResult) -> str:
    """The TAs' overrides of this row, one per check: `lstm.grad: adjusted by a TA from 0 to 8 by ...`."""
    lang = result.get("lang") if result.get("lang") in LANGUAGES else "en"
    notes = [f"{c['id']}: {override_note(c, lang)}" for c in result["checks"] if "override" in c]
    return "; ".join(notes)


def grades_rows(results: Sequence[StoredResult]) -> list[list[str]]:
    """Header, the max row, then one row per submission in the given order."""
    columns = check_columns(results)
    return [header(columns), max_row(results, columns), *(submission_row(r, columns) for r in results)]


def grades_csv(results: Sequence[StoredResult], lang: str) -> str:
    """The CSV text (no BOM). `lang` is checked but changes nothing: the file has no prose of its own."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}")
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(grades_rows(results))
    return buffer.getvalue()


def write_csv_text(text: str, path: Path) -> Path:
    """Write CSV text the way Excel in a Chinese locale reads it correctly (UTF-8 with BOM)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # backslashreplace: a lone surrogate (a notebook's file name or message can carry one) is written as \udcxx
    # text instead of failing the whole class's file.
    with path.open("w", encoding=CSV_ENCODING, errors="backslashreplace", newline="") as fh:
        fh.write(text)
    return path


def write_grades_csv(results: Sequence[StoredResult], path: Path, lang: str) -> Path:
    return write_csv_text(grades_csv(results, lang), path)
