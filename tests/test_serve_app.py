"""`grader serve` without a browser: the real server on a free port over a real store (built from the
stored-result fixtures, tests/serve_class.py), driven with urllib; and its parts (view state, guard, pairs)."""
from __future__ import annotations

import csv
import errno
import hashlib
import html
import io
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from serve_class import build_class, fixture

from grader.batch.store import SCHEMA_VERSION, STORE_NAME, Store
from grader.cli import main
from grader.paths import DEFAULT_RUBRIC
from grader.report.grades_csv import write_grades_csv
from grader.roster import join
from grader.rubric import load_rubric
from grader.serve import http as http_module
from grader.serve.guard import CSP, Guard, loopback_host, random_loopback
from grader.serve.http import start
from grader.serve.pairs import class_pairs, find_pair
from grader.serve.table import ViewState
from grader.similarity_reviews import REOPENED, REVIEWED, PairReview, reviewed_pairs

REPO = Path(__file__).resolve().parents[1]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def fetch(running, path: str, data: dict | None = None, headers: dict | None = None, *,
          cookie: bool = True, method: str | None = None) -> tuple[int, dict, str]:
    """GET (POST with `data`) `path` on the server (or a whole URL), as the browser that opened the start URL:
    with the token's cookie unless `cookie` is False."""
    url = path if path.startswith("http") else running.origin + path
    sent = {"Cookie": f"{running.guard.cookie_name}={running.guard.token}"} if cookie else {}
    return fetch_url(url, data, {**sent, **(headers or {})}, method=method)


