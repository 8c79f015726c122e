"""A self-check result (issue #7): hidden checks were not run, and every output says so.

`grader check` is the student's self-check: it lists only the visible checks and
carries `self_check` (grader/report/results.py). Every renderer must name the
hidden checks and their points, say that TA grading uses fresh inputs and that a
pass here does not guarantee full marks, and never claim that everything passed.
A result without `self_check` renders exactly as before.
"""
from __future__ import annotations

import dataclasses
import io
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from grader.errors import BadInputError
from grader.report.gradescope import gradescope_json
from grader.report.html import render_submission_html
from grader.report.junit import PROPERTY_NAMES, junit_xml
from grader.report.results import (
    load_results,
    localise,
    self_check_notice,
    self_check_of,
    self_check_summary,
    ungraded_result,
    validate_result,
)
from grader.report.terminal import print_report
from grader.rubric import load_rubric

FIXTURES = Path(__file__).parent / "fixtures" / "results"
# Claims a self-check must never make: otter's "All tests passed!" and its kin, in both languages.
ALL_PASSED = re.compile(r"all (tests|checks) passed|passed all|全部通过|所有(检查|测试)(都|均)?通过|都通过了|满分通过",
                        re.IGNORECASE)


def _full() -> dict:
    return json.loads((FIXTURES / "passes_all_reference.json").read_text(encoding="utf-8"))


def _self_check(hidden: int = 2, points: float = 4.0) -> dict:
    """The reference's real self-check result (the course rubric hides rnn.sizes and lstm.sizes, 4 points).

    Other hidden counts only rewrite the summary: the renderers take the counts from it.
    """
    result = json.loads((FIXTURES / "self_check_passes_visible_reference.json").read_text(encoding="utf-8"))
    assert result["self_check"] == {"hidden_count": 2, "hidden_points": 4.0, "reference": "golden"}
    result["self_check"].update(hidden_count=hidden, hidden_points=points)
    return result


def _terminal(result: dict, lang: str) -> str:
    out = io.StringIO()
    print_report(result, lang, out)
    return out.getvalue()


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.banner: list[str] = []
        self.in_banner = 0
        self.banner_tags: list[dict] = []
        self.text_parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "data-self-check" in attrs:
            self.banner_tags.append(attrs)
            self.in_banner = 1
        elif self.in_banner:
            self.in_banner += 1

    def handle_endtag(self, tag):
        if self.in_banner:
            self.in_banner -= 1

    def handle_data(self, data):
        self.text_parts.append(data)
        if self.in_banner:
            self.banner.append(data)


