"""Who may change what, and the headers every answer carries (docs/security.md, docs/serve.md).

- The server listens on 127.0.0.1 only, and answers only requests whose Host is its own
  (127.0.0.1:PORT or localhost:PORT): a page elsewhere that points a name of its own at
  127.0.0.1 (DNS rebinding) gets 403, not the class.
- Every request needs a random per-run token (secrets.token_urlsafe, new at each start, read-only
  or not), printed in the start URL: the class's names, grades, sources and exports are for the TA
  who started the server, not for any local user or process (a student's kernel graded without
  bubblewrap runs as that user too). Opening the start URL stores the token in a cookie (HttpOnly,
  SameSite=Strict) and redirects to the same page without it, so a URL a TA shares carries no
  token; any other request without that cookie gets 403 and nothing of the class.
- Changes need --allow-edit as well; the pages then put the token in every form, and a POST must
  carry it there too (compared in constant time, like the cookie).
- A POST must also come from the server's own origin (Origin, else Referer): a form on any
  other site, or a page opened from a file, is refused with 403 even with the token.
- Only POST changes anything; GET and HEAD only read.
- The CSP is the reports' (default-src 'none', inline styles, data: images, no script at all),
  plus form-action 'self' and frame-ancestors 'none'.
"""
from __future__ import annotations

import hmac
import secrets
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field

CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    # same-origin, not the reports' no-referrer: under no-referrer a browser posts forms with "Origin: null"
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
)
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Guard:
    """One run's rules: its port, whether edits are allowed, and its token."""

    port: int
    allow_edit: bool
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)

    @property
    def origin(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def cookie_name(self) -> str:
        # cookies are shared by every port of a host: name it by port, so two servers never mix them up
        return f"grader_serve_{self.port}"

    def start_url(self) -> str:
        """The URL printed at start: the only way into the pages (it sets the cookie)."""
        return f"{self.origin}/?token={self.token}"

    def host_ok(self, host: str | None) -> bool:
        return host in (f"{HOST}:{self.port}", f"localhost:{self.port}")

    def same_origin(self, headers: Mapping[str, str]) -> bool:
        """The request came from one of our pages: Origin (else Referer) is ours."""
        allowed = {f"http://{HOST}:{self.port}", f"http://localhost:{self.port}"}
        origin = headers.get("origin")
        if origin is not None:
            return origin in allowed
        referer = headers.get("referer")
        if not referer:
            return False
        parts = urllib.parse.urlsplit(referer)
        return f"{parts.scheme}://{parts.netloc}" in allowed

    def token_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def set_cookie(self) -> str:
        return f"{self.cookie_name}={self.token}; Path=/; HttpOnly; SameSite=Strict"

    def authorised(self, cookies: Mapping[str, str]) -> bool:
        """This browser opened the start URL: it holds the token's cookie."""
        return self.token_ok(cookies.get(self.cookie_name))

    def can_edit(self, cookies: Mapping[str, str]) -> bool:
        """The pages show the forms to whoever opened the start URL in this browser, with --allow-edit."""
        return self.allow_edit and self.authorised(cookies)
