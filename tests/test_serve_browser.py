"""`grader serve` in a real headless Chromium: the real server on a free port over a real store (built from the
stored-result fixtures, no kernel), driven as a TA would: sort, filter, open a student, make and clear an
override with and without the token, a form posted from another origin refused, a similarity pair judged.
Screenshots at desktop and phone widths go to test-artifacts/ (or $GRADER_TEST_ARTIFACTS)."""
from __future__ import annotations

import functools
import http.server
import threading
import urllib.parse

import pytest
from serve_class import build_class
from test_report_browser import DESKTOP, PHONE, _save_screenshot, _severe_console_entries, browser  # noqa: F401

from grader.batch.store import Store
from grader.paths import DEFAULT_RUBRIC
from grader.rubric import load_rubric
from grader.serve.http import start


@pytest.fixture
def chrome(browser):  # noqa: F811 (the report test's headless Chromium, the same flags and driver)
    return browser


@pytest.fixture
def served(tmp_path):
    klass = build_class(tmp_path / "out", 12)
    running = start(klass.out, "en", load_rubric(DEFAULT_RUBRIC), allow_edit=True)
    try:
        yield klass, running
    finally:
        running.stop()


def by_css(driver, selector):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def wait_css(driver, selector, timeout: float = 20):
    """The elements, once the page a click led to shows them (a click returns before the next page loads)."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: by_css(d, selector))


def wait_url(driver, part: str, timeout: float = 20) -> str:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: part in d.current_url and d.current_url)


def shown_ids(driver) -> list[str]:
    return [row.get_attribute("data-row") for row in by_css(driver, "[data-row]")]


def no_sideways_scroll(driver) -> None:
    width, inner = driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner + 1, f"page is {width}px wide in a {inner}px window"


def test_sort_filter_and_open_a_student_keeping_the_view_in_the_url(chrome, served):
    klass, running = served
    chrome.set_window_size(*DESKTOP)
    chrome.get(running.url)  # the URL printed at start: the token goes into a cookie, out of the URL
    assert urllib.parse.urlsplit(chrome.current_url).query == ""
    assert set(shown_ids(chrome)) == {*klass.ids, klass.missing}
    assert "pwned" not in chrome.title and chrome.execute_script("return document.scripts.length") == 0
    _save_screenshot(chrome, "serve-class-desktop.png")

    by_css(chrome, '[data-sort-column="score"] a')[0].click()
    wait_url(chrome, "sort=score")
    wait_css(chrome, '[data-sort-column="score"] a')[0].click()  # again: descending
    wait_url(chrome, "dir=desc")
    scores = [float(c.get_attribute("data-score")) for c in by_css(chrome, "td[data-score]")]
    assert scores == sorted(scores, reverse=True)

    by_css(chrome, 'input[name="overridden"]')[0].click()
    by_css(chrome, "[data-apply]")[0].click()
    assert "sort=score" in wait_url(chrome, "overridden=1")
    assert set(shown_ids(chrome)) == {klass.overridden, klass.review}
    shared = chrome.current_url
    chrome.get(running.origin + "/")
    chrome.get(shared)  # another TA opening the same URL sees the same rows
    assert set(shown_ids(chrome)) == {klass.overridden, klass.review}

    by_css(chrome, f'[data-row="{klass.overridden}"] td.id a')[0].click()
    assert urllib.parse.urlsplit(wait_url(chrome, "/student")).path == "/student"
    assert len(by_css(chrome, "[data-check-id]")) >= 20 and by_css(chrome, "[data-override-note]")
    assert by_css(chrome, "[data-override-form]")  # --allow-edit, and this browser opened the start URL
    _save_screenshot(chrome, "serve-student-desktop.png")
    assert _severe_console_entries(chrome) == []


def test_an_override_made_and_cleared_from_the_page_with_the_token(chrome, served):
    from selenium.webdriver.support.ui import Select

    klass, running = served
    sid = klass.ids[0]
    chrome.set_window_size(*DESKTOP)
    chrome.get(f"{running.origin}/student?id={sid}")  # not opened the start URL: nothing of the class
    assert "start" in wait_css(chrome, "[data-message]")[0].text
    assert not by_css(chrome, "[data-override-form]") and not by_css(chrome, "[data-check-id]")
    assert sid not in chrome.page_source

    chrome.get(running.url)  # the URL printed at start: the token goes into a cookie, out of the URL
    assert "token" not in chrome.current_url
    chrome.get(f"{running.origin}/student?id={sid}")
    form = by_css(chrome, "[data-override-form]")[0]
    Select(form.find_element("name", "check")).select_by_value("lstm.forward")
    form.find_element("name", "points").send_keys("7")
    form.find_element("name", "reason").send_keys("<b>explained in office hours</b>")
    form.find_element("css selector", "[data-override-set]").click()
    assert wait_css(chrome, "[data-notice]")
    ledger = by_css(chrome, '[data-ledger] [data-event="set"]')
    assert ledger and "<b>explained in office hours</b>" in ledger[-1].text  # shown as text, never markup
    assert by_css(chrome, '[data-check-id="lstm.forward"] [data-override]')
    with Store.open(klass.out, "en") as store:
        assert store.overrides()[(sid, "lstm.forward")].points == 7.0

    form = by_css(chrome, "[data-override-form]")[0]
    form.find_element("name", "points").send_keys("999")
    form.find_element("name", "reason").send_keys("too many")
    form.find_element("css selector", "[data-override-set]").click()
    assert "from 0 to" in wait_css(chrome, "[data-error]")[0].text
    _save_screenshot(chrome, "serve-override-error-desktop.png")

    by_css(chrome, '[data-override-clear="lstm.forward"]')[0].click()
    assert wait_css(chrome, '[data-ledger] [data-event="clear"]')
    with Store.open(klass.out, "en") as store:
        assert (sid, "lstm.forward") not in store.overrides()
    # the first visit, without the token, answered 403 and the refused points 400, both on purpose (a page with
    # the reason); nothing else may be logged
    expected = ("status of 400", "status of 403")
    assert [e for e in _severe_console_entries(chrome) if not any(x in e["message"] for x in expected)] == []


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_a_form_posted_from_another_origin_is_refused(chrome, served, tmp_path):
    klass, running = served
    chrome.get(running.url)  # this browser holds the token cookie: a real attack would ride on it
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "index.html").write_text(
        f'<form method="post" action="{running.origin}/override">'
        f'<input name="token" value="{running.guard.token}"><input name="id" value="{klass.ids[0]}">'
        '<input name="check" value="lstm.forward"><input name="points" value="0"><input name="reason" value="x">'
        '<button id="go" type="submit">go</button></form>', encoding="utf-8")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(evil)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        chrome.get(f"http://127.0.0.1:{server.server_address[1]}/index.html")
        by_css(chrome, "#go")[0].click()
        assert "another origin" in wait_css(chrome, "[data-message]")[0].text
    finally:
        server.shutdown()
        server.server_close()
    with Store.open(klass.out, "en") as store:
        assert (klass.ids[0], "lstm.forward") not in store.overrides()


_SEEN: list[str] = []


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Another local server the TA's browser visits: it records the Cookie header each request brings."""

    def do_GET(self):
        _SEEN.append(self.headers.get("Cookie") or "")
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def _cookie_seen_by_another_server(chrome, running) -> str:
    """The Cookie header a server on 127.0.0.1 (another port) gets from a browser that opened the start URL."""
    chrome.get(running.url)
    assert by_css(chrome, "[data-row]")
    _SEEN.clear()
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=other.serve_forever, daemon=True)
    thread.start()
    try:
        chrome.get(f"http://127.0.0.1:{other.server_address[1]}/")
        assert _SEEN
        return " ".join(_SEEN)
    finally:
        other.shutdown()
        other.server_close()


