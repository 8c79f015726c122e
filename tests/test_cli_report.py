"""The report files `grader check` writes on request, and `grader report` from stored results."""
from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from grader.cli import main
from grader.paths import REFERENCE_NOTEBOOK
from grader.rubric import CHECK_IDS

RESULTS = Path(__file__).resolve().parent / "fixtures" / "results"


@pytest.mark.kernel
def test_check_writes_every_requested_export_from_one_run(tmp_path, capsys):
    files = {name: tmp_path / "out" / name for name in ("r.html", "junit.xml", "results.json", "result.json")}
    # --full: a Gradescope autograder is TA grading (every check, live reference)
    code = main(["check", str(REFERENCE_NOTEBOOK), "--full", "--format", "json", "--lang", "en", "--seed", "5",
                 "--html", str(files["r.html"]), "--junit", str(files["junit.xml"]),
                 "--gradescope", str(files["results.json"]), "--json", str(files["result.json"])])
    captured = capsys.readouterr()
    assert code == 0
    printed = json.loads(captured.out)  # stdout stays one JSON object; "wrote ..." goes to stderr
    assert all(f"wrote {path}" in captured.err for path in files.values())
    assert json.loads(files["result.json"].read_text(encoding="utf-8")) == printed
    html = files["r.html"].read_text(encoding="utf-8")
    assert all(f'data-check-id="{check_id}"' in html for check_id in CHECK_IDS)
    suite = ET.parse(files["junit.xml"]).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == str(len(CHECK_IDS)) and suite.get("failures") == "0"
    gradescope = json.loads(files["results.json"].read_text(encoding="utf-8"))
    assert gradescope["score"] == printed["score"] == 100
    assert [t["name"] for t in gradescope["tests"]] == list(CHECK_IDS)


def test_report_renders_stored_results_in_another_language_without_regrading(tmp_path, capsys):
    out = tmp_path / "site"
    assert main(["report", str(RESULTS), "-o", str(out), "--lang", "en"]) == 0
    count = len(list(RESULTS.glob("*.json")))
    assert f"rendered {count} result(s)" in capsys.readouterr().out
    page = (out / "reports" / "fails_lstm_first_step_logits.html").read_text(encoding="utf-8")
    # the stored result is Chinese; its message keys render it in English
    assert "first time step" in page and "来自第一个时间步" not in page
    with (out / "grades.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["id"] == "POINTS_POSSIBLE" and rows[0]["total"] == "100" and len(rows) == 1 + count
    by_id = {r["id"]: r for r in rows[1:]}
    assert by_id["fails_lstm_first_step_logits"]["total"] == "66"
    assert by_id["ungraded_not_a_notebook"]["status"] == "bad_input"
    for name in ("summary.html", "summary.csv", "junit.xml"):
        assert (out / name).stat().st_size > 0
    # what `grader report` wrote under results/ is itself a valid input to `grader report`
    assert main(["report", str(out / "results"), "-o", str(tmp_path / "again")]) == 0


@pytest.mark.parametrize("content", ["{not json", '{"schema": 1}'])
def test_report_on_a_file_that_is_not_a_result_exits_2_with_its_name(tmp_path, capsys, content):
    bad = tmp_path / "bad.json"
    bad.write_text(content, encoding="utf-8")
    assert main(["report", str(bad), "-o", str(tmp_path / "o"), "--lang", "en"]) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists(), "nothing is written when the input is bad"


def test_report_on_a_missing_path_exits_2(tmp_path, capsys):
    assert main(["report", str(tmp_path / "none"), "-o", str(tmp_path / "o"), "--lang", "en"]) == 2
    assert "no results found" in capsys.readouterr().err
