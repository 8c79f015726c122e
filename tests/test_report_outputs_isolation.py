"""One result never costs the class its outputs (issue #12 part 8).

write_outputs renders each report, export row, summary entry and similarity entry in
isolation: a result a renderer cannot take gets an error entry (a minimal page, JSON or
row saying so, in the language asked for), the failure is logged with the submission id,
and every other output is written as usual. `grader report` behaves the same.
"""
from __future__ import annotations

import copy
import csv
import io
import json
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from grader.batch import run
from grader.cli import main
from grader.messages import text
from grader.report import grades_csv, html, outputs
from grader.report.outputs import error_entry, write_outputs
from grader.report.results import load_results
from grader.report.summary import summarise
from grader.rubric import CHECK_IDS

FIXTURES = Path(__file__).parent / "fixtures" / "results"


def fixture(name: str, **changes) -> dict:
    result = copy.deepcopy(load_results(FIXTURES / f"{name}.json")[0])
    result.update(changes)
    return result


@pytest.fixture
def batch() -> list[dict]:
    return [fixture("passes_all_reference", submission_id="alice"),
            fixture("fails_lstm_first_step_logits", submission_id="bob"),
            fixture("scores_zero_untouched_template", submission_id="carol")]


def localise_trips_on(monkeypatch, submission_id: str) -> None:
    """localise() raises for one submission, as a bug of ours would (every renderer calls it first).

    Stored results no longer trip it by their shape: from_json gives a key of the wrong kind its neutral value."""
    from grader.report import results

    real = results.localise

    def fragile(result, lang):
        if result.get("submission_id") == submission_id and result.get("checks"):  # not its error entry
            raise RecursionError("deep")
        return real(result, lang)

    for module in (results, html, outputs, grades_csv):
        if hasattr(module, "localise"):
            monkeypatch.setattr(module, "localise", fragile)
    import grader.report.gradescope as gradescope
    import grader.report.junit as junit
    import grader.report.summary as summary_module
    for module in (gradescope, junit, summary_module):
        if hasattr(module, "localise"):
            monkeypatch.setattr(module, "localise", fragile)


def grades(path: Path) -> dict[str, dict[str, str]]:
    """grades.csv's submission rows by id, each as {column: cell}."""
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    return {row[0]: dict(zip(rows[0], row)) for row in rows[2:]}


def test_a_report_renderer_that_raises_for_one_student_costs_only_that_report(batch, tmp_path, monkeypatch):
    real = html.render_submission_html

    def fragile(result, lang):
        if result["submission_id"] == "bob":
            raise RecursionError("deep")
        return real(result, lang)

    monkeypatch.setattr(html, "render_submission_html", fragile)
    log = io.StringIO()
    paths = write_outputs(batch, tmp_path, "en", log=log)
    pages = {p.stem: p.read_text(encoding="utf-8") for p in paths.reports}
    assert text("outputs.report_failed_title", "en") in pages["bob"] and "<script" not in pages["bob"]
    assert "Content-Security-Policy" in pages["bob"]
    assert all(text("outputs.report_failed_title", "en") not in pages[s] for s in ("alice", "carol"))
    assert "bob" in log.getvalue() and "RecursionError" in log.getvalue() and "alice" not in log.getvalue()
    assert [row["percent"] for row in grades(paths.grades_csv).values()] == ["100", "66", "0"]  # every grade kept
    summary = paths.summary_html.read_text(encoding="utf-8")
    assert text("summary.kind_render_error", "en").split(":")[0] in summary
    assert len(paths.failures) == 1


