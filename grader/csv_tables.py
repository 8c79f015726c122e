"""CSV files a TA gives the grader (a roster, a batch of overrides), read the way spreadsheets write them.

Excel on Chinese Windows saves "CSV" in GBK; elsewhere it is UTF-8, often with a
byte-order mark. A file is tried as UTF-8 (BOM or not) and then as GBK; one that
is neither is refused by name. Reads are capped (size and rows), header names
are matched case-insensitively, and every value is stripped and cut to a bound.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from grader.errors import BadInputError
from grader.messages import text

MAX_TABLE_BYTES = 5 * 2**20
MAX_ROWS = 20_000
MAX_CELL_CHARS = 2000
ENCODINGS = ("utf-8-sig", "gbk")


@dataclass(frozen=True)
class Table:
    """Rows as {column: value} for the columns asked for; `line` numbers rows as a spreadsheet shows them."""

    path: Path
    encoding: str
    rows: list[tuple[int, dict[str, str]]]


def decode(raw: bytes) -> tuple[str, str] | None:
    """(text, encoding) for the first encoding that reads the bytes whole, else None."""
    for encoding in ENCODINGS:
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return None


def read_table(path: Path, required: tuple[str, ...], optional: tuple[str, ...], lang: str) -> Table:
    """The CSV at `path` with at least the `required` columns; BadInputError (exit 2) naming what is wrong."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_TABLE_BYTES + 1)
    except OSError as exc:
        raise BadInputError(text("tables.unreadable", lang, path=str(path), reason=exc.strerror or str(exc))) from None
    if len(raw) > MAX_TABLE_BYTES:
        raise BadInputError(text("tables.too_large", lang, path=str(path), limit_mb=MAX_TABLE_BYTES // 2**20))
    decoded = decode(raw)
    if decoded is None:
        raise BadInputError(text("tables.encoding", lang, path=str(path)))
    content, encoding = decoded
    try:
        return _rows(path, encoding, csv.reader(io.StringIO(content, newline="")), required, optional, lang)
    except csv.Error as exc:  # a cell past csv's field limit, a stray NUL: the file's problem, said by line
        raise BadInputError(text("tables.malformed", lang, path=str(path), reason=str(exc)[:200])) from None


def _rows(path: Path, encoding: str, reader: Iterator[list[str]], required: tuple[str, ...],
          optional: tuple[str, ...], lang: str) -> Table:
    header = next(reader, None)
    if header is None:
        raise BadInputError(text("tables.empty", lang, path=str(path)))
    columns = {name.strip().lower(): i for i, name in enumerate(header) if name.strip()}
    missing = [c for c in required if c not in columns]
    if missing:
        raise BadInputError(text("tables.missing_columns", lang, path=str(path), missing=", ".join(missing),
                                 found=", ".join(columns) or "-"))
    wanted = [c for c in required + optional if c in columns]
    rows: list[tuple[int, dict[str, str]]] = []
    for line, record in enumerate(reader, start=2):
        if len(rows) >= MAX_ROWS:
            raise BadInputError(text("tables.too_many_rows", lang, path=str(path), limit=MAX_ROWS))
        if not any(cell.strip() for cell in record):
            continue  # a blank line a spreadsheet left at the end
        rows.append((line, {c: _cell(record, columns[c]) for c in wanted}))
    return Table(path, encoding, rows)


def _cell(record: list[str], index: int) -> str:
    return record[index].strip()[:MAX_CELL_CHARS] if index < len(record) else ""