def _page(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


# --- the notice ------------------------------------------------------------------------------------

@pytest.mark.parametrize("lang, hidden, points, passed, no_guarantee", [
    ("zh", "另有 2 项隐藏检查", "共 4 分", "通过了 20/20 项可见检查（96/96 分）", "本地自查通过并不保证最终满分"),
    ("en", "2 more hidden checks", "4 points in total", "20 of 20 visible checks passed (96/96 points)",
     "does not guarantee full marks"),
])
def test_terminal_names_hidden_checks_points_and_no_guarantee(lang, hidden, points, passed, no_guarantee):
    out = _terminal(_self_check(), lang)
    for phrase in (hidden, points, passed, no_guarantee):
        assert phrase in out
    assert ("新的随机输入" if lang == "zh" else "fresh random inputs") in out
    assert not ALL_PASSED.search(out)
    lines = out.rstrip("\n").splitlines()
    # The score line names it as the visible checks' score; the notice follows right below it.
    assert lines[-2] == ("自查得分（仅可见检查）：96 / 96" if lang == "zh"
                         else "Self-check score (visible checks only): 96 / 96")
    assert lines[-1] == self_check_notice(_self_check(), lang)


def test_exact_notice_in_both_languages():
    assert self_check_notice(_self_check(), "zh") == (
        "这是本地自查：通过了 20/20 项可见检查（96/96 分）。另有 2 项隐藏检查（共 4 分）只在助教评分时运行；"
        "评分时还会使用新的随机输入。本地自查通过并不保证最终满分。")
    assert self_check_notice(_self_check(), "en") == (
        "This is a local self-check: 20 of 20 visible checks passed (96/96 points). 2 more hidden checks "
        "(4 points in total) run only when the TAs grade, and grading also uses fresh random inputs. "
        "Passing this self-check does not guarantee full marks.")
    assert "1 more hidden check (2.5 points) runs only" in self_check_notice(_self_check(1, 2.5), "en")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_without_hidden_checks_it_still_says_fresh_inputs_and_no_guarantee(lang):
    notice = self_check_notice(_self_check(0, 0.0), lang)
    assert ("新的随机输入" if lang == "zh" else "fresh random inputs") in notice
    assert ("并不保证最终满分" if lang == "zh" else "does not guarantee full marks") in notice
    assert ("隐藏" if lang == "zh" else "hidden") not in notice
    assert not ALL_PASSED.search(_terminal(_self_check(0, 0.0), lang))


def test_a_failing_self_check_counts_only_the_passed_visible_checks():
    result = _self_check()
    result["checks"][3]["status"] = "failed"
    result["score"] -= result["checks"][3]["score"]
    result["checks"][3]["score"] = 0.0
    assert "通过了 19/20 项可见检查（94/96 分）" in self_check_notice(result, "zh")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_full_grading_result_renders_exactly_as_before(lang):
    result = _full()
    before = _terminal(result, lang)
    assert self_check_notice(result, lang) == ""
    for absent in ({}, {"self_check": None}):
        assert _terminal({**result, **absent}, lang) == before
        assert render_submission_html({**result, **absent}, lang) == render_submission_html(result, lang)
        assert junit_xml([{**result, **absent}], lang) == junit_xml([result], lang)
    assert "自查" not in before and "self-check" not in before.lower()
    assert before.rstrip("\n").splitlines()[-1] == ("得分：100 / 100" if lang == "zh" else "Score: 100 / 100")


def test_no_catalogue_message_claims_that_everything_passed():
    from grader.messages import LANGUAGES, catalogue

    for lang in LANGUAGES:
        claims = [key for key, value in catalogue(lang).items() if ALL_PASSED.search(value)]
        assert not claims, f"{lang}: {claims}"


# --- HTML ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["zh", "en"])
def test_html_banner_next_to_the_score_says_hidden_checks_and_no_guarantee(lang):
    html = render_submission_html(_self_check(), lang)
    page = _page(html)
    assert len(page.banner_tags) == 1 and page.banner_tags[0].get("role") == "note"
    banner = "".join(page.banner)
    assert self_check_notice(_self_check(), lang) in banner
    assert ("本地自查（非最终成绩）" if lang == "zh" else "Local self-check (not the final grade)") in banner
    # Right after the header that holds the score, before the checks.
    assert html.index("data-score") < html.index("data-self-check") < html.index('id="h-checks"')
    text = "".join(page.text_parts)
    assert ("自查得分（仅可见检查）" if lang == "zh" else "Self-check score (visible checks only)") in text
    assert ("可见检查：通过 20 项" if lang == "zh" else "visible checks: 20 passed") in text
    assert ("随作业发布的参考输出" if lang == "zh" else "packaged reference outputs") in text
    assert not ALL_PASSED.search(text)
    assert "<script" not in html


def test_html_without_self_check_has_no_banner():
    html = render_submission_html(_full(), "en")
    assert "data-self-check" not in html and "Self-check" not in html and "Grading report" in html


def test_html_banner_escapes_what_it_shows():
    result = _self_check()
    result["self_check"]["reference"] = "<img src=x onerror=alert(1)>"
    html = render_submission_html(result, "en")
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


# --- JUnit and Gradescope -------------------------------------------------------------------------------

def test_junit_suite_properties_and_system_out_for_a_self_check():
    root = ET.fromstring(junit_xml([_self_check()], "en").encode("utf-8"))
    suite = root.find("testsuite")
    props = {p.get("name"): p.get("value") for p in suite.findall("properties/property")}
    assert list(props)[:len(PROPERTY_NAMES)] == list(PROPERTY_NAMES)
    assert (props["self_check"], props["hidden_checks"], props["hidden_points"], props["reference"]) == (
        "true", "2", "4", "golden")
    assert props["max_score"] == "96"
    assert "does not guarantee full marks" in props["self_check_notice"]
    assert suite.find("system-out").text == self_check_notice(_self_check(), "en")
    assert len(suite.findall("testcase")) == 20


def test_junit_without_self_check_has_only_the_usual_properties():
    suite = ET.fromstring(junit_xml([_full()], "zh").encode("utf-8")).find("testsuite")
    assert [p.get("name") for p in suite.findall("properties/property")] == list(PROPERTY_NAMES)
    assert suite.find("system-out") is None


def test_gradescope_output_carries_the_notice():
    output = gradescope_json(_self_check(), "zh")["output"]
    assert "自查得分（仅可见检查）：96 / 96" in output and "本地自查通过并不保证最终满分" in output
    assert "本地自查" not in gradescope_json(_full(), "zh")["output"]


def test_ta_side_exports_still_render_a_self_check_result(tmp_path):
    from grader.report.outputs import write_outputs

    paths = write_outputs([_self_check(), _full()], tmp_path, "en")
    assert paths.grades_csv.is_file() and paths.summary_html.is_file()
    stored = json.loads(paths.results[0].read_text(encoding="utf-8"))
    assert stored["self_check"] == _self_check()["self_check"]


# --- the stored field ------------------------------------------------------------------------------

@pytest.mark.parametrize("value, problem", [
    ("yes", "self_check is not an object"),
    ([], "self_check is not an object"),
    ({"hidden_points": 4.0, "reference": "golden"}, "self_check.hidden_count None"),
    ({"hidden_count": -1, "hidden_points": 4.0, "reference": "golden"}, "self_check.hidden_count -1"),
    ({"hidden_count": 2.0, "hidden_points": 4.0, "reference": "golden"}, "hidden_count 2.0 is not a non-negative integer"),
    ({"hidden_count": True, "hidden_points": 4.0, "reference": "golden"}, "hidden_count True"),
    ({"hidden_count": 2, "hidden_points": -4.0, "reference": "golden"}, "self_check.hidden_points -4.0 is not a non-negative number"),
    ({"hidden_count": 2, "hidden_points": "4", "reference": "golden"}, "self_check.hidden_points '4'"),
    ({"hidden_count": 2, "hidden_points": 4.0}, "self_check.reference None is not a non-empty string"),
    ({"hidden_count": 2, "hidden_points": 4.0, "reference": 1}, "self_check.reference 1"),
])
def test_a_malformed_self_check_is_refused_naming_the_problem(tmp_path, value, problem):
    result = _full()
    result["self_check"] = value
    path = tmp_path / "r.json"
    path.write_text(json.dumps(result), encoding="utf-8")
    with pytest.raises(BadInputError, match=re.escape(problem)) as info:
        load_results(path, "en")
    assert "r.json" in info.value.message
    with pytest.raises(BadInputError):
        render_submission_html(result, "zh")


def test_absent_null_and_well_formed_self_checks_are_accepted():
    assert "self_check" not in validate_result(_full(), "x")
    assert validate_result({**_full(), "self_check": None}, "x")["self_check"] is None
    checked = validate_result(_self_check(), "x")
    assert self_check_of(checked) == {"hidden_count": 2, "hidden_points": 4.0, "reference": "golden"}
    assert self_check_of({**_full(), "self_check": {"hidden_count": -1}}) is None
    assert localise(_self_check(), "en")["self_check"] == _self_check()["self_check"]


def test_self_check_summary_counts_the_rubrics_hidden_checks():
    rubric = load_rubric()
    hidden = [spec for spec in rubric.checks.values() if spec.visibility == "hidden"]
    summary = self_check_summary(rubric)
    assert summary == {"hidden_count": len(hidden), "hidden_points": float(sum(s.points for s in hidden)),
                       "reference": "golden"}
    assert self_check_summary(rubric, "live")["reference"] == "live"


def test_an_ungraded_self_check_lists_only_the_visible_checks():
    base = load_rubric()
    last = list(base.checks.values())[-1]
    # One more hidden check than the rubric has, so the test means something whatever the rubric says.
    rubric = dataclasses.replace(base, checks={**base.checks, last.id: dataclasses.replace(last, visibility="hidden")})
    hidden = [spec for spec in rubric.checks.values() if spec.visibility == "hidden"]
    visible_points = sum(spec.points for spec in rubric.checks.values() if spec.visibility == "visible")
    self_check = self_check_summary(rubric)
    result = ungraded_result(submission_id="s", file="s.ipynb", outcome="timeout", error="too slow",
                             rubric=rubric, lang="en", self_check=self_check)
    plain = ungraded_result(submission_id="s", file="s.ipynb", outcome="timeout", error="too slow",
                            rubric=rubric, lang="en")
    assert result["self_check"] == self_check and self_check["hidden_count"] == len(hidden) >= 1
    assert [c["id"] for c in result["checks"]] == [s.id for s in rubric.checks.values() if s.visibility == "visible"]
    assert result["max_score"] == visible_points and result["score"] == 0
    assert "self_check" not in plain and [c["id"] for c in plain["checks"]] == list(rubric.checks)
    assert plain["max_score"] == rubric.max_score
    validate_result(result, "x")
    out = _terminal(result, "en")
    assert f"{len(hidden)} more hidden check" in out and "does not guarantee full marks" in out
    assert f"0 of {len(result['checks'])} visible checks passed" in out


def test_report_to_json_copies_the_reports_self_check():
    from grader.report import json_report

    rubric = load_rubric()
    from grader.submission import SubmissionReport

    report = SubmissionReport(notebook="s.ipynb", score=0.0, max_score=0.0, device="cpu", npu_remapped=False,
                              duration_s=1.0, checks=[], submission_id="s", epoch_cap=2, rubric_sha256=rubric.sha256,
                              grader_version="x")
    assert "self_check" not in json_report.report_to_json(report, rubric, "en")
    report.self_check = {"hidden_count": 2, "hidden_points": 4.0, "reference": "golden"}
    result = json_report.report_to_json(report, rubric, "en")
    assert result["self_check"] == report.self_check
    validate_result(result, "x")
