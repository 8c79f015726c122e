"""grades.xlsx: grades.csv as a workbook, for the LMS imports and the TAs that take Excel.

The first sheet, `grades`, has exactly grades.csv's columns and rows (header, the
POINTS_POSSIBLE row, one row per student; names from the roster), with every number
stored as a number, so a formula or an import reads 12 and not "12". Then one sheet
per check group (`notebook`, `data`, `rnn`, `lstm`, `loop`): id, name and that group's
checks, for a TA reviewing one part of the lab.

Text a student controls can start with `=`: openpyxl would store such a string as a
formula. Every text cell is prefixed like the CSV's (grades_csv.safe_cell) and written
with the string type forced, so no cell of the file is ever a formula.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.worksheet.worksheet import Worksheet

from grader.report.grades_csv import check_columns, grades_rows
from grader.report.results import StoredResult

GRADES_SHEET = "grades"
# Excel's own limit on a sheet name is 31 characters; ours are short.
GROUPS = ("notebook", "data", "rnn", "lstm", "loop")


def _typed(text: str) -> float | str:
    """A grades.csv cell as the workbook stores it: a number where the CSV printed one, else the text."""
    if text and (text[0].isdigit() or (text[0] == "-" and text[1:2].isdigit())):
        try:
            return float(text)
        except ValueError:
            return text
    return text


def _put(sheet: Worksheet, row: int, column: int, value: float | str) -> None:
    cell: Cell = sheet.cell(row=row, column=column)
    cell.value = value
    if isinstance(value, str):
        cell.data_type = "s"  # never a formula, whatever the text begins with


def _write_rows(sheet: Worksheet, rows: Sequence[Sequence[str]], numeric_from: int) -> None:
    for r, row in enumerate(rows, start=1):
        for c, text in enumerate(row, start=1):
            # The header row and the leading text columns stay text even when they look like numbers (an id 2024001).
            value = _typed(text) if r > 1 and c > numeric_from else text
            _put(sheet, r, c, value)


def grades_workbook(results: Sequence[StoredResult]) -> Workbook:
    rows = grades_rows(results)
    header = rows[0]
    leading = header.index(check_columns(results)[0])  # id, name, section, file
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = GRADES_SHEET
    _write_rows(sheet, rows, numeric_from=leading)
    status, error, adjusted = header.index("status"), header.index("error"), header.index("adjusted")
    for r in range(2, len(rows) + 1):  # prose columns: text even when a message begins with a digit
        for c in (status, error, adjusted):
            _put(sheet, r, c + 1, rows[r - 1][c])
    for group in GROUPS:
        columns = [i for i, name in enumerate(header) if name.split(".")[0] == group]
        if not columns:
            continue
        group_sheet = book.create_sheet(group)
        picked = [[row[i] for i in (0, 1, *columns)] for row in rows]
        _write_rows(group_sheet, picked, numeric_from=2)
    return book


def write_grades_xlsx(results: Sequence[StoredResult], path: Path) -> Path:
    """Written beside and renamed into place: a workbook that fails half-way never replaces the last good one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        grades_workbook(results).save(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path
