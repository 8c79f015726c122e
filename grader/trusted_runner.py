"""A kernel stand-in for TRUSTED code: a persistent Python child process.

Calibration, the lstm.train benchmark and the training tests run the
reference (never student code) through exactly the code path the check uses
with a student's kernel. This runner speaks the same `run_code` protocol as
grader.hosting.session.KernelSession without Jupyter's start-up cost. It is not
sandboxed, so it must never be given student code.
"""
from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
from pathlib import Path

from grader.hosting.records import CodeResult
from grader.lab_api import CLASS_NAMES
from grader.threads import THREAD_ENV

# The trusted child answers with the kernel's own result type, so train_lstm cannot tell them apart.
ProcessResult = CodeResult


# The child: read one JSON request per line, exec its code in one persistent
# namespace, answer one JSON line on a private copy of stdout (fd 1 itself is
# pointed at stderr, so prints from the executed code cannot corrupt replies).
_SERVER = r"""
import contextlib, io, json, os, sys
reply = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
namespace = {"__name__": "__main__"}
for line in sys.stdin:
    code = json.loads(line)["code"]
    out = io.StringIO()
    answer = {"ok": True, "error_name": None, "error_value": None}
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, "<grader-cell>", "exec"), namespace)
    except BaseException as exc:
        answer.update(ok=False, error_name=type(exc).__name__, error_value=str(exc)[:2000])
    answer["stdout"] = out.getvalue()[-20000:]
    reply.write(json.dumps(answer) + "\n")
    reply.flush()
"""


class ProcessRunner:
    """A persistent `python` child that runs code sent to it, like a kernel without Jupyter.

    For trusted code only (the reference in calibration and benchmarks, and
    tests of the training check): it is not sandboxed. One torch thread.
    A call past its timeout kills the child (state lost, as with a killed
    kernel); the next call starts a fresh one.
    """

    def __init__(self, workdir: Path, prelude: str = "") -> None:
        self.workdir = Path(workdir)
        self.prelude = prelude
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> ProcessRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        env = {**os.environ, **THREAD_ENV, "PYTHONUNBUFFERED": "1"}
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _SERVER], cwd=self.workdir, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        if self.prelude:
            first = self._send("import torch\ntorch.set_num_threads(1)\n" + self.prelude, 300)
            if not first.ok:
                raise RuntimeError(f"prelude failed: {first.error_name}: {first.error_value}")

    def _send(self, code: str, timeout_s: float) -> ProcessResult:
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(json.dumps({"code": code}) + "\n")
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.close()
            return ProcessResult(False, "", None, None, timed_out=False, kernel_died=True)
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            ready = sel.select(timeout=max(timeout_s, 0.0))
        if not ready:
            self.close()
            return ProcessResult(False, "", None, None, timed_out=True, kernel_died=False)
        line = proc.stdout.readline()
        if not line:
            self.close()
            return ProcessResult(False, "", None, None, timed_out=False, kernel_died=True)
        answer = json.loads(line)
        return ProcessResult(answer["ok"], answer["stdout"], answer["error_name"], answer["error_value"],
                             timed_out=False, kernel_died=False)

    def run_code(self, code: str, timeout_s: float) -> ProcessResult:
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        return self._send(code, timeout_s)

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()


def reference_source() -> str:
    """The reference notebook's CustomRNN and CustomLSTM, with the imports they use."""
    from grader.notebook import find_class_sources, read_notebook
    from grader.oracle.live import require_reference
    from grader.paths import REFERENCE_NOTEBOOK

    require_reference(REFERENCE_NOTEBOOK)  # a student wheel has none: say so, exit 2
    sources = find_class_sources(read_notebook(REFERENCE_NOTEBOOK), list(CLASS_NAMES))
    return "import torch\nimport torch.nn as nn\n\n" + "\n\n".join(sources[name] for name in CLASS_NAMES) + "\n"
