"""`grader release`: one report per student that keeps the hidden checks hidden and carries a receipt.

A real store filled with stored results (a fully graded reference, a failing LSTM, an
unreadable notebook), a roster and an override; the real CLI; the released pages opened
in a real headless Chromium beside the TA's report, at desktop and phone widths.
"""
from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from test_report_browser import DESKTOP, PHONE, _open, _save_screenshot, _severe_console_entries, browser  # noqa: F401

from grader.batch.store import Store
from grader.cli import main
from grader.paths import DEFAULT_RUBRIC
from grader.rubric import load_rubric

FIXTURES = Path(__file__).parent / "fixtures" / "results"
STUDENTS = {"alice": "passes_all_reference", "bob": "fails_lstm_first_step_logits",
            "carol": "ungraded_not_a_notebook"}


def _stored(name: str, sid: str, rubric_sha256: str | None = None) -> dict:
    result = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    result["submission_id"] = sid
    result["rubric_sha256"] = rubric_sha256 or load_rubric(None).sha256  # graded with the course's rubric
    result["protections"] = {"filesystem": True, "network": True, "unavailable": "internal-detail"}
    return result


@pytest.fixture
def graded(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    with Store.open(out) as store:
        for sid, name in STUDENTS.items():
            store.save_result(_stored(name, sid), notebook_sha256=f"{sid}-sha256", data_sha256="d",
                              calibration_sha256="")
    (out / ".grader-secret").write_bytes(b"s" * 32)
    roster = tmp_path / "roster.csv"
    roster.write_text("id,name\nalice,李华\nbob,Bob\ncarol,张伟\ndave,王芳\n", encoding="utf-8-sig")
    with Store.open(out) as store:
        from grader.roster import read_roster

        store.save_roster(read_roster(roster, "en"))
    assert main(["override", str(out), "bob", "lstm.forward", "--points", "6",
                 "--reason", "partial credit after review", "--lang", "en"]) == 0
    return out


def _release(out: Path, dest: Path, *extra: str) -> int:
    return main(["release", str(out), "-o", str(dest), "--lang", "en", *extra])


def test_released_reports_hide_the_hidden_checks_and_carry_a_receipt(graded, tmp_path):
    dest = tmp_path / "release"
    assert _release(graded, dest) == 0
    files = {p.name for p in dest.iterdir()}
    assert files == {"alice.html", "bob.html", "carol.html", "dave.html", "release.csv"}  # no secret, no store
    alice_full = (graded / "results" / "alice.json").read_text(encoding="utf-8")
    page = (dest / "alice.html").read_text(encoding="utf-8")
    hidden = [c for c in json.loads(alice_full)["checks"] if c["visibility"] == "hidden"]
    assert hidden and all(c["message"] and c["message"] not in page for c in hidden)  # message: TA eyes only
    assert "CustomRNN(9, 5, 2)" not in page and "judged" not in page  # nor their data
    assert 'data-check-id="rnn.sizes"' in page  # the points are shown
    assert "alice-sha256" in page and "data-receipt" in page and json.loads(alice_full)["grader_version"] in page
    assert "internal-detail" not in page
    bob = (dest / "bob.html").read_text(encoding="utf-8")
    assert "partial credit after review" in bob  # a visible check's override is the student's business
    rows = list(csv.DictReader(io.StringIO((dest / "release.csv").read_text(encoding="utf-8-sig"))))
    assert [(r["id"], r["file"]) for r in rows] == [("alice", "alice.html"), ("bob", "bob.html"),
                                                    ("carol", "carol.html"), ("dave", "dave.html")]
    assert rows[3]["outcome"] == "missing" and rows[0]["name"] == "李华"


def test_a_rubric_can_release_a_check_fully_or_not_at_all(graded, tmp_path):
    text = DEFAULT_RUBRIC.read_text(encoding="utf-8")
    marker = '[checks."rnn.sizes"]\n'
    assert text.count(marker) == 1 and text.count('[checks."lstm.train"]\n') == 1
    text = text.replace(marker, marker + 'release = "full"\n').replace(
        '[checks."lstm.train"]\n', '[checks."lstm.train"]\nrelease = "none"\n')
    rubric = tmp_path / "lab.toml"
    rubric.write_text(text, encoding="utf-8")
    with Store.open(graded) as store:  # graded with that rubric
        for sid, name in STUDENTS.items():
            store.save_result(_stored(name, sid, load_rubric(rubric).sha256), notebook_sha256=f"{sid}-sha256",
                              data_sha256="d", calibration_sha256="")
    dest = tmp_path / "release"
    assert _release(graded, dest, "--rubric", str(rubric)) == 0
    page = (dest / "alice.html").read_text(encoding="utf-8")
    assert "CustomRNN(9, 5, 2)" in page  # released in full
    assert 'data-check-id="lstm.train"' not in page and "data-training" not in page
    assert "Points from checks not shown here" in page


def test_release_of_a_folder_that_was_never_graded_is_refused(tmp_path, capsys):
    assert _release(tmp_path / "nothing", tmp_path / "release") == 2
    assert "grades.sqlite" in capsys.readouterr().err


@pytest.mark.parametrize(("size", "label"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_the_released_and_the_tas_report_in_a_browser(browser, graded, tmp_path, size, label):  # noqa: F811
    from selenium.webdriver.common.by import By

    dest = tmp_path / "release"
    assert _release(graded, dest) == 0
    for page, name in ((dest / "bob.html", f"release-{label}.png"), (graded / "reports" / "bob.html",
                                                                      f"ta-report-overridden-{label}.png")):
        _open(browser, page, size)
        width = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1] + 1, f"{name}: {width[0]}px wide in a {width[1]}px window"
        assert browser.find_element(By.CSS_SELECTOR, "[data-override-note]").is_displayed()
        assert _severe_console_entries(browser) == []
        assert _save_screenshot(browser, name).stat().st_size > 0
    _open(browser, dest / "bob.html", size)
    assert browser.find_element(By.CSS_SELECTOR, "[data-receipt]").is_displayed()


def test_the_secret_never_leaves_out(graded, tmp_path):
    dest = tmp_path / "release"
    assert _release(graded, dest) == 0
    secret = (graded / ".grader-secret").read_bytes().decode()
    assert all(secret not in p.read_text(encoding="utf-8") for p in dest.iterdir())
    shutil.rmtree(dest)


def test_release_under_another_rubric_than_the_one_that_graded_is_refused(graded, tmp_path, capsys):
    """Which checks a student may see is the grading rubric's say; another's could release a hidden check."""
    other = tmp_path / "other.toml"
    other.write_text(DEFAULT_RUBRIC.read_text(encoding="utf-8") + "\n# another course\n", encoding="utf-8")
    assert _release(graded, tmp_path / "release", "--rubric", str(other)) == 2
    assert "another rubric" in capsys.readouterr().err and not (tmp_path / "release").exists()


def test_a_released_page_shows_neither_the_runs_seed_nor_a_hidden_checks_override(graded, tmp_path):
    with Store.open(graded) as store:
        result = _stored("passes_all_reference", "alice")
        train = next(c for c in result["checks"] if c["id"] == "lstm.train")
        train["details"]["seed"] = 987654321123
        store.save_result(result, notebook_sha256="alice-sha256", data_sha256="d", calibration_sha256="")
    assert main(["override", str(graded), "alice", "rnn.sizes", "--points", "0", "--reason", "secret reason",
                 "--lang", "en"]) == 0
    dest = tmp_path / "release"
    assert _release(graded, dest) == 0
    page = (dest / "alice.html").read_text(encoding="utf-8")
    assert "987654321123" not in page and "secret reason" not in page and "data-adjusted" not in page
