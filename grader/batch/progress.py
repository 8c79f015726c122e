"""The progress line on stderr: done/total, failed, ETA.

On a terminal it redraws one line in place; in a log (CI, nohup, a pipe) it
prints a plain line at most every `interval_s` seconds and at the end, so a
log of a 1,000-submission batch stays readable.

The line's text is made terminal-safe (`grader.safe_text`); the redraw codes,
the grader's own, go out through the stream's control channel, so a stream the
CLI wrapped in a SafeStream still redraws.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from grader.messages import text
from grader.safe_text import redraw_line, safe_line


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass
class Progress:
    total: int
    lang: str
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    is_tty: bool | None = None
    interval_s: float = 15.0
    done: int = 0
    failed: int = 0
    _began: float = field(default_factory=time.monotonic)
    _last_line: float = 0.0

    def __post_init__(self) -> None:
        if self.is_tty is None:
            self.is_tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def eta_s(self) -> float | None:
        """Remaining time from the mean time per finished submission so far (parallelism included)."""
        if self.done == 0:
            return None
        return (time.monotonic() - self._began) / self.done * (self.total - self.done)

    def line(self) -> str:
        eta = self.eta_s()
        return text("batch.progress", self.lang, done=self.done, total=self.total, failed=self.failed,
                    eta=format_duration(eta) if eta is not None else "?",
                    elapsed=format_duration(time.monotonic() - self._began))

    def start(self) -> None:
        self._draw(force=True)

    def advance(self, *, failed: bool) -> None:
        self.done += 1
        self.failed += int(failed)
        self._draw(force=self.done == self.total)

    def finish(self) -> None:
        if self.is_tty:
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, *, force: bool) -> None:
        if self.is_tty:
            redraw_line(self.stream, self.line())
            return
        now = time.monotonic()
        if force or now - self._last_line >= self.interval_s:
            self._last_line = now
            self.stream.write(safe_line(self.line()) + "\n")
            self.stream.flush()
