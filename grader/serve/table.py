"""The class table: one row per student, filtered and sorted as the URL says.

Rows are built once per change of the store (classdata.py) and are plain frozen data,
so a filter or a sort is a pass over 300 small objects, not a query or a render of
results. The view (sort column, direction, filters) lives entirely in the query string
(`ViewState.from_query` / `query`): a TA can send the URL to another TA and both see the
same rows. Unknown or malformed parameters are ignored, never an error: a URL is typed
by hand and pasted from chat.
"""
from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from grader.messages import Msg, render
from grader.report.results import StoredResult, as_dict

# A row's status: why it has no grade, else whether every check passed.
ROW_STATUSES = ("passed", "failed", "bad_input", "crashed", "timeout", "missing")
CHECK_STATUSES = ("passed", "failed", "error", "skipped")
# Sorting by a check puts the ones to look at first: failed, error, skipped, passed.
_CHECK_RANK = {"failed": 0, "error": 1, "skipped": 2, "passed": 3}
_ROW_RANK = {s: i for i, s in enumerate(("failed", "crashed", "timeout", "bad_input", "missing", "passed"))}
FIXED_SORTS = ("id", "name", "score", "status", "flags")
MAX_TEXT_CHARS = 200      # an id or a name shown in a cell (links carry the whole id); the student's page shows all
MAX_QUERY_CHARS = 200     # a filter value kept from the URL


@dataclass(frozen=True)
class Cell:
    """One check of one student: a colour (its status) and what a hover says."""

    check: str
    status: str
    points: str
    overridden: bool


@dataclass(frozen=True)
class Flag:
    """A similarity pair this student is in."""

    other: str
    score: float
    reviewed: bool

    @property
    def shown_other(self) -> str:
        return self.other[:MAX_TEXT_CHARS]


@dataclass(frozen=True)
class Row:
    id: str
    name: str
    section: str
    score: float
    max_score: float
    status: str
    cells: tuple[Cell, ...]
    diagnoses: frozenset[str]  # message keys, so a filter works in either language
    flags: tuple[Flag, ...]
    overridden: bool
    needs_review: bool

    @property
    def flagged(self) -> bool:
        """In a pair no TA has yet marked "reviewed, not a concern"."""
        return any(not f.reviewed for f in self.flags)

    @property
    def shown_id(self) -> str:
        """The id as a cell shows it; `id` is whole, for links and filters."""
        return self.id[:MAX_TEXT_CHARS]

    def check(self, check_id: str) -> Cell | None:
        return next((c for c in self.cells if c.check == check_id), None)


@dataclass(frozen=True)
class ViewState:
    """Sort and filters, as the URL carries them."""

    sort: str = "id"
    desc: bool = False
    check: str = ""              # a check id ...
    check_status: str = "notpassed"  # ... with this status ("notpassed": failed, error or skipped)
    status: str = ""             # a row status
    diagnosis: str = ""          # a diagnosis's message key
    flagged: bool = False
    overridden: bool = False
    review: bool = False         # needs review: an override made against another notebook
    q: str = ""                  # part of an id or a name

    @classmethod
    def from_query(cls, query: Mapping[str, Sequence[str]]) -> ViewState:
        def one(name: str) -> str:
            values = query.get(name) or [""]
            return values[0][:MAX_QUERY_CHARS]

        def yes(name: str) -> bool:
            return one(name) in ("1", "on", "yes", "true")

        check_status = one("check_status")
        return cls(sort=one("sort") or "id", desc=one("dir") == "desc", check=one("check"),
                   check_status=check_status if check_status in (*CHECK_STATUSES, "notpassed") else "notpassed",
                   status=one("status") if one("status") in ROW_STATUSES else "", diagnosis=one("diagnosis"),
                   flagged=yes("flagged"), overridden=yes("overridden"), review=yes("review"), q=one("q").strip())

    def query(self, **changes: Any) -> str:
        """This view's query string (with `changes`), leaving defaults out so a shared URL stays short."""
        state = replace(self, **changes)
        default = ViewState()
        params: list[tuple[str, str]] = []
        for name, value, base in (("sort", state.sort, default.sort), ("check", state.check, ""),
                                  ("status", state.status, ""), ("diagnosis", state.diagnosis, ""),
                                  ("q", state.q, "")):
            if value != base:
                params.append((name, value))
        if state.desc:
            params.append(("dir", "desc"))
        if state.check and state.check_status != default.check_status:
            params.append(("check_status", state.check_status))
        params += [(name, "1") for name in ("flagged", "overridden", "review") if getattr(state, name)]
        return urllib.parse.urlencode(params)

    def sort_query(self, column: str) -> str:
        """The query that sorts by `column`; the same column again flips the direction."""
        return self.query(sort=column, desc=not self.desc if self.sort == column else False)

    @property
    def filtering(self) -> bool:
        return bool(self.check or self.status or self.diagnosis or self.flagged or self.overridden or self.review
                    or self.q)