def fetch_url(url: str, data: dict | None = None, headers: dict | None = None, *,
              method: str | None = None) -> tuple[int, dict, str]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with OPENER.open(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode("utf-8", "replace")


@pytest.fixture
def served(tmp_path):
    klass = build_class(tmp_path / "out")
    running = start(klass.out, "en", load_rubric(DEFAULT_RUBRIC), allow_edit=True)
    try:
        yield klass, running
    finally:
        running.stop()


@pytest.fixture
def read_only(tmp_path):
    klass = build_class(tmp_path / "out")
    running = start(klass.out, "en", load_rubric(DEFAULT_RUBRIC))
    try:
        yield klass, running
    finally:
        running.stop()


def same_origin(running) -> dict:
    return {"Origin": running.origin}


# -- the view in the URL -------------------------------------------------------------------------------------


def test_view_state_round_trips_through_its_query_and_ignores_nonsense():
    view = ViewState.from_query({"sort": ["check:lstm.grad"], "dir": ["desc"], "check": ["lstm.grad"],
                                 "check_status": ["failed"], "flagged": ["1"], "status": ["bogus"], "q": ["ali"]})
    again = ViewState.from_query(urllib.parse.parse_qs(view.query()))
    assert again == view and again.status == "" and again.desc
    assert ViewState().query() == ""
    assert "dir=desc" not in ViewState(sort="score", desc=True).sort_query("score")


# -- pages ---------------------------------------------------------------------------------------------------


def test_the_class_table_lists_every_student_with_the_missing_one_and_escapes_names(read_only):
    klass, running = read_only
    status, headers, page = fetch(running, "/")
    assert status == 200
    for sid in (*klass.ids, klass.missing):
        assert f'data-row="{sid}"' in page
    assert "<script>document.title" not in page and "&lt;script&gt;" in page
    assert "\u202e" not in page  # the bidi override is shown as a marker, never obeyed
    assert headers["Content-Security-Policy"] == CSP and "script-src" not in CSP
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
    assert "<script" not in page.replace("&lt;script", "")


def test_filters_and_sort_come_from_the_url(read_only):
    klass, running = read_only
    _, _, page = fetch(running, "/?review=1")
    assert f'data-row="{klass.review}"' in page and 'data-count="1"' in page
    _, _, page = fetch(running, "/?overridden=1")
    assert 'data-count="2"' in page
    _, _, page = fetch(running, "/?flagged=1")
    assert 'data-count="2"' in page and all(f'data-row="{sid}"' in page for sid in klass.pair)
    _, _, page = fetch(running, "/?status=missing")
    assert f'data-row="{klass.missing}"' in page and 'data-count="1"' in page
    _, _, page = fetch(running, "/?diagnosis=checks.diag.first_step_logits")
    wanted = [sid for sid, kind in klass.kinds.items() if kind == "fails_lstm_first_step_logits"]
    assert f'data-count="{len(wanted)}"' in page
    _, _, page = fetch(running, "/?sort=score&dir=desc")
    order = [line.split('data-row="')[1].split('"')[0] for line in page.splitlines() if 'data-row="' in line]
    scores = {r["submission_id"]: r["score"] for r in Store.open(klass.out, "en").results_for_outputs()}
    assert [scores.get(sid, 0.0) for sid in order] == sorted((scores.get(sid, 0.0) for sid in order), reverse=True)


def test_student_page_is_the_report_with_the_override_ledger_and_failing_cells_first(served):
    klass, running = served
    status, _, page = fetch(running, f"/student?id={klass.overridden}")
    assert status == 200
    assert "data-check-id=" in page and "data-override-note" in page  # the report's own template
    assert 'data-event="set"' in page and "partial credit" in page
    cells = [line.split('data-cell="')[1].split('"')[0] for line in page.splitlines() if 'data-cell="' in line]
    assert cells  # failing cells are listed before the ones that ran
    assert fetch(running, "/student?id=nobody")[0] == 404


def test_a_long_id_links_to_its_student_whole_and_shows_cut(tmp_path):
    klass = build_class(tmp_path / "out", 6)
    long_id = "学生 a&b=c#d/" + "x" * 300
    with Store.open(klass.out, "en") as store:
        result = fixture("fails_lstm_first_step_logits")
        result.update(submission_id=long_id, file="long.ipynb")
        store.save_result(result, notebook_sha256="f" * 64, data_sha256="d", calibration_sha256="")
    running = start(klass.out, "en", load_rubric(DEFAULT_RUBRIC))
    try:
        _, _, page = fetch(running, "/?q=" + urllib.parse.quote("学生 a&b"))
        assert 'data-count="1"' in page
        [link] = re.findall(r'<td class="id"><a href="([^"]+)">([^<]*)</a>', page)
        assert html.unescape(link[1]) == long_id[:200]  # the cell shows the id cut ...
        assert urllib.parse.parse_qs(urllib.parse.urlsplit(html.unescape(link[0])).query)["id"] == [long_id]
        status, _, student = fetch(running, html.unescape(link[0]))  # ... and links to the whole one
        assert status == 200 and "x" * 300 in student
    finally:
        running.stop()


def test_the_pair_page_marks_the_matching_lines_of_both_classes(served):
    klass, running = served
    a, b = klass.pair
    status, _, page = fetch(running, f"/pair?a={b}&b={a}")
    assert status == 200 and "0.93" in page
    assert page.count("data-hit") == 12  # 6 lines marked on each side
    assert "</pre><script>" not in page and "&lt;/pre&gt;&lt;script&gt;" in page


def test_pairs_view_maps_ranges_onto_class_lines():
    pair = {"a": "x", "b": "y", "score": 0.7, "matches": [
        {"name": "CustomRNN", "score": 0.7, "shared": 3, "a_lines": [{"cell": 2, "start": 5, "end": 6}],
         "b_lines": [{"cell": 1, "start": 1, "end": 1}, {"cell": 9, "start": 1, "end": 99}]}]}
    sources = {"x": [{"name": "CustomRNN", "text": "a\nb\nc\nd", "cell": 2, "line": 4}],
               "y": [{"name": "CustomRNN", "text": "a\nb", "cell": 1, "line": 1}]}
    [view] = class_pairs(pair, sources)
    assert [line.hit for line in view.a.lines] == [False, True, True, False]
    assert [line.number for line in view.a.lines] == [4, 5, 6, 7]
    assert [line.hit for line in view.b.lines] == [True, False]
    assert find_pair([pair], "y", "x") is pair and find_pair([pair], "x", "x") is None
    assert class_pairs(pair, {})[0].a.lines == ()


# -- changes -------------------------------------------------------------------------------------------------


def test_the_start_url_sets_the_token_cookie_and_drops_the_token_from_the_url(served):
    _, running = served
    status, headers, _ = fetch(running, running.url, cookie=False)
    assert status == 303 and headers["Location"] == "/"
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    assert fetch(running, "/?token=wrong", cookie=False)[0] == 403


@pytest.mark.parametrize("mode", ["read_only", "served"])
def test_every_page_and_export_needs_the_token_cookie_in_either_mode(mode, request):
    klass, running = request.getfixturevalue(mode)
    a, b = klass.pair
    assert "?token=" in running.url  # the printed URL carries the token, read-only or not
    wrong = {"Cookie": f"{running.guard.cookie_name}={running.guard.token[:-2]}xx"}
    for path in ("/", f"/student?id={klass.ids[0]}", "/pairs", f"/pair?a={a}&b={b}", "/export/grades.csv",
                 "/export/grades.xlsx", "/?token=", "/nowhere"):
        for headers in ({}, wrong):
            status, _, page = fetch(running, path, headers=headers, cookie=False)
            assert status == 403, path
            assert klass.ids[0] not in page and "Student 1" not in page and "lstm." not in page, path
        assert fetch(running, path, cookie=False, method="HEAD")[0] == 403, path
    assert fetch(running, "/")[0] == 200 and fetch(running, "/nowhere")[0] == 404
    status, headers, _ = fetch(running, running.url, cookie=False)
    assert status == 303 and headers["Location"] == "/"
    assert fetch(running, "/", headers={"Cookie": headers["Set-Cookie"].split(";")[0]}, cookie=False)[0] == 200


def test_an_override_needs_the_token_and_our_origin_then_goes_through_the_ledger(served):
    klass, running = served
    sid = klass.ids[0]
    form = {"id": sid, "check": "lstm.forward", "points": "3", "reason": "seen in lab", "by": "王助教",
            "action": "set"}
    assert fetch(running, "/override", form, same_origin(running))[0] == 403  # no token
    assert fetch(running, "/override", {**form, "token": "nope"}, same_origin(running))[0] == 403
    tokened = {**form, "token": running.guard.token}
    assert fetch(running, "/override", tokened, {"Origin": "http://evil.example"})[0] == 403
    assert fetch(running, "/override", tokened, {"Origin": "null"})[0] == 403
    assert fetch(running, "/override", tokened)[0] == 403  # neither Origin nor Referer
    assert fetch(running, "/override", tokened, same_origin(running), cookie=False)[0] == 403  # no cookie
    with Store.open(klass.out, "en") as store:
        assert (sid, "lstm.forward") not in store.overrides()

    status, headers, _ = fetch(running, "/override", tokened, same_origin(running))
    assert status == 303 and headers["Location"].startswith("/student?")
    with Store.open(klass.out, "en") as store:
        assert store.overrides()[(sid, "lstm.forward")].by == "王助教"
    grades = (klass.out / "grades.csv").read_text(encoding="utf-8-sig")  # outputs written again, as the CLI does
    assert "seen in lab" in grades

    status, _, page = fetch(running, "/override", {**tokened, "points": "999"}, same_origin(running))
    assert status == 400 and "from 0 to" in page and "Traceback" not in page
    status, _, page = fetch(running, "/override", {**tokened, "reason": ""}, same_origin(running))
    assert status == 400 and "--reason" in page
    status, _, page = fetch(running, "/override", {**tokened, "check": "no.such"}, same_origin(running))
    assert status == 400 and "not one of this submission" in page
    clear = {"id": sid, "check": "lstm.forward", "action": "clear", "token": running.guard.token}
    assert fetch(running, "/override", clear, {"Referer": running.origin + "/student?id=x"})[0] == 303
    with Store.open(klass.out, "en") as store:
        assert (sid, "lstm.forward") not in store.overrides()


def test_a_refused_override_shows_the_posted_students_page_not_the_query_strings(served):
    klass, running = served
    sid, other = klass.ids[0], klass.ids[2]
    form = {"id": sid, "check": "lstm.forward", "points": "999", "reason": "r", "action": "set",
            "token": running.guard.token}
    status, _, page = fetch(running, f"/override?id={other}", form, same_origin(running))
    assert status == 400 and "from 0 to" in page
    assert f'name="id" value="{sid}"' in page and f'name="id" value="{other}"' not in page
    a, b = klass.pair
    form = {"a": a, "b": b, "action": "bogus", "token": running.guard.token}
    status, _, page = fetch(running, "/pair/review?a=x&b=y", form, same_origin(running))
    assert status == 400 and f'data-side="{a}"' in page


def test_one_translate_for_the_report_and_the_server():
    from grader.report import html
    from grader.serve import app

    assert app.Translate is html.Translate
    assert html.Translate("en", "serve")("nav_class") == "Class"
    assert "field" not in vars(app.Request)  # dataclasses.field is not shadowed in the class body


def test_a_read_only_server_refuses_every_change(read_only):
    klass, running = read_only
    form = {"id": klass.ids[0], "check": "lstm.forward", "points": "3", "reason": "r", "token": running.guard.token}
    status, _, page = fetch(running, "/override", form, same_origin(running))
    assert status == 403 and "--allow-edit" in page
    assert "data-override-form" not in fetch(running, f"/student?id={klass.ids[0]}")[2]


def test_requests_for_another_host_name_are_refused(served):
    _, running = served
    assert fetch(running, "/", headers={"Host": "attacker.example"})[0] == 403
    assert fetch(running, "/", headers={"Host": f"localhost:{running.guard.port}"})[0] == 403  # not its address
    assert fetch(running, "/", headers={"Host": f"{running.guard.host}:{running.guard.port}"})[0] == 200


def test_a_pair_review_is_stored_in_the_store_and_can_be_reopened(served):
    klass, running = served
    a, b = klass.pair
    form = {"a": b, "b": a, "action": REVIEWED, "note": "same tutorial", "token": running.guard.token}
    assert fetch(running, "/pair/review", form, same_origin(running))[0] == 303
    with Store.open(klass.out, "en") as store:
        assert store.reviewed_pairs()[(a, b)].note == "same tutorial"
    _, _, page = fetch(running, "/?flagged=1")
    assert 'data-count="0"' in page  # a reviewed pair is no longer "flagged"
    fetch(running, "/pair/review", {**form, "action": REOPENED}, same_origin(running))
    with Store.open(klass.out, "en") as store:
        assert store.reviewed_pairs() == {}
    assert fetch(running, "/pair/review", {**form, "b": "nobody"}, same_origin(running))[0] == 404


def test_reviewed_pairs_take_each_pairs_last_event():
    events = [PairReview("b", "a", REVIEWED, "", "ta", "t1"), PairReview("c", "d", REVIEWED, "", "ta", "t2"),
              PairReview("a", "b", REOPENED, "", "ta", "t3")]
    assert list(reviewed_pairs(events)) == [("c", "d")]


def test_exports_are_the_files_the_command_line_writes(served, tmp_path):
    klass, running = served
    status, headers, body = fetch(running, "/export/grades.csv")
    assert status == 200 and headers["Content-Disposition"] == 'attachment; filename="grades.csv"'
    rubric = load_rubric(DEFAULT_RUBRIC)
    with Store.open(klass.out, "en") as store:
        results = join(store.results_for_outputs(), store.roster(), rubric, "en")
    expected = write_grades_csv(results, tmp_path / "grades.csv", "en").read_bytes().decode("utf-8")
    assert body == expected  # byte for byte: the BOM and CRLF too
    assert len(list(csv.reader(io.StringIO(expected)))) == len(klass.ids) + 1 + 2  # header, max row, missing
    request = urllib.request.Request(running.origin + "/export/grades.xlsx",
                                     headers={"Cookie": f"{running.guard.cookie_name}={running.guard.token}"})
    with urllib.request.urlopen(request) as response:
        assert response.read()[:2] == b"PK"

    status, headers, _ = fetch(running, "/export/release", {"token": running.guard.token},
                               same_origin(running))
    assert status == 303
    released = sorted(p.name for p in (klass.out / "release").iterdir())
    assert "release.csv" in released and len(released) == len(klass.ids) + 2


def test_notices_cannot_be_made_up_by_a_link_and_show_once(served):
    klass, running = served
    for forged in ("/?done=release&count=999", "/?notice=release", f"/student?id={klass.ids[0]}&done=set",
                   f"/pair?a={klass.pair[0]}&b={klass.pair[1]}&done=reviewed"):
        status, _, page = fetch(running, forged)
        assert status == 200 and "data-notice" not in page and "999 release" not in page, forged
    status, headers, _ = fetch(running, "/export/release", {"token": running.guard.token}, same_origin(running))
    assert status == 303
    location = headers["Location"]
    assert "count" not in location and "done" not in location
    _, _, page = fetch(running, location)
    written = len(list((klass.out / "release").iterdir())) - 1  # the pages, without release.csv
    assert "data-notice" in page and f"{written} release page(s) written" in page
    assert "data-notice" not in fetch(running, location)[2]  # once: a reload shows none

    form = {"id": klass.ids[0], "check": "lstm.forward", "points": "3", "reason": "r", "action": "set",
            "token": running.guard.token}
    _, headers, _ = fetch(running, "/override", form, same_origin(running))
    _, _, page = fetch(running, headers["Location"])
    assert "Override recorded" in page and "Override recorded" not in fetch(running, headers["Location"])[2]


# -- what a client may send and hold ------------------------------------------------------------------------


def raw(running, data: bytes, *, close_write: bool = False, wait: float = 10.0) -> bytes:
    """Send `data` on a fresh connection and read until the server closes it (or `wait` seconds pass)."""
    with socket.create_connection((running.guard.host, running.guard.port), timeout=wait) as sock:
        sock.sendall(data)
        if close_write:
            sock.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := sock.recv(65536):
            got += chunk
        return got


def head(running, method: str, path: str, **extra: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {running.guard.host}:{running.guard.port}",
             f"Cookie: {running.guard.cookie_name}={running.guard.token}", *(f"{k}: {v}" for k, v in extra.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.fixture
def quick(tmp_path):
    """A server that gives up on a silent client after 1 s and serves 2 connections at once."""
    klass = build_class(tmp_path / "out", 6)
    running = start(klass.out, "en", load_rubric(DEFAULT_RUBRIC), allow_edit=True, request_timeout=1.0,
                    max_connections=2)
    try:
        yield klass, running
    finally:
        running.stop()


def test_idle_and_slow_clients_are_cut_off(quick):
    _, running = quick
    began = time.monotonic()
    assert raw(running, b"") == b""  # connected, sent nothing: closed
    assert raw(running, b"GET / HTTP/1.1\r\nHost: x") == b""  # headers never finished
    form = head(running, "POST", "/override", **{"Origin": running.origin, "Content-Length": "100",
                                                 "Content-Type": "application/x-www-form-urlencoded"})
    answer = raw(running, form + b"id=x")  # a body short of its Content-Length, the client waiting
    assert answer.startswith(b"HTTP/1.1 408") and b"data-message" in answer
    assert time.monotonic() - began < 9  # three timeouts of 1 s, not the 10 s each a hung server would take
    answer = raw(running, form + b"id=x", close_write=True)  # ... or gone
    assert answer.startswith(b"HTTP/1.1 400") and b"data-message" in answer
    answer = raw(running, head(running, "GET", "/") + head(running, "GET", "/pairs"))  # keep-alive, then idle
    assert answer.count(b"HTTP/1.1 200") == 2


def test_connections_over_the_bound_are_answered_503_at_once(quick):
    _, running = quick
    idle = [socket.create_connection((running.guard.host, running.guard.port)) for _ in range(2)]
    try:
        time.sleep(0.1)  # both accepted, each holding a thread
        assert raw(running, head(running, "GET", "/")).startswith(b"HTTP/1.1 503")  # at once, not served later
    finally:
        for sock in idle:
            sock.close()
    time.sleep(1.5)  # their threads are done: their slots are free again
    assert raw(running, head(running, "GET", "/")).startswith(b"HTTP/1.1 200")


def test_more_than_50_fields_is_a_400_page(served):
    _, running = served
    many = "&".join(f"f{i}=1" for i in range(60))
    status, _, page = fetch(running, f"/?{many}")
    assert status == 400 and "data-message" in page and "50 fields" in page
    assert fetch(running, "/?" + "&".join(f"f{i}=1" for i in range(40)))[0] == 200
    form = {f"f{i}": "1" for i in range(60)}
    status, _, page = fetch(running, "/override", form, same_origin(running))
    assert status == 400 and "data-message" in page
    assert fetch(running, "/")[0] == 200  # the server is still there


# -- the store's schema and the command ----------------------------------------------------------------------


def test_a_schema_3_store_gains_the_review_tables_and_stays_readable(tmp_path):
    klass = build_class(tmp_path / "out", 6)
    conn = sqlite3.connect(klass.out / STORE_NAME)
    conn.execute("DROP TABLE class_sources")
    conn.execute("DROP TABLE similarity_reviews")
    conn.execute("UPDATE schema_version SET version = 3")
    conn.commit()
    conn.close()
    with Store.open(klass.out, "en") as store:
        assert len(store.all_results()) == 6 and store.reviewed_pairs() == {}
        assert store.class_sources(klass.ids[0]) is None
    conn = sqlite3.connect(klass.out / STORE_NAME)
    assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION == 4


def test_a_read_only_server_never_writes_the_store_and_shows_a_schema_3_one(tmp_path):
    klass = build_class(tmp_path / "out", 6)
    path = klass.out / STORE_NAME
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE class_sources")
    conn.execute("DROP TABLE similarity_reviews")
    conn.execute("UPDATE schema_version SET version = 3")
    conn.commit()
    conn.execute("PRAGMA journal_mode=DELETE")  # a rollback journal: opening it for writing would make it WAL
    conn.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    running = start(klass.out, "en", load_rubric(DEFAULT_RUBRIC))
    a, b = klass.pair
    try:
        for page in ("/", f"/student?id={klass.ids[1]}", "/pairs", "/export/grades.csv", "/export/grades.xlsx"):
            assert fetch(running, page)[0] == 200, page
        status, _, page = fetch(running, f"/pair?a={a}&b={b}")
        assert status == 200 and "data-no-source" in page and "data-open" in page
        assert fetch(running, "/pair/review", {"a": a, "b": b, "action": REVIEWED, "token": running.guard.token},
                     same_origin(running))[0] == 403
    finally:
        running.stop()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in klass.out.glob(STORE_NAME + "*")) == [STORE_NAME]  # no journal, no WAL
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == 3
    assert not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'class_sources'").fetchone()
    conn.close()


def test_a_read_only_server_shows_a_change_made_meanwhile_by_the_command_line(read_only):
    klass, running = read_only
    sid = klass.ids[0]
    assert 'data-event="set"' not in fetch(running, f"/student?id={sid}")[2]
    assert main(["override", str(klass.out), sid, "lstm.forward", "--points", "2", "--reason", "from the terminal",
                 "--lang", "en"]) == 0
    page = fetch(running, f"/student?id={sid}")[2]
    assert 'data-event="set"' in page and "from the terminal" in page


def test_guard_rules():
    guard = Guard("127.0.0.1", 8123, allow_edit=True)
    assert guard.host_ok("127.0.0.1:8123") and guard.host_ok("localhost:8123")
    assert not guard.host_ok("127.0.0.1:9") and not guard.host_ok(None) and not guard.host_ok("evil:8123")
    assert guard.same_origin({"referer": "http://127.0.0.1:8123/student?id=a"})
    assert not guard.same_origin({"origin": "http://127.0.0.1:8124"})
    assert not guard.same_origin({"referer": "http://127.0.0.1:8123.evil/"})
    assert guard.token_ok(guard.token) and not guard.token_ok(guard.token[:-1]) and not guard.token_ok(None)
    own = Guard("127.31.7.9", 8123, allow_edit=True)  # on an address of its own: that address only
    assert own.host_ok("127.31.7.9:8123") and not own.host_ok("localhost:8123") and not own.host_ok("127.0.0.1:8123")
    assert own.same_origin({"origin": "http://127.31.7.9:8123"}) and not own.same_origin({"origin": guard.origin})
    reader = Guard("127.0.0.1", 8123, allow_edit=False)
    held = {reader.cookie_name: reader.token}
    assert reader.authorised(held) and not reader.can_edit(held) and "?token=" in reader.start_url()
    assert not reader.authorised({reader.cookie_name: guard.token}) and not reader.authorised({})


def test_the_server_listens_on_a_loopback_address_of_its_own(served):
    _, running = served
    host, port = running.server.socket.getsockname()
    assert host == running.guard.host != "127.0.0.1" and loopback_host(host) and not running.fell_back
    assert running.origin == f"http://{host}:{port}" and running.url.startswith(running.origin + "/?token=")
    assert fetch(running, "/")[0] == 200
    assert fetch(running, "/", headers={"Host": f"127.0.0.1:{port}"})[0] == 403
    assert {random_loopback() for _ in range(50)} - {"127.0.0.1"} and all(
        loopback_host(h) and h != "127.0.0.1" for h in (random_loopback() for _ in range(200)))


def test_host_127_0_0_1_when_asked_and_when_the_system_has_no_other(tmp_path, monkeypatch):
    klass = build_class(tmp_path / "out", 6)
    rubric = load_rubric(DEFAULT_RUBRIC)
    running = start(klass.out, "en", rubric, host="127.0.0.1")
    try:
        assert running.origin.startswith("http://127.0.0.1:") and not running.fell_back
        assert fetch(running, "/")[0] == 200
        assert fetch(running, "/", headers={"Host": f"localhost:{running.guard.port}"})[0] == 200
    finally:
        running.stop()

    bind = http_module._Server.server_bind

    def only_127_0_0_1(server):  # macOS: 127.0.0.1 is the only loopback address configured
        if server.server_address[0] != "127.0.0.1":
            raise OSError(errno.EADDRNOTAVAIL, os.strerror(errno.EADDRNOTAVAIL))
        bind(server)

    monkeypatch.setattr(http_module._Server, "server_bind", only_127_0_0_1)
    running = start(klass.out, "en", rubric)
    try:
        assert running.fell_back and running.guard.host == "127.0.0.1" and fetch(running, "/")[0] == 200
    finally:
        running.stop()
    with pytest.raises(OSError):  # an address asked for is never swapped for another
        start(klass.out, "en", rubric, host="127.9.9.9")


@pytest.mark.parametrize("host", ["0.0.0.0", "localhost", "192.168.1.5", "::1", "127.0.0.1\x1b[2J"])
def test_a_host_that_is_not_a_loopback_address_is_refused(tmp_path, capsys, host):
    klass = build_class(tmp_path / "out", 6)
    assert main(["serve", str(klass.out), "--port", "0", "--lang", "en", "--host", host]) == 2
    err = capsys.readouterr().err
    assert "loopback" in err and "\x1b" not in err


def test_serve_on_a_folder_without_a_store_is_bad_input(tmp_path, capsys):
    assert main(["serve", str(tmp_path), "--port", "0", "--lang", "en"]) == 2
    assert "no grades.sqlite" in capsys.readouterr().err


def test_the_command_prints_its_url_and_stops_cleanly_on_ctrl_c(tmp_path):
    klass = build_class(tmp_path / "out", 6)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "grader", "serve", str(klass.out), "--port", "0",
                             "--allow-edit", "--lang", "en"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=tmp_path)
    try:
        line = proc.stdout.readline()
        url = line.split("grader serve: ", 1)[1].strip()
        host = urllib.parse.urlsplit(url).hostname
        assert loopback_host(host) and host != "127.0.0.1" and "?token=" in url
        origin = url.split("/?")[0]
        assert fetch_url(origin + "/")[0] == 403  # no token, nothing of the class
        status, headers, _ = fetch_url(url)
        assert status == 303
        assert fetch_url(origin + "/", headers={"Cookie": headers["Set-Cookie"].split(";")[0]})[0] == 200
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "stopped" in err and "Traceback" not in err


def test_grade_keeps_the_flagged_submissions_classes_and_leaves_out_what_it_cannot_read(tmp_path):
    from grader.batch.class_sources import flagged_class_sources

    bad = tmp_path / "bad.ipynb"
    bad.write_text("not a notebook", encoding="utf-8")
    pairs = [{"a": "ref", "b": "bad"}, {"a": "ref", "b": "gone"}]
    kept = flagged_class_sources(pairs, {"ref": REPO / "reference" / "lab.ipynb", "bad": bad})
    assert list(kept) == ["ref"]
    sha, classes = kept["ref"]
    assert len(sha) == 64 and {c["name"] for c in classes} == {"CustomRNN", "CustomLSTM"}
    assert all(c["text"].startswith("class ") and c["cell"] >= 0 and c["line"] >= 1 for c in classes)
