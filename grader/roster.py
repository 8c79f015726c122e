"""The class roster: who should have submitted, with their names, joined into every output.

`--roster roster.csv` (columns id, name, optional section; UTF-8 with or without a
BOM, or GBK as Excel on Chinese Windows saves it: grader/csv_tables.py). Joining it
to a class's results (`join`):
- a result whose id is on the roster gets the student's `student_name` and `section`;
- a student on the roster without a submission gets a result of outcome `missing`
  (every check 0 points), so the gradebook has a row for everyone;
- a submission whose id matches nobody keeps its result, marked `on_roster: false`,
  and is listed for the TA (the class summary's problems).
The order is the roster's, then the unknown submissions by id.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from grader.csv_tables import read_table
from grader.errors import BadInputError
from grader.messages import text
from grader.report.results import StoredResult, ungraded_result
from grader.rubric import Rubric

MAX_ID_CHARS = 200


@dataclass(frozen=True)
class Student:
    id: str
    name: str
    section: str = ""


@dataclass(frozen=True)
class Roster:
    students: tuple[Student, ...]
    source: str = ""  # the file it was read from, for messages

    def by_id(self) -> dict[str, Student]:
        return {s.id: s for s in self.students}


def read_roster(path: Path, lang: str) -> Roster:
    """The roster at `path`; BadInputError (exit 2) for a bad file, an empty id or an id listed twice."""
    table = read_table(path, ("id", "name"), ("section",), lang)
    students: list[Student] = []
    first_line: dict[str, int] = {}
    for line, row in table.rows:
        sid = row["id"][:MAX_ID_CHARS]
        if not sid:
            raise BadInputError(text("roster.empty_id", lang, path=str(path), line=line))
        if sid in first_line:
            raise BadInputError(text("roster.duplicate_id", lang, path=str(path), id=sid, line=line,
                                     first=first_line[sid]))
        first_line[sid] = line
        students.append(Student(sid, row["name"], row.get("section", "")))
    if not students:
        raise BadInputError(text("tables.empty", lang, path=str(path)))
    return Roster(tuple(students), str(path))


def join(results: list[StoredResult], roster: Roster | None, rubric: Rubric, lang: str) -> list[StoredResult]:
    """The class as the roster sees it (see the module docstring); the results unchanged without a roster."""
    if roster is None:
        return results
    by_id = {r["submission_id"]: r for r in results}
    joined: list[StoredResult] = []
    for student in roster.students:
        result = by_id.get(student.id)
        if result is None:
            result = ungraded_result(submission_id=student.id, file="", outcome="missing",
                                     error=text("roster.missing_error", lang), rubric=rubric, lang=lang)
        else:
            result = copy.deepcopy(result)
        result["student_name"], result["section"], result["on_roster"] = student.name, student.section, True
        joined.append(result)
    known = roster.by_id()
    for sid in sorted(set(by_id) - set(known)):
        unknown = copy.deepcopy(by_id[sid])
        unknown["on_roster"] = False
        joined.append(unknown)
    return joined


def unknown_ids(results: list[StoredResult]) -> list[str]:
    """The submissions a roster did not list (after `join`)."""
    return [r["submission_id"] for r in results if r.get("on_roster") is False]
