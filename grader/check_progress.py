"""What `grader check` shows on a terminal while it works: a first line at once, then where it is.

A check takes about 10 s, most of it running the notebook; without a word a student wonders whether it hangs.
On a terminal (stderr is a TTY) the first line comes before torch is even imported, then one line is redrawn
in place: the notebook's cell N of M, the model checks, the training. In a log or a pipe nothing is printed:
CI logs and `--format json` output stay as they were.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TextIO

from grader.messages import text
from grader.safe_text import redraw_line


@dataclass
class CheckProgress:
    lang: str
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    is_tty: bool | None = None

    def __post_init__(self) -> None:
        if self.is_tty is None:
            self.is_tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def start(self, notebook: str) -> None:
        self._line(text("progress.starting", self.lang, notebook=notebook))

    def cell(self, number: int, total: int) -> None:
        self._line(text("progress.cell", self.lang, number=number, total=total))

    def stage(self, name: str) -> None:
        self._line(text(f"progress.stage_{name}", self.lang))

    def finish(self) -> None:
        if self.is_tty:  # the report starts on a clean line
            try:
                redraw_line(self.stream, "")
            except (OSError, ValueError):
                self.is_tty = False

    def _line(self, line: str) -> None:
        if not self.is_tty:
            return
        try:
            redraw_line(self.stream, line)
        except (OSError, ValueError):  # a closed terminal must not cost the check its result
            self.is_tty = False
