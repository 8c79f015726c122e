"""The class summary (numbers, CSV, HTML) and write_outputs, from stored results."""
from __future__ import annotations

import copy
import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

from grader.report.outputs import safe_name, safe_names, write_outputs
from grader.report.results import load_results
from grader.report.summary import SUMMARY_COLUMNS, summarise, summary_csv
from grader.report.summary_html import summary_html
from grader.rubric import CHECK_IDS

FIXTURES = Path(__file__).parent / "fixtures" / "results"


def fixture(name: str, **changes) -> dict:
    result = copy.deepcopy(load_results(FIXTURES / f"{name}.json")[0])
    result.update(changes)
    return result


@pytest.fixture
def batch() -> list[dict]:
    return [fixture("passes_all_reference"),
            fixture("fails_lstm_first_step_logits", submission_id="lstm1"),
            fixture("fails_lstm_first_step_logits", submission_id="lstm2"),
            fixture("fails_lstm_first_step_logits", submission_id="lstm3"),
            fixture("fails_rnn_grad_detached_hidden"),
            fixture("scores_zero_untouched_template"),
            fixture("ungraded_not_a_notebook")]


def test_histogram_counts_graded_submissions_in_ten_bins(batch):
    s = summarise(batch)
    assert [b.label for b in s.histogram] == [f"{10 * i}-{10 * i + 10}" for i in range(10)]
    # 100 -> last bin; 66 x3 -> 60-70; 94 -> 90-100; template 0 -> 0-10; the ungraded one is not counted
    assert [b.count for b in s.histogram] == [1, 0, 0, 0, 0, 0, 3, 0, 0, 2]
    assert s.graded_count == 6 and s.count == 7


def test_bin_edges_survive_float_noise():
    r = fixture("passes_all_reference", score=70 * 0.1 * 10, max_score=100.0)  # 70.00000000000001
    low = fixture("passes_all_reference", score=0.7 / 0.01, max_score=100.0)  # 69.99999999999999
    s = summarise([r, low])
    assert s.histogram[7].count == 2


def test_mean_and_median_over_graded(batch):
    s = summarise(batch)
    assert s.mean_percent == pytest.approx((100 + 66 * 3 + 94 + 0) / 6)
    assert s.median_percent == pytest.approx(66.0)
    assert summarise([]).mean_percent is None


def test_pass_rate_of_each_check_over_graded_submissions(batch):
    rates = {c.check_id: c for c in summarise(batch).checks}
    assert list(rates) == list(CHECK_IDS)
    forward = rates["lstm.forward"]
    assert (forward.passed, forward.failed, forward.skipped, forward.total) == (2, 3, 1, 6)
    assert forward.rate == pytest.approx(2 / 6)
    assert (rates["rnn.grad"].passed, rates["rnn.grad"].total) == (4, 6)
    assert rates["notebook.parses"].rate == 1.0  # the ungraded error statuses do not count


def test_mistakes_counted_once_per_submission_most_common_first(batch):
    mistakes = summarise(batch).mistakes
    assert [(m.code, m.count) for m in mistakes] == [("first_step_logits", 3), ("detached_hidden", 1)]
    assert mistakes[0].checks == ("lstm.forward", "lstm.grad")
    assert "第一个时间步" in mistakes[0].text("zh")
    assert "first time step" in mistakes[0].text("en")


def test_problems_list_ungraded_kernel_deaths_and_cell_timeouts(batch):
    died = fixture("passes_all_reference", submission_id="died", kernel_died=True)
    slow_cell = fixture("passes_all_reference", submission_id="slowcell")
    slow_cell["cells"][3]["status"] = "timeout"
    s = summarise([*batch, died, slow_cell])
    problems = {p.row.submission_id: p for p in s.problems}
    assert set(problems) == {"ungraded_not_a_notebook", "died", "slowcell"}
    assert problems["ungraded_not_a_notebook"].kinds == ("bad_input",)
    assert "Jupyter" in problems["ungraded_not_a_notebook"].error
    assert problems["died"].kinds == ("kernel_died",)
    assert problems["slowcell"].kinds == ("cell_timeout",)
    assert problems["slowcell"].cells == (slow_cell["cells"][3]["index"],)


