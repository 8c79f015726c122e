"""Who may change what, and the headers every answer carries (docs/security.md, docs/serve.md).

- The server listens on one loopback address only: by default a random 127.x.y.z of its own
  (Linux routes all of 127/8 to the loopback interface), else 127.0.0.1 (`loopback_host`).
  Cookies are scoped by host, not by port: on an address of its own, the token's cookie is
  sent to no other local server the browser visits (on 127.0.0.1 it would go to every one).
- It answers only requests whose Host is its own (HOST:PORT, and localhost:PORT when HOST is
  127.0.0.1): a page elsewhere that points a name of its own at the address (DNS rebinding)
  gets 403, not the class.
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
import ipaddress
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
LOOPBACK = "127.0.0.1"


def random_loopback() -> str:
    """A random address in 127/8 other than 127.0.0.1 (and not ending in 0 or 255)."""
    while True:
        host = f"127.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{1 + secrets.randbelow(254)}"
        if host != LOOPBACK:
            return host


def loopback_host(host: str) -> bool:
    """`host` is an IPv4 loopback address written as one (a name like localhost is not)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.version == 4 and address.is_loopback and str(address) == host


@dataclass(frozen=True)
class Guard:
    """One run's rules: its address and port, whether edits are allowed, and its token."""

    host: str
    port: int
    allow_edit: bool
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def names(self) -> tuple[str, ...]:
        """HOST:PORT as a request may name it: localhost too, where the address is 127.0.0.1."""
        own = f"{self.host}:{self.port}"
        return (own, f"localhost:{self.port}") if self.host == LOOPBACK else (own,)

    @property
    def cookie_name(self) -> str:
        # cookies are shared by every port of a host: name it by port, so two servers on 127.0.0.1 never mix them up
        return f"grader_serve_{self.port}"

    def start_url(self) -> str:
        """The URL printed at start: the only way into the pages (it sets the cookie)."""
        return f"{self.origin}/?token={self.token}"

    def host_ok(self, host: str | None) -> bool:
        return host in self.names

    def same_origin(self, headers: Mapping[str, str]) -> bool:
        """The request came from one of our pages: Origin (else Referer) is ours."""
        allowed = {f"http://{name}" for name in self.names}
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
