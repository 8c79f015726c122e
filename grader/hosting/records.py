"""What running code in a kernel produced: a record per notebook cell, the whole run, one grader call.

Everything here came out of the student's kernel: tracebacks and error values are capped and stripped of
terminal colour codes before anything else reads them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import nbformat

from grader.devices import DeviceChoice
from grader.messages import Msg
from grader.notebook import ShellEscape

CellStatus = Literal["ok", "error", "timeout", "not_run"]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_TRACEBACK_LINES = 20
_TRACEBACK_CHARS = 4000
ERROR_VALUE_CHARS = 1000


@dataclass
class CellRecord:
    """What happened to one code cell. `index` counts all cells, markdown included."""

    index: int
    status: CellStatus
    duration_s: float
    error_name: str | None
    error_value: str | None
    traceback: str | None
    source: str
    message: Msg | None = None
    output_truncated: bool = False
    # A frame of the traceback (not its message, which the student writes) is in a `forward` method.
    model_frames: bool = False


@dataclass
class ExecutionResult:
    cells: list[CellRecord]
    kernel_died: bool
    timed_out: bool
    duration_s: float
    device: DeviceChoice
    npu_remapped: bool
    shell_escapes: list[ShellEscape]
    notebook: nbformat.NotebookNode
    killed_by_watchdog: bool = False


@dataclass
class CodeResult:
    ok: bool
    stdout: str
    error_name: str | None
    error_value: str | None
    timed_out: bool
    kernel_died: bool
    stderr: str = ""


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def short_traceback(lines: list[str]) -> str:
    """The last lines of an IPython traceback, colour codes removed."""
    text = strip_ansi("\n".join(lines))
    tail = "\n".join(text.splitlines()[-_TRACEBACK_LINES:])
    return tail[-_TRACEBACK_CHARS:]


def frames_in_forward(lines: Any) -> bool:
    """Whether a frame of an IPython traceback (a list: one entry per frame, the exception's message last)
    runs in a `forward` method. The message is left out: the student writes it, and "in forward" there once
    excused a loop's own crash (measured)."""
    if not isinstance(lines, list):
        return False
    frames = [strip_ansi(x) for x in lines[:-1][-_TRACEBACK_LINES:] if isinstance(x, str)]
    return any(", in forward" in f or "forward(" in f.split("\n", 1)[0] or ".forward(" in f for f in frames)




def not_run(index: int, source: str, message: Msg) -> CellRecord:
    return CellRecord(index, "not_run", 0.0, None, None, None, source, message)
