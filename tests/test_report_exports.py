"""grades.csv, Gradescope results.json and JUnit XML from stored results: exact fields."""
from __future__ import annotations

import copy
import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

from grader.report.grades_csv import MAX_ROW_ID, format_number, grades_csv, write_grades_csv
from grader.report.gradescope import gradescope_json, write_gradescope_json
from grader.report.junit import junit_xml, write_junit_xml, xml_safe
from grader.report.results import load_results
from grader.rubric import CHECK_IDS

FIXTURES = Path(__file__).parent / "fixtures" / "results"
HEADER = ["id", "name", "section", "file", *CHECK_IDS, "total", "percent", "status", "error", "grader_total",
          "adjusted"]


def fixture(name: str) -> dict:
    return load_results(FIXTURES / f"{name}.json")[0]


@pytest.fixture
def batch() -> list[dict]:
    return [fixture(n) for n in ("passes_all_reference", "fails_lstm_first_step_logits",
                                 "scores_zero_untouched_template", "ungraded_not_a_notebook")]


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# --- grades.csv ---------------------------------------------------------------------------------

def test_grades_header_is_ascii_and_checks_in_rubric_order(batch):
    for lang in ("zh", "en"):
        header = next(csv.reader(io.StringIO(grades_csv(batch, lang))))
        assert header == HEADER
        assert all(h.isascii() for h in header)


def test_grades_first_row_holds_the_maximum_points(batch):
    first = rows_of(grades_csv(batch, "zh"))[0]
    maxima = {c["id"]: c["max_score"] for c in batch[0]["checks"]}
    assert first["id"] == MAX_ROW_ID and first["file"] == ""
    assert {c: first[c] for c in CHECK_IDS} == {c: format_number(maxima[c]) for c in CHECK_IDS}
    assert first["lstm.forward"] == "10" and first["rnn.sizes"] == "2" and first["notebook.parses"] == "0"
    assert first["total"] == "100" and first["percent"] == "100"
    assert first["status"] == "" and first["error"] == ""


def test_grades_one_row_per_submission_with_points_total_percent_status(batch):
    rows = rows_of(grades_csv(batch, "zh"))[1:]
    assert [r["id"] for r in rows] == [r["submission_id"] for r in batch]
    lstm = rows[1]
    assert lstm["file"] == "fails_lstm_first_step_logits.ipynb"
    assert (lstm["lstm.forward"], lstm["lstm.grad"], lstm["lstm.train"], lstm["rnn.forward"]) == ("0", "0", "0", "6")
    assert (lstm["total"], lstm["percent"], lstm["status"], lstm["error"]) == ("66", "66", "graded", "")
    ungraded = rows[3]
    assert ungraded["status"] == "bad_input"
    assert ungraded["error"] == "ungraded_not_a_notebook.ipynb: 不是有效的 Jupyter 笔记本"
    assert ungraded["total"] == "0" and all(ungraded[c] == "0" for c in CHECK_IDS)


def test_numbers_have_no_float_noise():
    assert format_number(12.0000001) == "12"
    assert format_number(12.5) == "12.5"
    assert format_number(1e-05) == "0"
    assert format_number(-0.0) == "0"
    assert format_number(100 * 2 / 3, 2) == "66.67"
    assert format_number(None) == "" and format_number(float("nan")) == ""


def test_grades_fractional_points_and_missing_checks(batch):
    odd = copy.deepcopy(batch[1])
    odd["score"] = 66.0000001
    odd["checks"][1]["score"] = 3.9999999999
    odd["checks"] = [c for c in odd["checks"] if c["id"] != "loop.eval"]
    row = rows_of(grades_csv([odd], "en"))[1]
    assert row["notebook.runs"] == "4" and row["total"] == "66" and row["loop.eval"] == ""


def test_student_text_cannot_become_a_spreadsheet_formula(batch):
    hostile = copy.deepcopy(batch[3])
    hostile["submission_id"] = '=HYPERLINK("http://x","y")'
    hostile["error"] = "@SUM(1)\nsecond line"
    row = rows_of(grades_csv([hostile], "en"))[1]
    assert row["id"] == "'" + hostile["submission_id"]
    assert row["error"] == "'@SUM(1) second line"


