"""`grader override`: set, clear and list a TA's overrides in a graded class's store, then write its outputs again.

Every override is checked against the store before anything is recorded: the student
must have a stored result, the check must be one of its checks, the points within
0..the check's maximum, the reason non-empty. A CSV of overrides is checked whole
first and recorded only if every row is valid, so a typo on row 40 records nothing
rather than 39 overrides. After recording, every output in OUT is written again from
the store (with the stored similarity pass), so grades.csv and the reports agree.
"""
from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from grader.batch.store import STORE_NAME, Store, now_iso
from grader.csv_tables import read_table
from grader.errors import BadInputError
from grader.messages import text
from grader.overrides import CLEAR, MAX_NAME_CHARS, MAX_REASON_CHARS, SET, Override, OverrideError, clean_text
from grader.overrides import validate_points as _validate_points
from grader.report.results import StoredResult
from grader.roster import join
from grader.rubric import Rubric
from grader.safe_text import safe_line

CSV_REQUIRED = ("student", "check")
CSV_OPTIONAL = ("points", "reason", "by", "clear")


@dataclass(frozen=True)
class Request:
    """One override as a TA asked for it (points None: clear it)."""

    student: str
    check: str
    points: float | None
    reason: str
    by: str
    where: str = ""  # "overrides.csv line 7", for messages


def open_store(out: Path, lang: str) -> Store:
    """The store of a graded class; exit 2 when OUT holds none (override never creates an empty one)."""
    if not (Path(out) / STORE_NAME).is_file():
        raise BadInputError(text("override.no_store", lang, out=str(out)))
    return Store.open(Path(out), lang)


def default_author() -> str:
    """Who is making the override when --by is not given: the login name."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "") or "?"


def record(store: Store, requests: list[Request], lang: str) -> list[Override]:
    """Check every request against the store, then record them all (or none: BadInputError on the first bad one)."""
    results = {r["submission_id"]: r for r in store.all_results()}
    hashes = store.notebook_hashes()
    in_force = store.overrides()
    events = [_event(req, results, hashes, in_force, lang) for req in requests]
    for event in events:
        store.record_override(event)
    return events


def _event(req: Request, results: dict[str, StoredResult], hashes: dict[str, str],
           in_force: dict[tuple[str, str], Override], lang: str) -> Override:
    prefix = f"{req.where}: " if req.where else ""
    result = results.get(req.student)
    if result is None:
        raise BadInputError(prefix + text("override.unknown_student", lang, student=safe_line(req.student),
                                          known=_some(sorted(results))))
    check = next((c for c in result["checks"] if c["id"] == req.check), None)
    if check is None:
        raise BadInputError(prefix + text("override.unknown_check", lang, check=safe_line(req.check),
                                          known=", ".join(c["id"] for c in result["checks"])))
    by = clean_text(req.by, MAX_NAME_CHARS) or default_author()
    reason = clean_text(req.reason, MAX_REASON_CHARS)
    if req.points is None:
        if (req.student, req.check) not in in_force:
            raise BadInputError(prefix + text("override.nothing_to_clear", lang, student=safe_line(req.student),
                                              check=req.check))
        return Override(req.student, req.check, CLEAR, None, reason, by, now_iso(), hashes.get(req.student, ""))
    if not reason:
        raise BadInputError(prefix + text("override.reason_required", lang))
    try:
        points = _validate_points(req.points, req.check, float(check["max_score"]))
    except OverrideError as exc:
        raise BadInputError(prefix + text(exc.key, lang, **exc.params)) from None
    return Override(req.student, req.check, SET, points, reason, by, now_iso(), hashes.get(req.student, ""))


def _some(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(safe_line(n) for n in names[:limit])
    return shown + (f", … (+{len(names) - limit})" if len(names) > limit else "") if names else "-"


def requests_from_csv(path: Path, by: str, lang: str) -> list[Request]:
    """One request per row: `student,check,points,reason[,by]`; `points` empty (or a `clear` column saying
    yes) clears the override."""
    table = read_table(path, CSV_REQUIRED, CSV_OPTIONAL, lang)
    requests = []
    for line, row in table.rows:
        where = f"{Path(path).name} line {line}"
        clear = row.get("clear", "").lower() in ("1", "yes", "true", "y", "是") or not row.get("points", "")
        points = None if clear else _points(row["points"], where, lang)
        requests.append(Request(row["student"], row["check"], points, row.get("reason", ""),
                                row.get("by", "") or by, where))
    if not requests:
        raise BadInputError(text("tables.empty", lang, path=str(path)))
    return requests


def _points(value: str, where: str, lang: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise BadInputError(f"{where}: " + text("override.points_not_a_number", lang,
                                                 points=safe_line(value))) from None


def list_lines(store: Store, lang: str, *, history: bool = False) -> list[str]:
    """The overrides in force (or the whole ledger), one line each, oldest first."""
    events = store.override_events() if history else sorted(store.overrides().values(), key=lambda o: o.at)
    if not events:
        return [text("override.none", lang)]
    hashes = store.notebook_hashes()
    lines = []
    for o in events:
        review = o.action == SET and bool(o.notebook_sha256) and hashes.get(o.submission_id) != o.notebook_sha256
        key = "override.line_clear" if o.action == CLEAR else "override.line"
        lines.append(text(key, lang, at=o.at[:19].replace("T", " "), student=safe_line(o.submission_id),
                          check=o.check_id, points=f"{o.points:g}" if o.points is not None else "-",
                          by=safe_line(o.by), reason=safe_line(o.reason))
                     + (text("override.needs_review_suffix", lang) if review else ""))
    return lines


def rewrite_outputs(store: Store, out: Path, lang: str, err: TextIO, rubric: Rubric) -> None:
    """Every output of OUT again, from the store, with the overrides in force and the stored similarity pass."""
    from grader.report.outputs import write_outputs

    similarity = store.similarity()
    results = join(store.results_for_outputs(), store.roster(), rubric, lang)
    write_outputs(results, Path(out), lang,
                  similar_pairs=similarity[0] if similarity else None,
                  similarity_left_out=similarity[1] if similarity else (), log=err)
