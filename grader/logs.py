"""Where the grader's log lines go: stderr, through the sanitising stream, for one command.

Without --debug: WARNING and above, from every library. With --debug: the grader's own DEBUG lines too
(loggers under `grader`), not every library's: numba alone writes thousands of DEBUG lines per compiled
function. A log line may quote student text (an exception from the kernel's reply, a file name), so the
handler writes to a SafeStream, which shows escape sequences instead of obeying them.
"""
from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

from grader.safe_text import terminal_stream

GRADER_LOGGER = "grader"
_FORMAT = "%(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def logging_to_stderr(debug: bool) -> Iterator[None]:
    """Log lines to (the sanitised) sys.stderr while the block runs; the loggers as they were afterwards."""
    handler = logging.StreamHandler(terminal_stream(sys.stderr))
    handler.setFormatter(logging.Formatter(_FORMAT))
    root, grader = logging.getLogger(), logging.getLogger(GRADER_LOGGER)
    saved = root.level, grader.level
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    grader.setLevel(logging.DEBUG if debug else logging.NOTSET)  # NOTSET: the root's WARNING
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        grader.setLevel(saved[1])


def debug_enabled() -> bool:
    """Whether this process shows the grader's DEBUG lines (what a worker it starts should do too)."""
    return logging.getLogger(GRADER_LOGGER).isEnabledFor(logging.DEBUG)
