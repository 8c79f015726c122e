"""The standard library's threading HTTP server on a loopback address, carrying requests to the app (app.py).

Why the standard library and not starlette + uvicorn: the page is a handful of
server-rendered routes over one SQLite file for one TA; http.server does that with no
dependency to install, pin or audit, and no event loop between a request and SQLite's
blocking calls. Threads, not one at a time: Chromium opens spare connections it may
never use, and a one-at-a-time server waits on such a connection before the next
request (docs/serve.md).

Bounds on what a request may send: the request line and headers as http.server caps
them (64 KiB a line, 100 headers), a form of 64 KiB at most and only urlencoded, at most
50 fields in the form and 50 in the query string (more: 400, with a page). Bounds on what
a client may hold: every read and write on a connection times out after 15 s
(REQUEST_TIMEOUT_S: an idle keep-alive connection, a request line or headers sent slowly,
a body shorter than its Content-Length, a client that stops reading), which closes it;
and at most 32 connections are served at once (MAX_CONNECTIONS: one more is answered 503
and closed at once), so idle or slow clients cannot pile up threads. Nothing a request
says reaches a terminal: the per-request log is off.
"""
from __future__ import annotations

import errno
import logging
import socket
import threading
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from grader.rubric import Rubric
from grader.serve.app import App, Request, Response
from grader.serve.classdata import ClassStore
from grader.serve.guard import LOOPBACK, Guard, random_loopback

log = logging.getLogger(__name__)
MAX_FORM_BYTES = 64 * 1024
MAX_FORM_FIELDS = 50
FORM_TYPE = "application/x-www-form-urlencoded"
REQUEST_TIMEOUT_S = 15.0
MAX_CONNECTIONS = 32
BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\nRetry-After: 5\r\n\r\n"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "grader"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.request_timeout)  # every read and write on this connection

    def do_GET(self) -> None:
        self._serve("GET", {})

    def do_HEAD(self) -> None:
        self._serve("HEAD", {}, body=False)

    def do_POST(self) -> None:
        length = self._length()
        try:
            form = self._form(length)
        except TimeoutError:  # the body stopped short of its Content-Length and the client waits
            self._answer(self.server.app.message(408, "timed_out"), close=True)
            return
        if form is None:
            too_large = length > MAX_FORM_BYTES
            self._answer(self.server.app.message(413 if too_large else 400, "too_large" if too_large else
                                                 "bad_request"), close=True)
            return
        self._serve("POST", form)

    def _serve(self, method: str, form: dict[str, str], *, body: bool = True) -> None:
        request = self._request(method, form)
        if request is None:
            self._answer(self.server.app.message(400, "bad_request"), body=body, close=True)
            return
        self._answer(self._dispatch(request), body=body)

    def _dispatch(self, request: Request) -> Response:
        try:
            return self.server.app.handle(request)
        except Exception:  # a bug of ours costs this answer, never the server
            log.warning("grader serve: %s %s failed", request.method, request.path[:200], exc_info=True)
            return self.server.app.message(500, "internal_error")

    def do_PUT(self) -> None:
        self._answer(Response(405, headers=[("Allow", "GET, HEAD, POST")]), close=True)

    do_DELETE = do_PATCH = do_OPTIONS = do_PUT

    def _request(self, method: str, form: dict[str, str]) -> Request | None:
        """The request for the app, or None for a query string it cannot take (over MAX_FORM_FIELDS fields)."""
        try:
            parts = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(parts.query, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
        except ValueError:
            return None
        headers = {name.lower(): value for name, value in self.headers.items()}
        return Request(method, parts.path, query, headers, form)

    def _length(self) -> int:
        try:
            return max(0, int(self.headers.get("Content-Length") or 0))
        except ValueError:
            return MAX_FORM_BYTES + 1

    def _form(self, length: int) -> dict[str, str] | None:
        """The urlencoded form of `length` bytes, or None for one too large, of another type or malformed."""
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if length > MAX_FORM_BYTES or content_type != FORM_TYPE:
            return None
        body = self.rfile.read(length)  # TimeoutError after REQUEST_TIMEOUT_S without a byte
        if len(body) != length:  # the client closed before sending all it announced
            return None
        try:
            pairs = urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                                           max_num_fields=MAX_FORM_FIELDS, strict_parsing=False)
        except (UnicodeDecodeError, ValueError):
            return None
        return dict(pairs)

    def _answer(self, response: Response, *, body: bool = True, close: bool = False) -> None:
        self.send_response(response.status)
        for name, value in response.all_headers():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if body:
            self.wfile.write(response.body)

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionResetError, BrokenPipeError):
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass  # request lines quote URLs anyone can type; nothing of them goes to the TA's terminal


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    app: App
    request_timeout = REQUEST_TIMEOUT_S
    slots = threading.BoundedSemaphore(MAX_CONNECTIONS)  # replaced per server by `start`

    def process_request(self, request: Any, client_address: Any) -> None:
        """A thread per connection while fewer than the server's slots are taken; else 503 and close."""
        if not self.slots.acquire(blocking=False):
            self._busy(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def _busy(self, request: Any) -> None:
        try:
            if isinstance(request, socket.socket):
                request.settimeout(1.0)
                request.sendall(BUSY)
        except OSError:
            pass
        self.shutdown_request(request)

    def handle_error(self, request: object, client_address: object) -> None:
        log.debug("a request failed", exc_info=True)


@dataclass
class Running:
    """A server started by `start`: its URL (with the token), and how to stop it."""

    server: _Server
    guard: Guard
    classes: ClassStore
    thread: threading.Thread | None = None
    fell_back: bool = False  # a random loopback address was wanted, but this system has only 127.0.0.1

    @property
    def url(self) -> str:
        return self.guard.start_url()

    @property
    def origin(self) -> str:
        return self.guard.origin

    def stop(self) -> None:
        if self.thread is not None:
            self.server.shutdown()
            self.thread.join(timeout=10)
        self.server.server_close()
        self.classes.close()


def start(out: Path, lang: str, rubric: Rubric, *, host: str | None = None, port: int = 0,
          allow_edit: bool = False, in_thread: bool = True, request_timeout: float = REQUEST_TIMEOUT_S,
          max_connections: int = MAX_CONNECTIONS) -> Running:
    """Bind host:port over OUT's store (host None: a random 127.x.y.z, else 127.0.0.1 where the system has
    no other loopback address, as macOS; port 0: a free port); serve in a thread unless `in_thread` is False
    (then call `serve_forever` on `.server`)."""
    classes = ClassStore(out, lang, rubric, writable=allow_edit)
    fell_back = False
    try:
        try:
            server = _Server((host or random_loopback(), port), _Handler)
        except OSError as exc:
            if host is not None or exc.errno != errno.EADDRNOTAVAIL:
                raise
            server, fell_back = _Server((LOOPBACK, port), _Handler), True
    except BaseException:
        classes.close()
        raise
    guard = Guard(str(server.server_address[0]), server.server_address[1], allow_edit)
    server.app = App(classes, guard)
    server.request_timeout = request_timeout
    server.slots = threading.BoundedSemaphore(max_connections)
    running = Running(server, guard, classes, fell_back=fell_back)
    if in_thread:
        running.thread = threading.Thread(target=server.serve_forever, name="grader-serve", daemon=True)
        running.thread.start()
    return running