def test_a_result_the_renderers_trip_on_gets_error_entries_and_the_others_are_written(batch, tmp_path,
                                                                                       monkeypatch):
    localise_trips_on(monkeypatch, "bob")
    log = io.StringIO()
    paths = write_outputs(batch, tmp_path, "zh", log=log)
    assert all(p.is_file() for p in paths.all())
    bob = grades(paths.grades_csv)["bob"]
    assert bob["percent"] == "66" and bob["error"] == text("outputs.render_failed", "zh")  # points kept, and why
    assert grades(paths.grades_csv)["alice"]["percent"] == "100"
    suites = {s.get("name"): s for s in ET.parse(paths.junit_xml).getroot().findall("testsuite")}
    assert set(suites) == {"alice", "bob", "carol"} and len(suites["alice"].findall("testcase")) == len(CHECK_IDS)
    gradescope = json.loads(paths.gradescope[1].read_text(encoding="utf-8"))
    assert gradescope["score"] == 66.0 and "bob" in gradescope["output"]
    assert text("outputs.report_failed_title", "zh") in paths.reports[1].read_text(encoding="utf-8")
    assert "bob" in log.getvalue() and "alice" not in log.getvalue()
    assert "bob" in paths.summary_html.read_text(encoding="utf-8")
    # the stored result is written as it was: re-rendering it later takes the same path
    assert json.loads(paths.results[1].read_text(encoding="utf-8")) == batch[1]


def test_a_class_level_row_that_raises_is_replaced_by_the_students_error_row(batch, tmp_path, monkeypatch):
    real = grades_csv.submission_row

    def fragile(result, columns):
        if result.get("poison"):
            raise OverflowError("boom")
        return real(result, columns)

    monkeypatch.setattr(grades_csv, "submission_row", fragile)
    batch[2]["poison"] = True
    log = io.StringIO()
    paths = write_outputs(batch, tmp_path, "en", log=log)
    rows = grades(paths.grades_csv)
    assert set(rows) == {"alice", "bob", "carol"}
    assert rows["carol"]["error"] == text("outputs.render_failed", "en") and rows["alice"]["error"] == ""
    assert "carol" in log.getvalue()
    # only the class-level entry was replaced: carol's own report is her real one
    assert text("outputs.report_failed_title", "en") not in paths.reports[2].read_text(encoding="utf-8")


def test_a_class_file_that_fails_anyway_is_written_from_error_entries(batch, tmp_path, monkeypatch):
    real = outputs.write_junit_xml
    calls = []

    def fails_once(results, path, lang):
        calls.append(len(results))
        if len(calls) == 1:
            raise ValueError("bug of ours")
        return real(results, path, lang)

    monkeypatch.setattr(outputs, "write_junit_xml", fails_once)
    log = io.StringIO()
    paths = write_outputs(batch, tmp_path, "en", log=log)
    assert calls == [3, 3]
    assert {s.get("name") for s in ET.parse(paths.junit_xml).getroot().findall("testsuite")} == {"alice", "bob", "carol"}
    assert "junit.xml" in log.getvalue() and "ValueError" in log.getvalue()
    assert all(p.is_file() for p in paths.all())


def test_a_result_that_is_not_json_serialisable_gets_a_loadable_error_result(batch, tmp_path):
    batch[0]["checks"][0]["details"] = {"bad": {1, 2}}  # a set: json.dumps raises
    paths = write_outputs(batch, tmp_path, "en", log=io.StringIO())
    stored = load_results(paths.results[0])[0]  # `grader report results/` can read it back
    assert stored["submission_id"] == "alice" and stored["checks"] == [] and stored["score"] == 100.0


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_error_entries_are_bilingual_and_render_everywhere(lang):
    entry = error_entry({"submission_id": 5, "score": float("nan"), "file": ["x"]}, "5", lang)
    assert entry["score"] == 0.0 and entry["file"] == "" and entry["outcome"] == "crashed"
    assert entry["error"] == text("outputs.render_failed", lang) and "outputs." not in entry["error"]
    outputs._render_class_level_alone(entry, lang)
    page = outputs.error_page("<b>\u202e5</b>", lang)
    assert "<b>" not in page and "\u202e" not in page and text("outputs.report_failed_title", lang) in page


