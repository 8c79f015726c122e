"""The stored-result contract every renderer relies on (grader/report/results.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.errors import BadInputError
from grader.messages import Msg, render
from grader.report.results import load_results, localise, ungraded_result, validate_result
from grader.rubric import CHECK_IDS, load_rubric

RESULTS = Path(__file__).parent / "fixtures" / "results"


def test_every_stored_fixture_is_a_valid_result():
    results = load_results(RESULTS)
    assert len(results) == len(list(RESULTS.glob("*.json")))
    hidden = load_rubric().hidden_ids()
    for result in results:
        # A self-check lists the visible checks only; full grading lists them all.
        expected = [c for c in CHECK_IDS if not (result.get("self_check") and c in hidden)]
        assert [c["id"] for c in result["checks"]] == expected
        assert result["outcome"] in ("graded", "bad_input")


def test_a_chinese_result_renders_in_english_from_its_message_keys():
    zh = json.loads((RESULTS / "fails_lstm_first_step_logits.json").read_text(encoding="utf-8"))
    en = localise(zh, "en")
    forward = next(c for c in en["checks"] if c["id"] == "lstm.forward")
    assert "first time step" in forward["diagnosis"]
    assert forward["hint"] and not any("\u4e00" <= ch <= "\u9fff" for ch in forward["hint"])
    parses = next(c for c in en["checks"] if c["id"] == "notebook.parses")
    assert parses["message"] == "the file is a valid notebook"
    assert zh["checks"][0]["message"] != parses["message"], "localise must not change its input"


def test_the_english_fixture_matches_the_chinese_one_rendered_in_english():
    zh = json.loads((RESULTS / "passes_all_reference.json").read_text(encoding="utf-8"))
    en = json.loads((RESULTS / "passes_all_reference.en.json").read_text(encoding="utf-8"))
    # Messages carry run-specific numbers (timings); the ones without any must agree exactly.
    for mine, theirs in zip(localise(zh, "en")["checks"], en["checks"]):
        if mine["id"] in ("notebook.parses", "rnn.defined", "lstm.defined", "rnn.no_builtin"):
            assert mine["message"] == theirs["message"]


def test_nested_messages_survive_the_json_round_trip():
    msg = Msg("loops.loop_problems", {"problems": [Msg("loops.problem_no_step", {"model": Msg("loops.model_rnn")})]})
    assert Msg.from_json(json.loads(json.dumps(msg.to_json()))) == msg
    assert Msg.from_json({"params": {}}) is None and Msg.from_json("text") is None


def test_an_ungraded_result_lists_every_rubric_check_at_zero():
    rubric = load_rubric()
    result = ungraded_result(submission_id="s1", file="s1.ipynb", outcome="timeout", error="too slow",
                             rubric=rubric, lang="en")
    assert [c["id"] for c in result["checks"]] == list(CHECK_IDS)
    assert all(c["score"] == 0 and c["status"] == "error" for c in result["checks"])
    assert result["max_score"] == rubric.max_score and result["score"] == 0
    assert "time limit" in result["checks"][0]["message"] and "too slow" in result["checks"][0]["message"]
    assert "超出时间限制" in localise(result, "zh")["checks"][0]["message"]
    with pytest.raises(ValueError):
        ungraded_result(submission_id="s", file="f", outcome="graded", error="", rubric=rubric, lang="en")


@pytest.mark.parametrize("content, problem", [
    ("[1, 2]", "not a JSON object"),
    ('{"schema": 1}', "missing"),
    ('{"schema": 2, "notebook": "a", "score": 0, "max_score": 0, "checks": []}', "schema 2"),
    ('{"schema": 1, "notebook": "a", "score": 0, "max_score": 0, "checks": [{"id": "x"}]}', "lacks"),
    ("{not json", "not JSON"),
])
def test_a_file_that_is_not_a_result_is_named_with_its_problem(tmp_path, content, problem):
    path = tmp_path / "r.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BadInputError, match=problem) as info:
        load_results(path, "en")
    assert "r.json" in info.value.message


def test_an_empty_folder_or_missing_path_says_where_it_looked(tmp_path):
    for path in (tmp_path, tmp_path / "nope.json"):
        with pytest.raises(BadInputError, match="no results found"):
            load_results(path, "en")


def test_old_results_without_the_new_keys_get_defaults():
    data = {"schema": 1, "notebook": "dir/alice.ipynb", "score": 1, "max_score": 2, "checks": []}
    result = validate_result(data, "x")
    assert result["submission_id"] == "alice" and result["outcome"] == "graded" and result["error"] is None


def test_graded_and_ungraded_results_have_the_same_keys_from_one_builder():
    """They were built in two places and drifted (an ungraded result had no `protections`)."""
    from grader.report.json_report import report_to_json
    from grader.report.results import StoredCheck, StoredResult, ungraded_result
    from grader.rubric import load_rubric
    from grader.sandbox import base_protections
    from grader.submission import SubmissionReport

    rubric = load_rubric()
    report = SubmissionReport(notebook="a.ipynb", score=0.0, max_score=100.0, device="cpu", npu_remapped=False,
                              duration_s=1.0, checks=[], protections=base_protections(False, "test"))
    graded = report_to_json(report, rubric, "en")
    ungraded = ungraded_result(submission_id="b", file="b.ipynb", outcome="crashed", error="x", rubric=rubric,
                               lang="en")
    assert set(graded) == set(ungraded) == set(StoredResult.__required_keys__)
    assert set(ungraded["checks"][0]) == set(StoredCheck.__required_keys__)
    assert graded["protections"] and ungraded["protections"] is None


def test_a_result_stored_before_a_key_existed_reads_back_with_every_key(tmp_path):
    from grader.report.results import StoredResult, load_results

    old = {"schema": 1, "notebook": "old.ipynb", "score": 1.0, "max_score": 2.0,
           "checks": [{"id": "rnn.defined", "status": "passed", "score": 1.0, "max_score": 2.0}]}
    (tmp_path / "old.json").write_text(json.dumps(old), encoding="utf-8")
    [result] = load_results(tmp_path / "old.json", "en")
    assert set(StoredResult.__required_keys__) <= set(result)
    assert result["loader_workers"] == [] and result["protections"] is None and result["outcome"] == "graded"


def test_the_device_note_follows_the_requested_language_where_its_message_was_stored():
    """The note says why this device (grader/devices.py); stored as text in the run's language and as a message."""
    zh = json.loads((RESULTS / "passes_all_reference.json").read_text(encoding="utf-8"))
    zh["device_note"] = render(Msg("exec.device_auto_cpu"), "zh")
    zh["device_note_i18n"] = Msg("exec.device_auto_cpu").to_json()
    en = localise(zh, "en")
    assert en["device_note"] == render(Msg("exec.device_auto_cpu"), "en") != zh["device_note"]
    del zh["device_note_i18n"]  # a result from an older grader keeps its note as it was written
    assert localise(zh, "en")["device_note"] == zh["device_note"]
