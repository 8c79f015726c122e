"""`--roster roster.csv`: names joined into every output, a row for every student, strangers listed.

Real files: rosters written as Excel writes them (UTF-8 with a BOM, GBK on Chinese
Windows), a real store, the real coordinator with the jobs run in this process (their
submissions are files that are not notebooks: no kernel starts) and the real CLI.
"""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from graded_class import grade_class
from test_batch_regrade import InProcessExecutor, run_batch

from grader.batch import run as batch_run
from grader.cli import main
from grader.errors import BadInputError
from grader.roster import read_roster

ROSTER = "id,name,section\nalice,李华,1班\nbob,Bob Smith,2班\ncarol,张伟,1班\n"


@pytest.fixture(autouse=True)
def in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_run, "_make_executor", lambda options, rubric, lang: InProcessExecutor())


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_a_roster_reads_as_excel_writes_it(tmp_path, encoding):
    path = tmp_path / "roster.csv"
    path.write_bytes(ROSTER.replace("\n", "\r\n").encode(encoding))
    roster = read_roster(path, "en")
    assert [(s.id, s.name, s.section) for s in roster.students] == [
        ("alice", "李华", "1班"), ("bob", "Bob Smith", "2班"), ("carol", "张伟", "1班")]


@pytest.mark.parametrize(("content", "problem"), [
    ("id,name\nalice,A\nalice,B\n", "listed twice (first on line 2)"),
    ("id,name\n,A\n", "line 2: the id is empty"),
    ("student,name\nalice,A\n", "no column id"),
])
def test_a_bad_roster_is_refused_by_line(tmp_path, content, problem):
    path = tmp_path / "roster.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BadInputError, match=re.escape(problem)):
        read_roster(path, "en")


def test_a_file_that_is_neither_utf8_nor_gbk_is_refused(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_bytes(b"id,name\n\xff\xfe\xfd\x80\x81,x\n")
    with pytest.raises(BadInputError, match="neither UTF-8 nor GBK"):
        read_roster(path, "en")


@pytest.fixture
def graded_with_roster(tmp_path: Path, small_synthetic_dataset: Path) -> dict:
    """alice and bob submitted and are on the roster; carol is on it and did not submit; mallory is not on it."""
    roster = tmp_path / "roster.csv"
    roster.write_bytes(ROSTER.encode("gbk"))
    return grade_class(tmp_path, small_synthetic_dataset, ("alice", "bob", "mallory"), roster=roster)


def grades(out: Path) -> dict[str, dict[str, str]]:
    rows = list(csv.reader(io.StringIO((out / "grades.csv").read_text(encoding="utf-8-sig"))))
    return {row[0]: dict(zip(rows[0], row)) for row in rows[2:]}


def test_the_roster_joins_names_adds_the_missing_and_lists_the_strangers(graded_with_roster):
    out, summary, printed = graded_with_roster["out"], graded_with_roster["summary"], graded_with_roster["printed"]
    rows = grades(out)
    assert list(rows) == ["alice", "bob", "carol", "mallory"]  # the roster's order, then the strangers
    assert (rows["alice"]["name"], rows["alice"]["section"]) == ("李华", "1班")
    assert (rows["carol"]["status"], rows["carol"]["total"], rows["carol"]["name"]) == ("missing", "0", "张伟")
    assert rows["mallory"]["name"] == "" and rows["mallory"]["status"] == "bad_input"
    assert summary.missing == ["carol"] and summary.not_on_roster == ["mallory"]
    assert "1 student(s) on the roster without a submission" in printed and "carol" in printed
    assert "1 submission(s) whose id is on no roster line" in printed and "mallory" in printed
    page = (out / "summary.html").read_text(encoding="utf-8")
    assert "李华" in page and "not on the roster" in page and "no submission" in page
    assert "李华" in (out / "reports" / "alice.html").read_text(encoding="utf-8")
    carol = json.loads((out / "results" / "carol.json").read_text(encoding="utf-8"))
    assert carol["outcome"] == "missing" and carol["score"] == 0 and carol["student_name"] == "张伟"
    junit = (out / "junit.xml").read_text(encoding="utf-8")
    assert 'name="name" value="李华"' in junit


def test_the_roster_is_kept_for_later_runs_and_for_overrides(graded_with_roster):
    out = graded_with_roster["out"]
    run_batch(graded_with_roster["subs"], out, graded_with_roster["data"], graded_with_roster["rubric"])
    assert grades(out)["alice"]["name"] == "李华" and "carol" in grades(out)  # no --roster: the stored one
    assert main(["override", str(out), "bob", "rnn.defined", "--points", "2", "--reason", "regrade request",
                 "--lang", "en"]) == 0
    rows = grades(out)
    assert rows["bob"]["total"] == "2" and rows["bob"]["name"] == "Bob Smith" and rows["carol"]["status"] == "missing"


def test_grader_report_takes_a_roster_too(graded_with_roster, tmp_path, capsys):
    out = tmp_path / "again"
    roster = tmp_path / "roster2.csv"
    roster.write_text("id,name\nalice,Alice\ndave,Dave\n", encoding="utf-8-sig")
    assert main(["report", str(graded_with_roster["out"] / "results"), "-o", str(out), "--roster", str(roster),
                 "--lang", "en"]) == 0
    rows = grades(out)
    assert rows["alice"]["name"] == "Alice" and rows["dave"]["status"] == "missing"
    assert {"bob", "mallory"} <= set(rows)  # results the new roster does not list are kept, not dropped


def test_a_cell_past_the_csv_field_limit_is_bad_input_not_a_crash(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text("id,name\nalice," + "x" * 200_000 + "\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="not a CSV this grader can read"):
        read_roster(path, "en")
