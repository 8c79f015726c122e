"""`grader serve`'s requests and answers, with no socket in sight (http.py carries them).

Every page is rendered server-side by the report's one jinja environment (autoescape,
html_safe, StrictUndefined); the student's page extends the report's own template. Every
answer carries guard.SECURITY_HEADERS. Every request but the start URL needs the per-run
token's cookie (guard.py), else it gets 403 and nothing of the class. A state-changing
request is a POST that passes `Guard` (same origin, the token's cookie, the token in the
form), goes through the same code as the command line (grader/batch/ledger.py for
overrides, grader/release.py, the exports' writers) and answers with a redirect to the
page that shows the change (post/redirect/get) with a one-shot notice (kept here, named by
a random id in the URL, so a link cannot make one up), or with the page and the error in
words, never a traceback.
"""
from __future__ import annotations

import io
import logging
import secrets
import tempfile
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any

from grader.batch import ledger
from grader.batch.store import now_iso
from grader.errors import BadInputError, GraderError
from grader.messages import text
from grader.overrides import MAX_REASON_CHARS, clean_text
from grader.release import release
from grader.report.grades_csv import write_grades_csv
from grader.report.grades_xlsx import write_grades_xlsx
from grader.report.html import Translate, submission_context
from grader.report.templating import environment
from grader.safe_text import safe_line
from grader.serve.classdata import ClassData, ClassStore
from grader.serve.guard import SECURITY_HEADERS, Guard
from grader.serve.pairs import class_pairs, find_pair
from grader.serve.table import CHECK_STATUSES, ROW_STATUSES, ViewState, select
from grader.similarity_reviews import MAX_NOTE_CHARS, REOPENED, REVIEWED, PairReview, pair_key

log = logging.getLogger(__name__)
HTML = "text/html; charset=utf-8"
RELEASE_FOLDER = "release"
MAX_FIELD_CHARS = 4000
MAX_NOTICES = 64  # notices made and not yet shown (a redirect its browser never followed): the oldest go first


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]              # names in lower case
    form: dict[str, str] = field(default_factory=dict)

    def arg(self, name: str) -> str:
        values = self.query.get(name) or [""]
        return values[0]

    def posted(self, name: str) -> str:
        """A field of the posted form ("" when absent), cut at MAX_FIELD_CHARS."""
        return self.form.get(name, "")[:MAX_FIELD_CHARS]

    def cookies(self) -> dict[str, str]:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(self.headers.get("cookie", ""))
        except CookieError:
            return {}
        return {name: morsel.value for name, morsel in jar.items()}


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = HTML
    headers: list[tuple[str, str]] = field(default_factory=list)

    def all_headers(self) -> list[tuple[str, str]]:
        return [("Content-Type", self.content_type), ("Content-Length", str(len(self.body))),
                *SECURITY_HEADERS, *self.headers]


def redirect(location: str, *extra: tuple[str, str]) -> Response:
    return Response(303, headers=[("Location", location), *extra])


