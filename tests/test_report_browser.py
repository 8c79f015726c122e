"""The HTML report in a real headless Chromium: no console errors, every check visible, the charts drawn, no
sideways scrolling on a phone. Screenshots go to test-artifacts/ (or $GRADER_TEST_ARTIFACTS) for a human to look at."""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader.report.html import write_submission_html

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "results"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Without the networking flags Chromium keeps trying to reach Google's services, which floods a closed network.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync")
DESKTOP = (1280, 900)
PHONE = (390, 844)


def _artifacts_dir() -> Path:
    folder = Path(os.environ.get("GRADER_TEST_ARTIFACTS") or REPO / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    """A headless Chromium driven by the system chromedriver (selenium-manager never downloads anything)."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run `make setup` or `apt-get install chromium chromium-driver`")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def failing_lstm_report(tmp_path: Path) -> tuple[Path, dict]:
    result = json.loads((FIXTURES / "fails_lstm_first_step_logits.json").read_text(encoding="utf-8"))
    return write_submission_html(result, tmp_path / "report.html", "zh"), result


def _open(driver, page: Path, size: tuple[int, int]) -> None:
    driver.set_window_size(*size)
    driver.get(page.as_uri())


def _severe_console_entries(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def _save_screenshot(driver, name: str) -> Path:
    # The whole page, not just the first screen: resize to the document's height before the shot.
    height = driver.execute_script("return document.documentElement.scrollHeight")
    outer_w, outer_h = driver.get_window_size()["width"], driver.get_window_size()["height"]
    inner_h = driver.execute_script("return window.innerHeight")
    driver.set_window_size(outer_w, height + (outer_h - inner_h))
    path = _artifacts_dir() / name
    driver.save_screenshot(str(path))
    driver.set_window_size(outer_w, outer_h)
    return path


def test_desktop_report_shows_every_check_and_the_training_charts_without_console_errors(browser, failing_lstm_report):
    from selenium.webdriver.common.by import By

    page, result = failing_lstm_report
    _open(browser, page, DESKTOP)

    rows = browser.find_elements(By.CSS_SELECTOR, "[data-check-id]")
    assert len(rows) == len(result["checks"])
    assert all(row.is_displayed() for row in rows)
    charts = browser.find_elements(By.CSS_SELECTOR, "[data-training] svg")
    assert len(charts) == 2
    for chart in charts:
        assert chart.is_displayed()
        assert chart.size["width"] > 100 and chart.size["height"] > 50
    assert browser.find_element(By.CSS_SELECTOR, "[data-student-curve] svg").size["height"] > 50
    assert _severe_console_entries(browser) == []
    assert _save_screenshot(browser, "report-desktop.png").stat().st_size > 0


def test_phone_report_fits_the_screen_width_and_keeps_every_check_visible(browser, failing_lstm_report):
    from selenium.webdriver.common.by import By

    page, result = failing_lstm_report
    _open(browser, page, PHONE)

    overflow = browser.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]")
    assert overflow[0] <= overflow[1] + 1, f"page is {overflow[0]}px wide in a {overflow[1]}px window"
    rows = browser.find_elements(By.CSS_SELECTOR, "[data-check-id]")
    assert len(rows) == len(result["checks"])
    assert all(row.is_displayed() for row in rows)
    chart = browser.find_element(By.CSS_SELECTOR, "[data-training] svg")
    assert 0 < chart.size["width"] <= PHONE[0] and chart.size["height"] > 0
    assert _severe_console_entries(browser) == []
    assert _save_screenshot(browser, "report-phone.png").stat().st_size > 0


def test_hostile_report_runs_no_script_in_the_browser(browser, tmp_path):
    # The student's cell sets document.title from a <script> if anything is ever left unescaped.
    result = json.loads((FIXTURES / "hostile_cell_html_script.json").read_text(encoding="utf-8"))
    page = write_submission_html(result, tmp_path / "hostile.html", "en")
    _open(browser, page, DESKTOP)

    assert "pwned" not in browser.title
    assert browser.execute_script("return document.querySelectorAll('script, iframe, img').length") == 0
    assert _severe_console_entries(browser) == []
    shutil.copy(page, _artifacts_dir() / "report-hostile.html")