def test_similarity_entries_render_in_isolation(batch, tmp_path):
    pairs = [{"a": "alice", "b": "bob", "score": 0.9, "classes": ["CustomLSTM"], "note": "n"},
             {"a": "alice", "b": "carol", "score": "not a number"},
             "not even a dict"]
    left_out = [{"id": "dave", "reason": "too_large", "note": "",
                 "note_i18n": {"key": "similarity.left_out_too_large", "params": {"limit": 65536, "tokens": 20000}}},
                {"id": "erin"}]
    summary = summarise(batch, pairs, left_out)
    assert [(p.a, p.b) for p in summary.similar] == [("alice", "bob"), ("?", "?"), ("alice", "carol")]
    assert summary.similar[2].note_text("en") == text("summary.similarity_entry_error", "en")
    paths = write_outputs(batch, tmp_path, "en", similar_pairs=pairs, similarity_left_out=left_out, log=io.StringIO())
    page = paths.summary_html.read_text(encoding="utf-8")
    assert text("summary.similarity_left_out", "en") in page and "dave" in page and "erin" in page
    assert "not compared: a class is too large" in page
    csv_text = paths.summary_csv.read_text(encoding="utf-8-sig")
    assert "similarity_left_out,dave,too_large" in csv_text


def test_left_out_notes_are_not_shown_when_similarity_did_not_run(batch):
    assert summarise(batch, None, [{"id": "dave"}]).similarity_left_out == ()


def test_grader_report_writes_every_other_student_beside_a_result_it_trips_on(batch, tmp_path, capsys,
                                                                             monkeypatch):
    stored = tmp_path / "stored"
    stored.mkdir()
    localise_trips_on(monkeypatch, "bob")
    for result in batch:
        (stored / f"{result['submission_id']}.json").write_text(json.dumps(result), encoding="utf-8")
    out = tmp_path / "out"
    assert main(["report", str(stored), "-o", str(out), "--lang", "en"]) == 0
    err = capsys.readouterr().err
    assert "bob" in err and "alice" not in err
    assert {p.name for p in (out / "reports").iterdir()} == {"alice.html", "bob.html", "carol.html"}
    assert (out / "summary.html").is_file() and set(grades(out / "grades.csv")) == {"alice", "bob", "carol"}


def test_a_failing_similarity_pass_is_logged_and_the_batch_goes_on(monkeypatch):
    import grader.similarity

    def broken(*_args, **_kwargs):
        raise MemoryError("the whole pass")

    monkeypatch.setattr(grader.similarity, "similarity_for_files", broken)
    err = io.StringIO()
    assert run._similarity(types.SimpleNamespace(submissions=[]), "en", err) is None
    assert "MemoryError" in err.getvalue()


def test_a_summary_that_fails_anyway_is_written_plain_without_similarity(batch, tmp_path, monkeypatch):
    real = outputs.summarise

    def fragile(results, similar_pairs=None, similarity_left_out=()):
        if similar_pairs is not None:
            raise KeyError("a bug of ours in the similarity section")
        return real(results, similar_pairs, similarity_left_out)

    monkeypatch.setattr(outputs, "summarise", fragile)
    log = io.StringIO()
    paths = write_outputs(batch, tmp_path, "en", similar_pairs=[], log=log)
    page = paths.summary_html.read_text(encoding="utf-8")
    assert all(sid in page for sid in ("alice", "bob", "carol"))
    assert text("summary.similarity_not_run", "en") in page
    assert "summary.html" in log.getvalue() and "KeyError" in log.getvalue()


def test_a_stored_key_of_the_wrong_kind_reads_back_as_its_neutral_value(batch, tmp_path):
    """`cells` as a string made the Gradescope and summary renderers raise; the contract now says what it is."""
    from grader.report.results import from_json

    tampered = copy.deepcopy(batch[1])
    tampered.update(cells="abc", timings=[1, 2], kernel_died="yes", epoch_cap=True)
    result = from_json(json.loads(json.dumps(tampered)), "tampered.json")
    assert (result["cells"], result["timings"], result["kernel_died"], result["epoch_cap"]) == ([], {}, False, 0)
    paths = write_outputs([result], tmp_path, "en", log=io.StringIO())
    assert paths.failures == []