def test_slowest_top_ten_by_duration():
    results = [fixture("passes_all_reference", submission_id=f"s{i:02d}", duration_s=float(i)) for i in range(14)]
    slowest = summarise(results).slowest
    assert [r.submission_id for r in slowest] == [f"s{i:02d}" for i in range(13, 3, -1)]


def test_similarity_not_run_none_found_and_pairs(batch):
    assert summarise(batch).similar is None
    assert summarise(batch, similar_pairs=[]).similar == ()
    pairs = [{"a": "lstm1", "b": "lstm2", "score": 0.5, "classes": ["CustomLSTM"], "note": "cells 7-9"},
             {"a": "lstm2", "b": "lstm3", "score": 0.97, "classes": ["CustomRNN", "CustomLSTM"], "note": ""}]
    similar = summarise(batch, similar_pairs=pairs).similar
    assert [(p.a, p.b, p.score) for p in similar] == [("lstm2", "lstm3", 0.97), ("lstm1", "lstm2", 0.5)]


def test_similarity_pairs_from_the_similarity_module_render_their_note_in_each_language(batch):
    from grader.messages import Msg
    from grader.similarity import SimilarPair as FoundPair

    note = Msg("similarity.note", {"classes": "CustomLSTM", "percent": 97, "where": "lstm1 3:1-20"})
    found = FoundPair(a="lstm1", b="lstm2", score=0.97, classes=("CustomLSTM",), note="(stored)", note_msg=note)
    pair = summarise(batch, similar_pairs=[found.to_dict()]).similar[0]
    assert pair.note_text("zh") != pair.note_text("en")
    assert "97" in pair.note_text("zh") and "97" in pair.note_text("en")
    page = summary_html(summarise(batch, [found.to_dict()]), "en")
    assert pair.note_text("en").split()[0] in page


def test_summary_csv_is_one_long_table(batch):
    pairs = [{"a": "lstm1", "b": "lstm2", "score": 0.9, "classes": ["CustomLSTM"], "note": "=cmd"}]
    text = summary_csv(summarise(batch, pairs), "zh")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(SUMMARY_COLUMNS)
    assert all(len(r) == len(SUMMARY_COLUMNS) for r in rows)
    by = {}
    for r in rows[1:]:
        by.setdefault(r[0], []).append(r)
    assert set(by) == {"overview", "histogram", "check", "mistake", "problem", "slowest", "similarity"}
    assert ["overview", "submissions", "7", "", "", "提交数"] in by["overview"]
    assert ["histogram", "60-70", "", "3", "6", ""] in by["histogram"]
    assert [r[1] for r in by["check"]] == list(CHECK_IDS)
    assert by["mistake"][0][:5] == ["mistake", "first_step_logits", "", "3", "6"]
    assert "第一个时间步" in by["mistake"][0][5]
    assert by["problem"][0][1:3] == ["ungraded_not_a_notebook", "bad_input"]
    assert by["similarity"] == [["similarity", "lstm1 / lstm2", "0.9", "", "", "CustomLSTM; =cmd"]]
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    assert list(frame.columns) == list(SUMMARY_COLUMNS)
    not_run = list(csv.reader(io.StringIO(summary_csv(summarise(batch), "en"))))
    assert ["similarity", "not_run", "", "", "", "Similarity was not run for this batch."] in not_run


@pytest.mark.parametrize("lang, words", [("zh", ["班级汇总", "各检查项通过率", "本批次未运行相似度检查"]),
                                         ("en", ["Class summary", "Pass rate of each check", "Similarity was not run"])])
def test_summary_html_renders_in_each_language(batch, lang, words):
    page = summary_html(summarise(batch), lang, [f"reports/{i}.html" for i in range(len(batch))])
    for word in words:
        assert word in page
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page.lower() and "http://" not in page and "https://" not in page
    assert '<a href="reports/1.html">lstm1</a>' in page
    assert page.count("<rect ") == 10  # one bar per bin, from numbers only


