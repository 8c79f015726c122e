"""`grader override`: a TA's overrides, kept in a ledger in the real SQLite store, shown in every output.

A real store and the real CLI. The class here is graded by the real coordinator with the
jobs run in this process (as in test_batch_regrade.py): its submissions are files that are
not notebooks, so no kernel starts, yet each gets a stored row and every output like any
other. A TA then awards points by hand, as after a dispute over a crash.
"""
from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from graded_class import NOT_A_NOTEBOOK, grade_class
from test_batch_regrade import InProcessExecutor, run_batch

from grader.batch import run as batch_run
from grader.batch.store import Store
from grader.cli import main

REASON = "the notebook ran on the TA's machine; the crash was the upload's"


@pytest.fixture(autouse=True)
def in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_run, "_make_executor", lambda options, rubric, lang: InProcessExecutor())


@pytest.fixture
def graded(tmp_path: Path, small_synthetic_dataset: Path) -> dict:
    """A graded class of three (alice, bob, carol), every one ungraded (0 points)."""
    return grade_class(tmp_path, small_synthetic_dataset, ("alice", "bob", "carol"))


def override(out: Path, *args: str) -> int:
    return main(["override", str(out), *args, "--lang", "en"])


def grades(out: Path) -> dict[str, dict[str, str]]:
    rows = list(csv.reader(io.StringIO((out / "grades.csv").read_text(encoding="utf-8-sig"))))
    return {row[0]: dict(zip(rows[0], row)) for row in rows[2:]}


def stored(out: Path, sid: str) -> dict:
    return json.loads((out / "results" / f"{sid}.json").read_text(encoding="utf-8"))


def test_an_override_shows_in_every_output_beside_the_graders_own_verdict(graded, capsys):
    out = graded["out"]
    assert override(out, "bob", "lstm.forward", "--points", "10", "--reason", REASON, "--by", "王助教") == 0
    assert "1 override(s) recorded" in capsys.readouterr().out

    row = grades(out)["bob"]
    assert (row["lstm.forward"], row["total"], row["grader_total"]) == ("10", "10", "0")
    assert "lstm.forward" in row["adjusted"] and "王助教" in row["adjusted"] and REASON in row["adjusted"]
    assert grades(out)["alice"]["adjusted"] == "" and grades(out)["alice"]["total"] == "0"

    result = stored(out, "bob")
    check = next(c for c in result["checks"] if c["id"] == "lstm.forward")
    assert check["status"] == "error" and check["score"] == 10  # the grader's verdict stays, the points are the TA's
    assert check["override"] == {**check["override"], "points": 10.0, "grader_score": 0.0, "by": "王助教",
                                 "reason": REASON, "needs_review": False}
    assert (result["score"], result["grader_score"], result["overridden"]) == (10.0, 0.0, 1)

    report = (out / "reports" / "bob.html").read_text(encoding="utf-8")
    assert "data-override-note" in report and "the crash was the upload" in report and "data-adjusted" in report
    gradescope = json.loads((out / "gradescope" / "bob" / "results.json").read_text(encoding="utf-8"))
    test = next(t for t in gradescope["tests"] if t["name"] == "lstm.forward")
    assert test["score"] == 10 and REASON in test["output"] and gradescope["score"] == 10
    suite = next(s for s in ET.parse(out / "junit.xml").getroot() if s.get("name") == "bob")
    case = next(c for c in suite if c.get("name") == "lstm.forward")
    assert REASON in "".join(case.itertext())
    summary = (out / "summary.html").read_text(encoding="utf-8")
    assert "adjusted by a TA (the grader gave 0)" in summary and summary.count("data-adjusted") == 1


def test_an_override_survives_a_regrade_and_is_flagged_when_the_notebook_changes(graded):
    out = graded["out"]
    assert override(out, "bob", "rnn.defined", "--points", "2", "--reason", REASON) == 0
    run_batch(graded["subs"], out, graded["data"], graded["rubric"], force=True)  # the same notebooks again
    assert grades(out)["bob"]["rnn.defined"] == "2" and not stored(out, "bob")["needs_review"]

    (graded["subs"] / "bob.ipynb").write_bytes(NOT_A_NOTEBOOK + b"bob, resubmitted")
    summary, _ = run_batch(graded["subs"], out, graded["data"], graded["rubric"])
    assert summary.regraded == {"notebook": 1}
    result = stored(out, "bob")
    assert result["needs_review"] is True and result["score"] == 2  # kept, but a human must look again
    assert "needs review" in grades(out)["bob"]["adjusted"]
    assert "override needs review" in (out / "summary.html").read_text(encoding="utf-8")
    listed = io.StringIO()
    with Store.open(out) as store:
        from grader.batch.ledger import list_lines

        listed.write("\n".join(list_lines(store, "en")))
    assert "needs review" in listed.getvalue()