def test_grades_file_has_a_bom_and_round_trips_through_csv_and_pandas(batch, tmp_path):
    path = write_grades_csv(batch, tmp_path / "grades.csv", "zh")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == HEADER and len(rows) == 2 + len(batch)
    frame = pd.read_csv(path, encoding="utf-8-sig")
    assert list(frame.columns) == HEADER
    assert frame.loc[0, "id"] == MAX_ROW_ID and frame.loc[0, "total"] == 100
    assert frame.loc[2, "lstm.forward"] == 0 and frame.loc[2, "total"] == 66
    assert frame.loc[4, "status"] == "bad_input" and "Jupyter" in frame.loc[4, "error"]
    # pandas' default utf-8 also strips the BOM: the first column is still "id"
    assert pd.read_csv(path).columns[0] == "id"


def test_grades_of_no_results_is_the_header_and_an_empty_max_row():
    rows = list(csv.reader(io.StringIO(grades_csv([], "en"))))
    assert rows[0] == HEADER and rows[1][0] == MAX_ROW_ID


# --- Gradescope -----------------------------------------------------------------------------------

def test_gradescope_exact_keys_and_values():
    result = fixture("fails_lstm_first_step_logits")
    data = gradescope_json(result, "zh")
    assert set(data) == {"score", "execution_time", "output", "output_format", "test_output_format", "extra_data",
                         "tests"}
    # Gradescope renders the top-level output as HTML unless told otherwise: plain text, explicitly
    assert data["output_format"] == data["test_output_format"] == "text"
    assert data["extra_data"]["rubric_sha256"] == result["rubric_sha256"] and data["extra_data"]["device"]
    assert data["score"] == 66.0 and data["execution_time"] == result["duration_s"]
    assert [t["name"] for t in data["tests"]] == list(CHECK_IDS)
    assert [t["number"] for t in data["tests"]] == [str(i) for i in range(1, len(CHECK_IDS) + 1)]
    for test in data["tests"]:
        assert set(test) == {"name", "number", "tags", "score", "max_score", "status", "output", "visibility"}
        assert test["status"] in ("passed", "failed") and test["tags"] == [test["name"].split(".")[0]]
        assert test["visibility"] == ("hidden" if test["name"].endswith(".sizes") else "visible")
    published = gradescope_json(result, "zh", hidden_as="after_published")["tests"]
    assert {t["visibility"] for t in published if t["name"].endswith(".sizes")} == {"after_published"}
    forward = data["tests"][CHECK_IDS.index("lstm.forward")]
    assert (forward["score"], forward["max_score"], forward["status"]) == (0.0, 10.0, "failed")
    assert "model(x)" in forward["output"]
    assert "可能原因：logits 来自第一个时间步" in forward["output"]
    assert "提示：" in forward["output"]
    assert data["tests"][CHECK_IDS.index("rnn.forward")]["status"] == "passed"
    assert sum(t["score"] for t in data["tests"]) == data["score"]


def test_gradescope_renders_in_english_from_the_stored_keys():
    data = gradescope_json(fixture("fails_lstm_first_step_logits"), "en")
    forward = data["tests"][CHECK_IDS.index("lstm.forward")]
    assert "likely cause:" in forward["output"] and "hint: Check all six equations" in forward["output"]
    # the fixture has hidden checks: Gradescope hides the total from students, so the text does not print it
    assert "Score: 66 / 100" not in data["output"]
    shown = gradescope_json(fixture("fails_lstm_first_step_logits"), "en", hidden_as="after_published")
    assert "Score: 66 / 100" in shown["output"]


def test_gradescope_hidden_check_is_hidden_and_other_statuses_fail():
    result = copy.deepcopy(fixture("scores_zero_untouched_template"))
    result["checks"][CHECK_IDS.index("lstm.train")]["visibility"] = "hidden"
    tests = {t["name"]: t for t in gradescope_json(result, "en")["tests"]}
    assert tests["lstm.train"]["visibility"] == "hidden"
    assert tests["lstm.forward"]["visibility"] == "visible"
    assert tests["lstm.forward"]["status"] == "failed"  # skipped -> failed: Gradescope knows only two
    assert tests["notebook.parses"]["status"] == "passed"


def test_gradescope_ungraded_says_why(tmp_path):
    result = fixture("ungraded_not_a_notebook")
    data = gradescope_json(result, "zh")
    assert data["score"] == 0.0 and "不是有效的 Jupyter 笔记本" in data["output"]
    assert all(t["status"] == "failed" for t in data["tests"])
    path = write_gradescope_json(result, tmp_path / "g" / "results.json", "zh")
    assert json.loads(path.read_text(encoding="utf-8")) == data


# --- JUnit ------------------------------------------------------------------------------------------

