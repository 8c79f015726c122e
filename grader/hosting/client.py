"""The grader's Jupyter client for a student kernel: a cap on each message, a cap on each cell's outputs.

Every message is the student's: the per-message cap stops a flood before it is allocated in the grader's
process, the per-cell cap bounds what is kept of the rest.
"""
from __future__ import annotations

import subprocess
import time
from typing import Any

import nbformat
import zmq
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.client import KernelClient
from nbclient import NotebookClient

from grader.hosting.limits import MIB
from grader.hosting.records import ERROR_VALUE_CHARS

TRUNCATION_MARK = "\n[...]\n"


def _output_size(out: Any) -> int:
    """Bytes an output keeps in memory, roughly (a fixed cost per output counts floods of tiny ones)."""
    size = 200
    if "text" in out:
        size += len(out["text"])
    for value in out.get("data", {}).values():
        size += len(value) if isinstance(value, str) else len(str(value))
    return size


class CappedKernelClient(AsyncKernelClient):
    """A kernel client whose sockets refuse any message over MAX_MESSAGE_BYTES.

    Why a limit here, and not only per cell in CappedClient: that cap applies
    after nbclient has received, decoded and parsed a message whole. One
    `print('x' * 200_000_000)` took the grader's RSS from 50 MB to 650 MB
    (measured). libzmq's ZMQ_MAXMSGSIZE checks a frame's length header before
    allocating it and drops the connection instead (the socket reconnects; the
    messages in between are lost, which only costs that cell's output; a lost
    execute_reply ends as a timeout). The kernel also caps its own streams
    (grader/inkernel/startup.py), but student code can undo that, so this one
    is the cap we rely on. Set per class by KernelSession before connecting.
    """

    max_message_bytes = 16 * MIB
    monitor_prefix = ""  # inproc address prefix of the shell and iopub sockets' DISCONNECTED events

    def _context_default(self) -> zmq.asyncio.Context:
        context = super()._context_default()
        context.setsockopt(zmq.MAXMSGSIZE, int(self.max_message_bytes))
        return context

    # libzmq does not reconnect after refusing a message: the channel is gone for good (measured).
    # A session watches these events and stops a kernel whose channel was cut while it still runs.
    def connect_iopub(self, identity: bytes | None = None) -> zmq.Socket[Any]:
        return self._monitored(super().connect_iopub(identity), "iopub")

    def connect_shell(self, identity: bytes | None = None) -> zmq.Socket[Any]:
        return self._monitored(super().connect_shell(identity), "shell")

    def _monitored(self, sock: zmq.Socket[Any], channel: str) -> zmq.Socket[Any]:
        if self.monitor_prefix:
            sock.monitor(f"{self.monitor_prefix}-{channel}", zmq.EVENT_DISCONNECTED)
        return sock


class CappedClient(NotebookClient):
    """A NotebookClient that keeps at most `cap` bytes of outputs per cell.

    The cell's error output (if any) is always kept: the record needs it.
    """

    def __init__(self, nb: nbformat.NotebookNode, cap: int, **kw: Any) -> None:
        super().__init__(nb, **kw)
        self.cap = cap
        self.kept = 0
        self.truncated = False

    def reset_cap(self) -> None:
        self.kept = 0
        self.truncated = False

    def output(self, outs: list[Any], msg: dict[str, Any], display_id: str | None, cell_index: int) -> Any:
        if self.clear_before_next_output:
            self.kept = 0
        if msg["msg_type"] != "error" and self.kept >= self.cap:
            self._mark_truncated(outs)
            return None
        out = super().output(outs, msg, display_id, cell_index)
        if out is None or msg["msg_type"] == "error":
            return out
        size = _output_size(out)
        if self.kept + size > self.cap:
            room = self.cap - self.kept
            if out.get("output_type") == "stream" and room > 0:
                out["text"] = out["text"][:room]  # keep the head of a flood, drop the rest
            else:
                outs.remove(out)
                out = None
            self.kept = self.cap
            self._mark_truncated(outs)
            return out
        self.kept += size
        return out

    def clear_output(self, outs: list[Any], msg: dict[str, Any], cell_index: int) -> None:
        super().clear_output(outs, msg, cell_index)
        if not outs:
            self.kept = 0

    def _mark_truncated(self, outs: list[Any]) -> None:
        if not self.truncated:
            self.truncated = True
            outs.append(nbformat.v4.new_output("stream", name="stderr", text=TRUNCATION_MARK))


def reply_content(replies: list[Any]) -> dict[str, Any]:
    """The last execute_reply's content, or {} when the kernel sent something else."""
    reply = replies[-1] if replies else None
    content = reply.get("content") if isinstance(reply, dict) else None
    return content if isinstance(content, dict) else {}


def text_field(value: Any) -> str:
    """A reply field that should be a string; a kernel can send any JSON there."""
    return value if isinstance(value, str) else ("" if value is None else str(value)[:ERROR_VALUE_CHARS])


class ChannelMonitor:
    """Watches the DISCONNECTED events of a client's shell and iopub sockets.

    libzmq does not reconnect after refusing an over-size message: the channel is gone for good (measured), and
    a kernel still running behind a cut channel is stopped by the watchdog ("flood").
    """

    def __init__(self) -> None:
        self._monitors: list[zmq.Socket[Any]] = []
        self._cut_since: float | None = None

    def watch(self, kc: KernelClient, prefix: str) -> None:
        shadow: zmq.Context[Any] = zmq.Context.shadow(kc.context.underlying)  # inproc needs the same libzmq context
        for channel in ("iopub", "shell"):
            monitor = shadow.socket(zmq.PAIR)
            monitor.connect(f"{prefix}-{channel}")
            self._monitors.append(monitor)

    def cut(self, process: subprocess.Popen[bytes] | None) -> bool:
        """True once a channel to a kernel that is still running (`process`) was cut."""
        if self._cut_since is None:
            for monitor in self._monitors:
                while monitor.poll(0):
                    monitor.recv_multipart()
                    self._cut_since = time.monotonic()
            return False
        # A kernel that exits also disconnects: only a kernel still running a second later was cut off.
        if time.monotonic() - self._cut_since < 1.0:
            return False
        if process is not None and process.poll() is None:
            return True
        self._cut_since = None
        return False

    def close(self) -> None:
        for monitor in self._monitors:
            monitor.close(linger=0)
        self._monitors = []
