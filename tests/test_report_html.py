"""The per-submission HTML report, rendered from the stored result fixtures (real grader runs)."""
from __future__ import annotations

import copy
import itertools
import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from grader.errors import BadInputError
from grader.report import svg_plot
from grader.report.html import render_submission_html, write_submission_html

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "results"
FIXTURE_FILES = sorted(FIXTURES.glob("*.json"))
FORBIDDEN_TAGS = {"script", "iframe", "object", "embed", "frame", "frameset", "applet", "base", "link", "form", "img"}
URL_ATTRIBUTES = {"src", "href", "action", "formaction", "data", "poster", "xlink:href", "background"}


def _load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


class _Page(HTMLParser):
    """Every start tag with its attributes, and the page's visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text_parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text_parts.append(data)

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    def with_attr(self, name: str) -> list[tuple[str, dict[str, str | None]]]:
        return [(tag, attrs) for tag, attrs in self.tags if name in attrs]


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("fixture", FIXTURE_FILES, ids=lambda p: p.stem)
def test_every_fixture_renders_one_row_per_check_in_both_languages(fixture: Path, lang: str):
    result = json.loads(fixture.read_text(encoding="utf-8"))
    page = _parse(render_submission_html(result, lang))

    row_ids = [attrs["data-check-id"] for _, attrs in page.with_attr("data-check-id")]
    assert row_ids == [c["id"] for c in result["checks"]]
    html_tag = next(attrs for tag, attrs in page.tags if tag == "html")
    assert html_tag["lang"] == ("zh-CN" if lang == "zh" else "en")


@pytest.mark.parametrize("fixture", FIXTURE_FILES, ids=lambda p: p.stem)
def test_page_is_self_contained_no_scripts_no_external_references(fixture: Path):
    html = render_submission_html(json.loads(fixture.read_text(encoding="utf-8")), "en")
    page = _parse(html)

    assert {tag for tag, _ in page.tags} & FORBIDDEN_TAGS == set()
    for tag, attrs in page.tags:
        assert not [a for a in attrs if a.startswith("on")], f"event handler on <{tag}>"
        for name in URL_ATTRIBUTES & set(attrs):
            assert not re.match(r"\s*(https?:|//|javascript:|data:)", attrs[name] or "", re.I), (tag, name)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert "url(" not in html and "@import" not in html
    csp = [attrs for tag, attrs in page.tags if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in (csp[0]["content"] or "")
    assert any(tag == "meta" and attrs.get("name") == "viewport" for tag, attrs in page.tags)


def test_the_only_http_text_is_the_escaped_student_text_and_the_svg_namespace():
    html = render_submission_html(_load("hostile_cell_html_script.json"), "en")

    for match in re.finditer(r"https?://[^\s\"'<&]*", html):
        before = html[max(0, match.start() - 40):match.start()]
        assert match.group() == "http://www.w3.org/2000/svg" or "&#34;" in before or "&quot;" in before, before


def test_hostile_student_markup_is_shown_as_text_never_as_markup():
    html = render_submission_html(_load("hostile_cell_html_script.json"), "en")
    page = _parse(html)

    assert "<script" not in html.lower() and "<iframe" not in html.lower() and "<img" not in html.lower()
    assert not any(a.startswith("on") for _, attrs in page.tags for a in attrs)
    # The student's strings are still there for the reader, as text.
    assert '<script>document.title="pwned"</script>' in page.text
    assert "<img src=x onerror=\"alert(1)\">" in page.text
    assert "&lt;script&gt;" in html


def test_failing_cell_shows_its_source_and_traceback_in_pre_blocks():
    html = render_submission_html(_load("hostile_cell_html_script.json"), "en")
    blocks = re.findall(r'<pre class="(source|traceback)">(.*?)</pre>', html, re.S)

    assert [kind for kind, _ in blocks] == ["source", "traceback"]
    assert "raise ValueError(" in blocks[0][1]
    assert "ValueError" in blocks[1][1] and "Traceback" in blocks[1][1]
    assert 'data-failed-cell="4"' in html  # index 3, counted from 1 like every grader message


def test_failed_forward_check_shows_diagnosis_shapes_and_largest_error():
    result = _load("fails_lstm_first_step_logits.json")
    html = render_submission_html(result, "zh")
    row = _check_row(html, "lstm.forward")

    forward = next(c for c in result["checks"] if c["id"] == "lstm.forward")
    assert "logits 来自第一个时间步" in row  # the diagnosis, in Chinese
    assert "可能原因" in row and "提示" in row
    assert "0.6659" in row  # max_abs_error.plain = 0.66593...
    assert "(4, 3)" in row  # expected and found output shapes
    assert "atol=1e-08, rtol=1e-06 (float64)" in row
    assert forward["details"]["max_abs_error"]["plain"] == pytest.approx(0.6659, abs=1e-4)


def test_failed_gradient_check_marks_each_differing_parameter_with_its_error():
    html = render_submission_html(_load("fails_lstm_first_step_logits.json"), "en")
    row = _check_row(html, "lstm.grad")

    assert "Likely cause:" in row and "first time step" in row
    assert re.search(r'<tr class="bad">\s*<td>fc.weight</td>\s*<td class="num">1.118</td>\s*<td>gradient differs</td>', row)
    assert re.search(r"<tr>\s*<td>fc.bias</td>\s*<td class=\"num\">0</td>\s*<td>ok</td>", row)
    assert row.count('<tr class="bad">') == 13


def test_detached_hidden_gradient_lists_only_the_recurrent_parameters_as_wrong():
    html = render_submission_html(_load("fails_rnn_grad_detached_hidden.json"), "en")
    row = _check_row(html, "rnn.grad")

    bad = re.findall(r'<tr class="bad">\s*<td>([^<]+)</td>', row)
    assert bad == ["W_xh", "W_hh", "b_h"]
    assert "2.53" in row


def test_gradient_problem_lists_get_their_own_states():
    result = _load("fails_rnn_grad_detached_hidden.json")
    check = next(c for c in result["checks"] if c["id"] == "rnn.grad")
    check["details"].update(wrong=["W_xh"], no_grad=["W_hh"], not_registered=["b_h"], unused=["W_ho"])
    row = _check_row(render_submission_html(result, "en"), "rnn.grad")

    for name, state in (("W_xh", "gradient differs"), ("W_hh", "no gradient"),
                        ("b_h", "not a registered parameter"), ("W_ho", "not used in forward")):
        assert re.search(rf"<td>{name}</td>.*?<td>{state}</td>", row, re.S), name


def test_unknown_detail_keys_render_as_a_key_value_table():
    result = _load("fails_rnn_grad_detached_hidden.json")
    check = next(c for c in result["checks"] if c["id"] == "rnn.grad")
    check["details"]["brand_new_metric"] = 0.000123456
    check["details"]["nested_<b>thing</b>"] = {"a": [1, 2], "b": None}
    row = _check_row(render_submission_html(result, "en"), "rnn.grad")

    assert re.search(r"<th scope=\"row\">brand_new_metric</th>\s*<td>0.0001235</td>", row)
    assert "nested_&lt;b&gt;thing&lt;/b&gt;" in row and "a=(1, 2), b=—" in row


def test_training_curve_svg_has_one_point_per_epoch_and_the_threshold_line():
    result = _load("fails_lstm_first_step_logits.json")
    curve = next(c for c in result["checks"] if c["id"] == "lstm.train")["details"]["curve"]
    html = render_submission_html(result, "en")
    section = html[html.index("data-training"):]
    section = section[:section.index("</section>")]

    svgs = re.findall(r"<svg.*?</svg>", section, re.S)
    assert len(svgs) == 2
    for svg in svgs:
        points = re.search(r'<polyline class="series" points="([^"]+)"', svg).group(1).split()
        assert len(points) == len(curve) == 20  # a failing model runs every epoch of the rubric
        assert len(re.findall(r"<circle ", svg)) == len(curve)
        assert all(re.fullmatch(r"-?\d+\.\d,-?\d+\.\d", p) for p in points)
    details = next(c for c in result["checks"] if c["id"] == "lstm.train")["details"]
    assert details["threshold"] == 0.80
    assert 'class="hline"' in svgs[1] and "threshold 80%" in svgs[1]
    assert f"best held-out accuracy {details['best_accuracy']:.1%}, required 80%" in section


def test_student_loss_curve_is_a_second_chart_and_absent_without_a_curve():
    with_curve = render_submission_html(_load("fails_lstm_first_step_logits.json"), "en")
    section = with_curve[with_curve.index("data-student-curve"):]
    points = re.search(r'<polyline class="series" points="([^"]+)"', section).group(1).split()
    assert len(points) == 2

    without = render_submission_html(_load("scores_zero_untouched_template.json"), "en")
    assert "data-student-curve" not in without and "data-training" not in without


def test_ungraded_result_shows_its_error_prominently():
    result = _load("ungraded_not_a_notebook.json")
    html = render_submission_html(result, "zh")
    alert = re.search(r"<div class=\"alert error\" role=\"alert\" data-ungraded>(.*?)</div>", html, re.S).group(1)

    assert result["error"] in alert
    assert "输入无效" in alert
    assert "data-ungraded" not in render_submission_html(_load("passes_all_reference.json"), "zh")


def test_score_is_shown_with_its_percentage():
    html = render_submission_html(_load("fails_lstm_first_step_logits.json"), "en")
    assert re.search(r"<div class=\"big\" data-score>66 / 100</div>", html)
    assert ">66%<" in html


def test_hidden_checks_are_listed_and_marked_hidden():
    result = _load("passes_all_reference.json")  # TA grading: the rubric's hidden *.sizes checks ran
    hidden = [c["id"] for c in result["checks"] if c["visibility"] == "hidden"]
    assert hidden == ["rnn.sizes", "lstm.sizes"]
    result["checks"][3]["visibility"] = "hidden"
    page = _parse(render_submission_html(result, "en"))

    hidden_rows = [attrs["data-check-id"] for _, attrs in page.with_attr("data-check-id")]
    assert result["checks"][3]["id"] in hidden_rows and set(hidden) <= set(hidden_rows)
    assert len(page.with_attr("data-hidden")) == 3


def test_shell_commands_device_and_remapping_are_reported():
    result = _load("fails_lstm_first_step_logits.json")
    html = render_submission_html(result, "en")
    page = _parse(html)

    assert "!pip install librosa==0.11.0" in page.text and "!unzip -q -n data.zip" in page.text
    assert re.search(r"NPU calls remapped</th><td class=\"mono\">yes</td>", html)
    # the note was stored in Chinese, with its message: the English page says it in English
    assert re.search(r"Device</th><td class=\"mono\">cpu — computing on the CPU \(no NPU or CUDA device found\)</td>", html)
    assert "Running the notebook" in html and f"{result['timings']['execute_s']:.2f} s" in html


def test_the_caps_the_notebook_ran_under_are_reported_and_explain_its_loss_curve():
    result = _load("fails_lstm_first_step_logits.json")
    result["epoch_cap"], result["batch_cap"] = 2, 4
    en, zh = render_submission_html(result, "en"), render_submission_html(result, "zh")
    assert "epoch loops capped at 2, each DataLoader pass inside them at 4 batches" in en
    assert "训练轮数上限 2，其中每次遍历 DataLoader 最多 4 个批次" in zh
    assert "at 2 epochs of at most 4 batches each, so these are not the losses of a full run" in en
    assert "每轮最多 4 个批次" in zh[zh.index("data-student-curve"):]
    result.pop("batch_cap")  # a result stored before the batch cap: no batch figure, the older sentence
    older = render_submission_html(result, "en")
    assert "epoch loops capped at 2; DataLoader workers: 0" in older
    assert "the grader caps training loops at 2 epochs)" in older


def test_messages_follow_the_requested_language_not_the_stored_one():
    result = _load("passes_all_reference.json")  # stored in Chinese
    assert result["lang"] == "zh"
    html = render_submission_html(result, "en")
    assert "all 19 code cells ran without error" in html
    assert "全部 19 个代码单元格" not in html


def test_rendering_leaves_the_callers_result_untouched():
    result = _load("fails_lstm_first_step_logits.json")
    before = copy.deepcopy(result)
    render_submission_html(result, "en")
    assert result == before


def test_not_a_result_is_refused_with_bad_input():
    with pytest.raises(BadInputError):
        render_submission_html({"schema": 1, "checks": []}, "en")


def test_write_creates_folders_and_returns_the_path(tmp_path: Path):
    path = write_submission_html(_load("passes_all_reference.json"), tmp_path / "a" / "b" / "r.html", "zh")
    assert path.is_file() and path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_svg_chart_escapes_its_text_and_drops_non_finite_values():
    chart = svg_plot.line_chart(svg_plot.Chart(
        title='<script>alert(1)</script>', x_label="x & y", y_label='"quoted"',
        series=[svg_plot.Series("s", [(1, 1.0), (2, float("nan")), (3, float("inf")), (4, 2.0)])],
        hlines=[svg_plot.HLine(1.5, "<b>limit</b>")]))
    page = _parse(str(chart))

    assert {tag for tag, _ in page.tags} & FORBIDDEN_TAGS == set()
    assert "<script>alert(1)</script>" in page.text and "<b>limit</b>" in page.text and "x & y" in page.text
    points = re.search(r'points="([^"]+)"', str(chart)).group(1).split()
    assert len(points) == 2


def test_nice_ticks_cover_the_range_with_round_steps():
    for low, high in ((1.101, 1.151), (0.0, 1.0), (16.5, 16.77), (-3.0, 250.0), (1e-5, 3e-5)):
        ticks = svg_plot.nice_ticks(low, high)
        assert ticks[0] <= low and ticks[-1] >= high
        steps = {round(b - a, 12) for a, b in itertools.pairwise(ticks)}
        assert len(steps) == 1
        mantissa = steps.pop() / 10 ** math.floor(math.log10(ticks[1] - ticks[0]))
        assert round(mantissa, 6) in (1, 2, 2.5, 5)
        assert 3 <= len(ticks) <= 12
    flat = svg_plot.nice_ticks(5.0, 5.0)
    assert flat[0] < 5.0 < flat[-1]


def _check_row(html: str, check_id: str) -> str:
    start = html.index(f'<tr data-check-id="{check_id}"')
    end = html.find("<tr data-check-id=", start + 1)
    return html[start:end if end != -1 else len(html)]


def test_only_the_first_failing_cell_is_expanded():
    html = render_submission_html(_load("scores_zero_untouched_template.json"), "en")
    failures = re.findall(r'<details class="failure" data-failed-cell="(\d+)"( open)?>', html)

    assert [number for number, _ in failures][:3] == ["11", "12", "13"]
    assert [bool(is_open) for _, is_open in failures] == [True] + [False] * (len(failures) - 1)


def test_hostile_submission_id_and_file_name_are_escaped_in_title_and_body():
    result = _load("passes_all_reference.json")
    result["submission_id"] = '"><script>alert(1)</script>'
    result["file"] = "<iframe src=//evil>.ipynb"
    html = render_submission_html(result, "en")
    page = _parse(html)

    assert {tag for tag, _ in page.tags} & FORBIDDEN_TAGS == set()
    assert "<script>alert(1)</script>" in page.text and "<iframe src=//evil>.ipynb" in page.text


def test_the_report_lists_the_protections_and_names_the_missing_ones():
    result = _load("passes_all_reference.json")
    result["protections"] = {"filesystem": False, "network": False, "user_namespace": False,
                             "pid_namespace": False, "rlimits": True, "scrubbed_env": True, "output_cap": True,
                             "unavailable": "bubblewrap (bwrap) is not installed"}
    page = render_submission_html(result, "en")
    assert "memory, CPU, file-size and open-file limits" in page
    assert "missing: sandboxed files (only its own folder visible); no network" in page
    assert "bubblewrap (bwrap) is not installed" in page
