"""`grader serve OUT`: start the server, print its URL, serve until Ctrl-C, then stop cleanly."""
from __future__ import annotations

import sys
from pathlib import Path

from grader.errors import EXIT_OK, BadInputError
from grader.messages import text
from grader.rubric import load_rubric
from grader.safe_text import safe_line
from grader.serve.guard import loopback_host
from grader.serve.http import start


def serve(out: Path, *, port: int, allow_edit: bool, rubric_path: Path | None, lang: str | None,
          host: str | None = None) -> int:
    """`host` None: a random 127.x.y.z (127.0.0.1 where the system has no other); else that loopback address."""
    rubric = load_rubric(rubric_path)  # exit 2 for a bad rubric before anything listens
    lang = lang or rubric.meta.language
    shown = host or "127.x.y.z"
    if host is not None and not loopback_host(host):
        raise BadInputError(text("serve.host_not_loopback", lang, host=safe_line(host)[:100]))
    if not 0 <= port <= 65535:
        raise BadInputError(text("serve.port_in_use", lang, host=shown, port=port, reason="0..65535"))
    try:
        running = start(Path(out), lang, rubric, host=host, port=port, allow_edit=allow_edit, in_thread=False)
    except OSError as exc:
        raise BadInputError(text("serve.port_in_use", lang, host=shown, port=port,
                                 reason=exc.strerror or str(exc))) from None
    print(text("serve.started", lang, url=running.url), flush=True)
    if running.fell_back:
        print(text("serve.fell_back", lang), file=sys.stderr, flush=True)
    print(text("serve.started_edit_note" if allow_edit else "serve.started_read_note", lang), file=sys.stderr,
          flush=True)
    try:
        running.server.serve_forever()
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a TA stops it: not an error
    finally:
        running.stop()
    print(text("serve.stopped", lang), file=sys.stderr)
    return EXIT_OK