class App:
    """One server's pages over one OUT (see the module docstring)."""

    def __init__(self, classes: ClassStore, guard: Guard) -> None:
        self.classes = classes
        self.guard = guard
        self.lang = classes.lang
        self.s = Translate(self.lang, "serve")
        self._notices: dict[str, str] = {}  # id -> text: what a change's redirect shows once
        self._notices_lock = threading.Lock()
        self._get: dict[str, Callable[[Request], Response]] = {
            "/": self.class_page, "/student": self.student_page, "/pairs": self.pairs_page,
            "/pair": self.pair_page, "/export/grades.csv": self.export_csv, "/export/grades.xlsx": self.export_xlsx}
        self._post: dict[str, Callable[[Request], Response]] = {
            "/override": self.post_override, "/pair/review": self.post_review, "/export/release": self.post_release}

    # -- dispatch ------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        if not self.guard.host_ok(request.headers.get("host")):
            return self.message(403, "refused_host")
        reading = request.method in ("GET", "HEAD")
        if not reading and request.method != "POST":
            return Response(405, headers=[("Allow", "GET, HEAD, POST")])
        if reading and request.path == "/" and "token" in request.query:
            return self.start(request)
        if not reading and not self.guard.same_origin(request.headers):
            return self.message(403, "refused_origin")
        if not self.guard.authorised(request.cookies()):
            return self.message(403, "refused_no_cookie")
        if reading:
            handler = self._get.get(request.path)
            return handler(request) if handler else self.message(404, "not_found")
        handler = self._post.get(request.path)
        if handler is None:
            return self.message(404, "not_found")
        if not self.guard.allow_edit:
            return self.message(403, "refused_read_only")
        if not self.guard.token_ok(request.form.get("token")):
            return self.message(403, "refused_token")
        return handler(request)

    def start(self, request: Request) -> Response:
        """The start URL (`/?token=...`): keep the token in a cookie, show the URL without it."""
        if not self.guard.token_ok(request.arg("token")):
            return self.message(403, "refused_no_cookie")
        rest = {k: v for k, v in request.query.items() if k != "token"}
        location = "/" + ("?" + urllib.parse.urlencode(rest, doseq=True) if rest else "")
        return redirect(location, ("Set-Cookie", self.guard.set_cookie()))

    # -- rendering -----------------------------------------------------------------------------------

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        base = {"lang": self.lang, "html_lang": "zh-CN" if self.lang == "zh" else "en", "s": self.s}
        page = environment().get_template(template).render(**{**base, **context})
        return Response(status, page.encode("utf-8"))

    def message(self, status: int, key: str, **params: Any) -> Response:
        return self.render("serve_message.html.j2", status, heading=self.s(f"{key}_title"),
                           body=self.s(key, **params), can_edit=False, token="")

    def _edit_context(self, request: Request) -> dict[str, Any]:
        can_edit = self.guard.can_edit(request.cookies())
        return {"can_edit": can_edit, "token": self.guard.token if can_edit else ""}

    # -- the class table -----------------------------------------------------------------------------

    def class_page(self, request: Request) -> Response:
        data = self.classes.data()
        view = ViewState.from_query(request.query)
        rows = select(data.table, view)
        return self.render("serve_class.html.j2", view=view, rows=rows, total=len(data.table.rows),
                           check_ids=data.table.check_ids, diagnoses=data.table.diagnoses,
                           row_statuses=ROW_STATUSES, check_statuses=CHECK_STATUSES,
                           names=any(r.name for r in data.table.rows), notice=self._notice(request),
                           **self._edit_context(request))

    def _tell(self, notice: str) -> str:
        """Keep `notice` for the page a change redirects to; its id (random) goes into that URL."""
        key = secrets.token_urlsafe(16)
        with self._notices_lock:
            self._notices[key] = notice
            while len(self._notices) > MAX_NOTICES:
                del self._notices[next(iter(self._notices))]
        return key

    def _notice(self, request: Request) -> str:
        """The notice the URL's id names, once: a link cannot make one up, and a reload shows none."""
        key = request.arg("notice")
        if not key:
            return ""
        with self._notices_lock:
            return self._notices.pop(key, "")

    # -- a student -----------------------------------------------------------------------------------

    def student_page(self, request: Request) -> Response:
        return self._student_page(request, request.arg("id"))

    def _student_page(self, request: Request, sid: str, *, status: int = 200, error: str = "") -> Response:
        """A student's page; also the answer to a refused override, for the student the form named."""
        data = self.classes.data()
        result = data.results.get(sid)
        if result is None:
            return self.message(404, "unknown_student")
        context = submission_context(result, self.lang)
        # failing cells first: the report lists them in notebook order
        context["cells"]["rows"] = sorted(context["cells"]["rows"], key=lambda row: row["status"] == "ok")
        row = next((r for r in data.table.rows if r.id == sid), None)
        events = [e for e in data.events if e.submission_id == sid]
        checks = [{"id": c["id"], "max": f"{float(c['max_score']):g}", "overridden": "override" in c}
                  for c in result["checks"]]
        return self.render("serve_student.html.j2", status, sid=sid, events=events, override_checks=checks,
                           flags=row.flags if row else (), serve_error=error, notice=self._notice(request),
                           **context, **self._edit_context(request))

    def post_override(self, request: Request) -> Response:
        sid, check = request.posted("id"), request.posted("check")
        clear = request.posted("action") == "clear"
        try:
            points = None if clear else _points(request.posted("points"), self.lang)
            wanted = ledger.Request(sid, check, points, request.posted("reason"),
                                    request.posted("by") or ledger.default_author())
            with self.classes.locked() as store:
                ledger.record(store, [wanted], self.lang)
                # every output in OUT again, as `grader override` does, so the files agree with the page
                ledger.rewrite_outputs(store, self.classes.out, self.lang, io.StringIO(), self.classes.rubric)
        except GraderError as exc:
            return self._student_page(request, sid, status=400, error=exc.text_in(self.lang)[0])
        notice = self._tell(self.s("done_clear" if clear else "done_set"))
        return redirect("/student?" + urllib.parse.urlencode({"id": sid, "notice": notice}))

    # -- similarity ----------------------------------------------------------------------------------

    def pairs_page(self, request: Request) -> Response:
        data = self.classes.data()
        pairs = [p for p in data.pairs if isinstance(p, dict) and isinstance(p.get("a"), str)
                 and isinstance(p.get("b"), str)]
        return self.render("serve_pairs.html.j2", pairs=pairs, similarity_run=data.similarity_run,
                           reviewed=data.reviewed, pair_key=pair_key, **self._edit_context(request))

    def pair_page(self, request: Request) -> Response:
        return self._pair_page(request, request.arg("a"), request.arg("b"))

    def _pair_page(self, request: Request, a: str, b: str, *, status: int = 200, error: str = "") -> Response:
        """A pair's page; also the answer to a refused review, for the pair the form named."""
        data = self.classes.data()
        pair = find_pair(data.pairs, a, b)
        if pair is None:
            return self.message(404, "unknown_pair")
        a, b = str(pair["a"]), str(pair["b"])
        with self.classes.locked() as store:
            sources = {sid: kept[1] for sid in (a, b) if (kept := store.class_sources(sid)) is not None}
        names = {sid: str(data.results[sid].get("student_name") or "") if sid in data.results else ""
                 for sid in (a, b)}
        return self.render("serve_pair.html.j2", status, pair=pair, a=a, b=b, names=names,
                           classes=class_pairs(pair, sources), review=data.reviewed.get(pair_key(a, b)),
                           error=error, notice=self._notice(request), **self._edit_context(request))

    def post_review(self, request: Request) -> Response:
        a, b = request.posted("a"), request.posted("b")
        action = request.posted("action")
        data = self.classes.data()
        if find_pair(data.pairs, a, b) is None:
            return self.message(404, "unknown_pair")
        if action not in (REVIEWED, REOPENED):
            return self._pair_page(request, a, b, status=400, error=self.s("bad_action"))
        by = clean_text(request.posted("by"), MAX_REASON_CHARS) or ledger.default_author()
        event = PairReview(a, b, action, clean_text(request.posted("note"), MAX_NOTE_CHARS), by, now_iso())
        with self.classes.locked() as store:
            store.record_pair_review(event)
        notice = self._tell(self.s(f"done_{action}"))
        return redirect("/pair?" + urllib.parse.urlencode({"a": a, "b": b, "notice": notice}))

    # -- exports -------------------------------------------------------------------------------------

    def export_csv(self, request: Request) -> Response:
        return self._export(self.classes.data(), "grades.csv", "text/csv; charset=utf-8",
                            lambda results, path: write_grades_csv(results, path, self.lang))

    def export_xlsx(self, request: Request) -> Response:
        return self._export(self.classes.data(), "grades.xlsx",
                            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", write_grades_xlsx)

    def _export(self, data: ClassData, name: str, content_type: str,
                write: Callable[[list[Any], Path], Path]) -> Response:
        """The file the command line writes into OUT, written by the same function into a scratch folder."""
        with tempfile.TemporaryDirectory(prefix="grader-serve-") as tmp:
            body = write(list(data.results.values()), Path(tmp) / name).read_bytes()
        return Response(200, body, content_type, [("Content-Disposition", f'attachment; filename="{name}"')])

    def post_release(self, request: Request) -> Response:
        try:
            done = release(self.classes.out, self.classes.out / RELEASE_FOLDER, self.lang, self.classes.rubric)
        except GraderError as exc:
            return self.message(400, "release_failed", error=exc.text_in(self.lang)[0])
        notice = self._tell(self.s("release_done", count=len(done.files), dest=str(self.classes.out / RELEASE_FOLDER)))
        return redirect("/?" + urllib.parse.urlencode({"notice": notice}))


def _points(value: str, lang: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise BadInputError(text("override.points_not_a_number", lang, points=safe_line(value)[:50])) from None