def test_summary_html_escapes_hostile_ids_and_notes(batch):
    batch[1]["submission_id"] = "<script>x</script>"
    batch[1]["file"] = '<img src=x onerror="alert(1)">'
    pairs = [{"a": "<script>x</script>", "b": "lstm2", "score": 0.9, "classes": ["<b>C</b>"], "note": "<i>n</i>"}]
    page = summary_html(summarise(batch, pairs), "en", ['reports/"><script>.html'] * len(batch))
    assert "<script>x</script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert "<img" not in page and "<b>C</b>" not in page and "<i>n</i>" not in page
    assert "flagged for human review, not a penalty" in page
    assert 'href="reports/&#34;&gt;&lt;script&gt;.html"' in page


def test_safe_names_cannot_escape_and_stay_unique():
    ids = ["../../etc/passwd", "a/b\\c", "..", "", "con", "x\x00y\x1f", "dup", "dup", "DUP", "é" * 200, " .hidden. "]
    names = safe_names(ids)
    assert len(set(n.lower() for n in names)) == len(names)
    for name in names:
        assert name and "/" not in name and "\\" not in name and ".." not in name
        assert not name.startswith(".") and all(ord(ch) >= 32 for ch in name)
        assert len(name.encode("utf-8")) <= 110
    assert names[0] == "_._etc_passwd" and names[1] == "a_b_c" and names[5] == "xy"
    assert names[6:9] == ["dup", "dup-2", "DUP-3"]
    assert names[4] == "_con" and names[2] == "submission" and names[3] == "submission-2"
    assert safe_name("张三_2024001") == "张三_2024001"


def test_write_outputs_writes_every_promised_file(batch, tmp_path):
    batch[0]["submission_id"] = "../../etc/passwd"
    batch[2]["submission_id"] = batch[1]["submission_id"]  # a duplicate id
    out = tmp_path / "out"
    paths = write_outputs(batch, out, "zh", similar_pairs=[])
    for path in paths.all():
        assert path.is_file() and out.resolve() in path.resolve().parents
    assert {p.name for p in out.iterdir()} == {"summary.html", "summary.csv", "grades.csv", "grades.xlsx", "junit.xml",
                                               "reports", "gradescope", "results"}
    assert [p.name for p in paths.summary_files()] == ["summary.html", "summary.csv", "grades.csv", "grades.xlsx",
                                                         "junit.xml"]
    assert all(folder.is_dir() for folder in paths.folders())
    assert len(set(paths.names)) == len(batch) and paths.names[1] != paths.names[2]
    assert not (tmp_path / "etc").exists()
    assert [p.name for p in paths.reports] == [f"{n}.html" for n in paths.names]
    assert [p.parent.name for p in paths.gradescope] == paths.names
    assert [p.name for p in paths.results] == [f"{n}.json" for n in paths.names]
    # the stored results re-load as the same results (what `grader report out/results` reads)
    again = [json.loads(p.read_text(encoding="utf-8")) for p in paths.results]
    assert again == batch
    assert len(load_results(out / "results")) == len(batch)
    assert json.loads(paths.gradescope[1].read_text(encoding="utf-8"))["score"] == 66.0
    assert paths.grades_csv.read_bytes().startswith(b"\xef\xbb\xbf")
    assert paths.summary_csv.read_bytes().startswith(b"\xef\xbb\xbf")
    assert len(ET.parse(paths.junit_xml).getroot().findall("testsuite")) == len(batch)
    page = paths.summary_html.read_text(encoding="utf-8")
    for name in paths.names:
        assert f'href="reports/{name}.html"' in page or "passwd" in name
    assert "已运行相似度检查，没有标记任何一对提交" in page


def test_write_outputs_of_an_empty_batch_still_writes_the_class_files(tmp_path):
    paths = write_outputs([], tmp_path, "en")
    assert all(p.is_file() for p in paths.summary_files()) and all(f.is_dir() for f in paths.folders())
    assert list(csv.reader(io.StringIO(paths.grades_csv.read_text(encoding="utf-8-sig"))))[1][0] == "POINTS_POSSIBLE"