@pytest.mark.parametrize(("points", "problem"), [("5", "from 0 to 2"), ("-1", "from 0 to 2"), ("nan", "from 0 to 2")])
def test_points_outside_the_checks_range_are_refused(graded, capsys, points, problem):
    assert override(graded["out"], "bob", "rnn.defined", "--points", points, "--reason", REASON) == 2
    assert problem in capsys.readouterr().err
    with Store.open(graded["out"]) as store:
        assert store.override_events() == []


def test_an_unknown_student_or_check_and_a_missing_reason_are_refused_by_name(graded, capsys):
    out = graded["out"]
    assert override(out, "mallory", "rnn.defined", "--points", "1", "--reason", REASON) == 2
    assert "mallory" in capsys.readouterr().err
    assert override(out, "bob", "rnn.defind", "--points", "1", "--reason", REASON) == 2
    assert "rnn.defind" in capsys.readouterr().err
    assert override(out, "bob", "rnn.defined", "--points", "1") == 2
    assert "--reason" in capsys.readouterr().err
    assert override(graded["out"].parent / "nowhere", "bob", "rnn.defined", "--points", "1", "--reason", "x") == 2


def test_clearing_goes_back_to_the_graders_points_and_the_ledger_keeps_both(graded, capsys):
    out = graded["out"]
    assert override(out, "carol", "loop.train", "--points", "3", "--reason", REASON) == 0
    assert grades(out)["carol"]["loop.train"] == "3"
    assert override(out, "carol", "loop.train", "--clear", "--reason", "decided at the meeting") == 0
    assert grades(out)["carol"]["loop.train"] == "0" and "override" not in json.dumps(stored(out, "carol")["checks"])
    capsys.readouterr()
    assert override(out, "--list") == 0
    assert "no overrides" in capsys.readouterr().out
    assert override(out, "--history") == 0
    history = capsys.readouterr().out.splitlines()
    assert len(history) == 2 and "cleared" in history[1] and "decided at the meeting" in history[1]


def test_a_csv_of_overrides_in_gbk_is_recorded_whole_or_not_at_all(graded, capsys, tmp_path):
    out = graded["out"]
    good = tmp_path / "overrides.csv"
    good.write_bytes("student,check,points,reason\nalice,rnn.defined,2,复议通过\nbob,lstm.train,14,复议通过\n"
                     .encode("gbk"))
    assert override(out, "--from", str(good)) == 0
    assert (grades(out)["alice"]["total"], grades(out)["bob"]["total"]) == ("2", "14")

    bad = tmp_path / "bad.csv"
    bad.write_text("student,check,points,reason\ncarol,rnn.defined,2,ok\ncarol,rnn.params,99,typo\n",
                   encoding="utf-8-sig")
    assert override(out, "--from", str(bad)) == 2
    assert "bad.csv line 3" in capsys.readouterr().err
    assert grades(out)["carol"]["total"] == "0"  # row 2 was valid, yet nothing was recorded


def test_a_reason_cannot_drive_the_terminal_or_a_spreadsheet(graded, capsys):
    out = graded["out"]
    assert override(out, "bob", "rnn.defined", "--points", "1", "--reason", "=HYPERLINK(\"x\")\x1b]0;pwned\x07") == 0
    assert "\x1b" not in grades(out)["bob"]["adjusted"] and not grades(out)["bob"]["adjusted"].startswith("=")
    capsys.readouterr()
    assert override(out, "--list") == 0
    shown = capsys.readouterr().out
    assert "\x1b" not in shown and "\x07" not in shown


def test_a_bad_rubric_records_nothing(graded, tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("not = [toml", encoding="utf-8")
    assert override(graded["out"], "bob", "rnn.defined", "--points", "1", "--reason", REASON,
                    "--rubric", str(broken)) == 2
    with Store.open(graded["out"]) as store:
        assert store.override_events() == []