@dataclass(frozen=True)
class ClassTable:
    rows: tuple[Row, ...]
    check_ids: tuple[str, ...]
    diagnoses: tuple[tuple[str, str], ...] = field(default=())  # (key, text) of every diagnosis in the class


def build_rows(results: Sequence[StoredResult], pairs: Sequence[dict[str, Any]],
               reviewed: set[tuple[str, str]], lang: str) -> ClassTable:
    """The class's rows (results joined to the roster, overrides applied) and its check columns."""
    flags = _flags_by_id(pairs, reviewed)
    rows, diagnoses, check_ids = [], {}, {}
    for result in results:
        row, found = _row(result, flags.get(result["submission_id"], ()), lang)
        rows.append(row)
        diagnoses.update(found)
        check_ids.update(dict.fromkeys(c.check for c in row.cells))
    return ClassTable(tuple(rows), tuple(check_ids), tuple(sorted(diagnoses.items(), key=lambda kv: kv[1])))


def _row(result: StoredResult, flags: Sequence[Flag], lang: str) -> tuple[Row, dict[str, str]]:
    cells, diagnoses = [], {}
    for check in result["checks"]:
        status = str(check.get("status"))
        cells.append(Cell(str(check["id"]), status if status in CHECK_STATUSES else "error",
                          f"{float(check['score']):g}/{float(check['max_score']):g}", "override" in check))
        diagnosis = Msg.from_json(as_dict(check.get("i18n")).get("diagnosis"))
        if diagnosis is not None:
            diagnoses[diagnosis.key] = render(diagnosis, lang)
    outcome = str(result.get("outcome") or "graded")
    if outcome == "graded":
        status = "passed" if all(c.status == "passed" for c in cells) else "failed"
    else:
        status = outcome if outcome in ROW_STATUSES else "crashed"
    row = Row(id=str(result["submission_id"]),
              name=str(result.get("student_name") or "")[:MAX_TEXT_CHARS],
              section=str(result.get("section") or "")[:MAX_TEXT_CHARS],
              score=float(result["score"]), max_score=float(result["max_score"]), status=status,
              cells=tuple(cells), diagnoses=frozenset(diagnoses), flags=tuple(flags),
              overridden=bool(result.get("overridden")), needs_review=result.get("needs_review") is True)
    return row, diagnoses


def _flags_by_id(pairs: Sequence[dict[str, Any]], reviewed: set[tuple[str, str]]) -> dict[str, list[Flag]]:
    flags: dict[str, list[Flag]] = {}
    for pair in pairs:
        if not isinstance(pair, dict) or not isinstance(pair.get("a"), str) or not isinstance(pair.get("b"), str):
            continue
        a, b = pair["a"], pair["b"]
        score = pair.get("score")
        value = float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else 0.0
        done = (min(a, b), max(a, b)) in reviewed
        flags.setdefault(a, []).append(Flag(b, value, done))
        flags.setdefault(b, []).append(Flag(a, value, done))
    return flags


def select(table: ClassTable, view: ViewState) -> list[Row]:
    """The rows the view shows, in its order."""
    rows = [row for row in table.rows if _keeps(row, view)]
    rows.sort(key=lambda row: _sort_key(row, view.sort), reverse=view.desc)
    return rows


def _keeps(row: Row, view: ViewState) -> bool:
    if view.status and row.status != view.status:
        return False
    if view.diagnosis and view.diagnosis not in row.diagnoses:
        return False
    if (view.flagged and not row.flagged) or (view.overridden and not row.overridden) or \
            (view.review and not row.needs_review):
        return False
    if view.q and view.q.casefold() not in f"{row.id}\n{row.name}".casefold():
        return False
    if view.check:
        cell = row.check(view.check)
        if cell is None:
            return False
        wanted = view.check_status
        return cell.status != "passed" if wanted == "notpassed" else cell.status == wanted
    return True


def _sort_key(row: Row, column: str) -> tuple[Any, ...]:
    """Ties broken by id, so an order is the same on every load."""
    if column == "name":
        return (row.name.casefold(), row.id)
    if column == "score":
        return (row.score, row.id)
    if column == "status":
        return (_ROW_RANK.get(row.status, 0), row.id)
    if column == "flags":
        return (-max((f.score for f in row.flags), default=-1.0), row.id)
    if column.startswith("check:"):
        cell = row.check(column[len("check:"):])
        return ((_CHECK_RANK.get(cell.status, 0), float(cell.points.split("/")[0])) if cell else (9, 0.0), row.id)
    return (row.id,)