def test_the_token_cookie_is_not_sent_to_other_local_servers(chrome, served, tmp_path):
    klass, running = served
    assert running.guard.host != "127.0.0.1"
    assert running.guard.token not in _cookie_seen_by_another_server(chrome, running)
    # the limit where only 127.0.0.1 exists (--host 127.0.0.1, or macOS): cookies are not scoped by port
    again = start(klass.out, "en", load_rubric(DEFAULT_RUBRIC), host="127.0.0.1")
    try:
        assert again.guard.token in _cookie_seen_by_another_server(chrome, again)
    finally:
        again.stop()


def test_a_similarity_pair_side_by_side_marked_reviewed(chrome, served):
    klass, running = served
    chrome.get(running.url)
    chrome.set_window_size(*DESKTOP)
    chrome.get(running.origin + "/pairs")
    by_css(chrome, "[data-pairs] a")[0].click()
    sides = wait_css(chrome, "[data-side]")
    assert {s.get_attribute("data-side") for s in sides} == set(klass.pair)
    assert all(len(s.find_elements("css selector", "[data-hit]")) == 6 for s in sides)
    assert "0.93" in by_css(chrome, "[data-pair-score]")[0].text and by_css(chrome, "[data-open]")
    _save_screenshot(chrome, "serve-pair-desktop.png")
    chrome.set_window_size(*PHONE)
    no_sideways_scroll(chrome)
    _save_screenshot(chrome, "serve-pair-phone.png")

    by_css(chrome, "[data-review-form] textarea")[0].send_keys("both followed the same tutorial")
    by_css(chrome, "[data-mark-reviewed]")[0].click()
    assert wait_css(chrome, "[data-reviewed]") and "same tutorial" in by_css(chrome, "[data-review-note]")[0].text
    chrome.get(running.origin + "/?flagged=1")
    assert shown_ids(chrome) == []
    assert _severe_console_entries(chrome) == []


def test_phone_width_pages_fit_the_screen(chrome, served):
    klass, running = served
    chrome.set_window_size(*PHONE)
    chrome.get(running.url)
    no_sideways_scroll(chrome)  # the wide table scrolls inside its own box
    _save_screenshot(chrome, "serve-class-phone.png")
    chrome.get(f"{running.origin}/student?id={klass.ids[1]}")
    no_sideways_scroll(chrome)
    _save_screenshot(chrome, "serve-student-phone.png")
    assert _severe_console_entries(chrome) == []