def test_junit_structure_counts_and_properties(batch):
    root = ET.fromstring(junit_xml(batch, "zh").encode("utf-8"))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [r["submission_id"] for r in batch]
    for suite, result in zip(suites, batch):
        cases = suite.findall("testcase")
        assert suite.get("tests") == str(len(cases)) == str(len(result["checks"]))
        statuses = [c["status"] for c in result["checks"]]
        assert suite.get("failures") == str(statuses.count("failed")) == str(len(suite.findall("testcase/failure")))
        assert suite.get("errors") == str(statuses.count("error")) == str(len(suite.findall("testcase/error")))
        assert suite.get("skipped") == str(statuses.count("skipped")) == str(len(suite.findall("testcase/skipped")))
        assert float(suite.get("time")) == pytest.approx(result["duration_s"])
        props = {p.get("name"): p.get("value") for p in suite.findall("properties/property")}
        assert set(props) == {"score", "max_score", "percent", "outcome", "device", "grader_version", "rubric_sha256",
                              "name", "section"}
        assert props["outcome"] == result["outcome"] and props["rubric_sha256"] == result["rubric_sha256"]
        assert [c.get("name") for c in cases] == [c["id"] for c in result["checks"]]
        assert {c.get("classname") for c in cases} == {f"grader.{result['submission_id']}"}
    totals = [sum(int(s.get(k)) for s in suites) for k in ("tests", "failures", "errors", "skipped")]
    assert totals == [int(root.get(k)) for k in ("tests", "failures", "errors", "skipped")]
    props = {p.get("name"): p.get("value") for p in suites[1].findall("properties/property")}
    assert (props["score"], props["max_score"], props["percent"]) == ("66", "100", "66")


def test_junit_failure_carries_message_diagnosis_hint_and_details(batch):
    root = ET.fromstring(junit_xml(batch, "en"))
    case = root.find("testsuite[@name='fails_lstm_first_step_logits']/testcase[@name='lstm.forward']")
    failure = case.find("failure")
    assert failure.get("type") == "first_step_logits"
    assert failure.get("message").startswith("model(x)")
    assert "likely cause:" in failure.text and "hint:" in failure.text and "max_abs_error:" in failure.text
    train = root.find("testsuite[@name='fails_lstm_first_step_logits']/testcase[@name='lstm.train']/failure")
    assert train.get("type") == "check_failed" and "curve:" not in train.text
    skipped = root.find("testsuite[@name='scores_zero_untouched_template']/testcase[@name='rnn.forward']/skipped")
    assert skipped is not None and skipped.get("message")
    ungraded = root.find("testsuite[@name='ungraded_not_a_notebook']")
    assert ungraded.find("testcase/error").get("type") == "check_error"
    assert "Jupyter" in ungraded.find("system-err").text


def test_junit_strips_characters_illegal_in_xml(tmp_path):
    result = copy.deepcopy(fixture("fails_lstm_first_step_logits"))
    nasty = "bad" + "".join(chr(c) for c in range(0x20)) + "\ud800\udfff\ufffe\uffff" + "end <&>\"'"
    result["submission_id"] = "stu" + nasty
    check = result["checks"][CHECK_IDS.index("lstm.forward")]
    check["message"] = nasty
    check["i18n"]["message"] = None  # keep the stored text as it is
    check["details"]["note"] = nasty
    path = write_junit_xml([result], tmp_path / "junit.xml", "en")
    root = ET.parse(path).getroot()  # a parser accepts it
    failure = root.find("testsuite/testcase[@name='lstm.forward']/failure")
    assert failure.get("message") == "bad\t\n\rend <&>\"'"  # attribute newlines come back as written
    assert root.find("testsuite").get("name") == "stubad\t\n\rend <&>\"'"
    assert "\x00" not in path.read_text(encoding="utf-8")


def test_xml_safe_keeps_every_legal_character():
    legal = "\t\n\r 汉字 é \U0001F600 \ud7ff \ue000 \ufffd"
    assert xml_safe(legal) == legal
    assert xml_safe("\x00\x08\x0b\x0c\x1f\ud800\udc00\ufffe") == ""


def test_a_lone_surrogate_in_a_csv_is_written_as_text(tmp_path: Path) -> None:
    from grader.report.grades_csv import write_csv_text

    path = write_csv_text("id,error\r\nbob,bad \udc80 name\r\n", tmp_path / "g.csv")
    assert "bad \\udc80 name" in path.read_text(encoding="utf-8-sig")
