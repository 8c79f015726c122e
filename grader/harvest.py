"""Ask the student's kernel how its classes behave on the grader's data.

The only channel into the student's process is a runner's `run_code` (a
grader.hosting.session.KernelSession in production; any object with the same two
members in tests). We write a request (JSON + .npy) into a fresh, randomly
named folder of the kernel's work dir, send the text of grader/inkernel/probe.py
to run there, and read back a JSON manifest and plain .npy arrays, validated:
no pickles, size caps, float dtypes only, shapes as the manifest says. Nothing
the kernel returns is trusted beyond "these are the numbers it produced".
"""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import numpy as np

from grader.inkernel import PROBE_SOURCE
from grader.untrusted_fs import UnsafeFile, UntrustedDir, held_workdir, remove_child

PROBE_SOURCE_PATH = PROBE_SOURCE
MAX_MANIFEST_BYTES = 2 * 2**20
MAX_ARRAY_BYTES = 8 * 2**20
MAX_TOTAL_BYTES = 64 * 2**20
MAX_ARRAYS = 400
_ACCEPTED_DTYPES = (np.dtype("<f8"), np.dtype("<f4"))


class CodeResultLike(Protocol):
    ok: bool
    stdout: str
    error_name: str | None
    error_value: str | None
    timed_out: bool
    kernel_died: bool


class KernelRunner(Protocol):
    """What the checks need from a kernel session.

    `workdir` is the work dir as the grader sees it. If the kernel sees the
    same folder under another path (a bind mount in a sandbox), the runner
    may expose it as `kernel_workdir`; we use that in the code we send.
    """

    workdir: Path

    def run_code(self, code: str, timeout_s: float) -> CodeResultLike: ...


class Failure(str):
    """Why a probe call produced nothing usable (a str for easy messages)."""


KERNEL_DIED = Failure("kernel_died")
TIMED_OUT = Failure("timed_out")
NO_RESULT = Failure("no_result")
BAD_RESULT = Failure("bad_result")


@dataclass
class ProbeReply:
    """What one probe call returned, after validation."""

    failure: Failure | None = None
    # When failure is set: a short, grader-written explanation (error name/value of
    # the probe call; never used for anything but a message).
    reason: str = ""
    steps: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.failure is None


def probe_source() -> str:
    return PROBE_SOURCE_PATH.read_text(encoding="utf-8")


def _kernel_code(kernel_dir: str) -> str:
    # The probe runs in its own namespace dict; only the lookup of the student's
    # classes goes through the notebook's namespace, reached as a lambda's
    # __globals__ so that no name the notebook may have rebound (globals, exec,
    # compile) is looked up. Two leaked names, removed after.
    return (
        "import builtins as __grader_builtins\n"
        "__grader_probe_ns = {'__name__': '__grader_probe__'}\n"
        "try:\n"
        f"    __grader_builtins.exec(__grader_builtins.compile({probe_source()!r}, '<grader-probe>', 'exec'),"
        " __grader_probe_ns)\n"
        f"    __grader_probe_ns['main']({kernel_dir!r}, (lambda: None).__globals__)\n"
        "finally:\n"
        "    del __grader_probe_ns, __grader_builtins\n"
    )


def call_probe(
    runner: KernelRunner,
    request: dict[str, Any],
    arrays: dict[str, np.ndarray],
    *,
    timeout_s: float,
) -> ProbeReply:
    """Write `request` + `arrays` (name -> array; saved as <name>.npy), run the probe, read its reply.

    The request refers to arrays by file name; this function adds nothing to it.
    """
    token = secrets.token_hex(8)
    name = f".grader-probe-{token}"
    kernel_root = getattr(runner, "kernel_workdir", None) or runner.workdir
    kernel_dir = str(PurePosixPath(str(kernel_root)) / name)
    try:
        with held_workdir(runner) as workdir:
            folder = workdir.make_dir(name)
            try:
                return _ask(runner, folder, kernel_dir, request, arrays, timeout_s)
            finally:
                folder.close()
                remove_child(workdir, name)
    except OSError as exc:  # the kernel filled, locked or replaced its folder: no probe possible
        return ProbeReply(failure=BAD_RESULT, reason=f"probe folder: {exc}"[:300])


def _ask(runner: KernelRunner, folder: UntrustedDir, kernel_dir: str, request: dict[str, Any],
         arrays: dict[str, np.ndarray], timeout_s: float) -> ProbeReply:
    for name, arr in arrays.items():
        folder.save_npy(f"{name}.npy", np.ascontiguousarray(arr, dtype=np.float64))
    folder.write_bytes("request.json", json.dumps(request).encode("utf-8"))
    result = runner.run_code(_kernel_code(kernel_dir), timeout_s)
    if result.kernel_died:
        return ProbeReply(failure=KERNEL_DIED, reason=_one_line(result))
    if result.timed_out:
        return ProbeReply(failure=TIMED_OUT, reason=f"{timeout_s:g} s")
    try:
        out = folder.child("out")
    except UnsafeFile:
        return ProbeReply(failure=NO_RESULT, reason=_one_line(result) or "no reply folder")
    with out:
        return read_reply(out, fallback_reason=_one_line(result))


def _one_line(result: CodeResultLike) -> str:
    if result.ok:
        return ""
    return f"{result.error_name or 'error'}: {result.error_value or ''}"[:300]


def read_reply(out_dir: UntrustedDir, *, fallback_reason: str = "") -> ProbeReply:
    """Validate and load the probe's manifest and arrays."""
    if not out_dir.exists("manifest.json"):
        return ProbeReply(failure=NO_RESULT, reason=fallback_reason or "no manifest")
    try:
        manifest = json.loads(out_dir.read_bytes("manifest.json", MAX_MANIFEST_BYTES).decode("utf-8"))
        steps = manifest["steps"]
        index = manifest["arrays"]
        if not isinstance(steps, dict) or not isinstance(index, dict) or len(index) > MAX_ARRAYS:
            raise ValueError("manifest layout")
        if not all(isinstance(v, dict) for v in steps.values()):  # every step is an object; checks read it so
            raise ValueError("manifest steps layout")
        arrays: dict[str, np.ndarray] = {}
        total = 0
        for key, entry in index.items():
            arr, size = _load_array(out_dir, entry)
            total += size
            if total > MAX_TOTAL_BYTES:
                raise ValueError("arrays too large in total")
            arrays[str(key)] = arr
    # RecursionError: a manifest nested thousands deep; UnsafeFile (an OSError): a link, a FIFO, too big
    except (ValueError, KeyError, TypeError, OSError, RecursionError, OverflowError) as exc:
        return ProbeReply(failure=BAD_RESULT, reason=str(exc)[:300])
    return ProbeReply(steps=steps, arrays=arrays)


def _load_array(out_dir: UntrustedDir, entry: Any) -> tuple[np.ndarray, int]:
    fname = entry["file"]
    # Plain names only: no separators, no parent references (links and FIFOs are refused when opened).
    plain = isinstance(fname, str) and not fname.startswith(".") and fname.endswith(".npy")
    if not plain or "/" in fname or "\\" in fname:
        raise ValueError(f"bad array file name {fname!r}")
    arr = out_dir.read_npy(fname, MAX_ARRAY_BYTES)
    if arr.dtype not in _ACCEPTED_DTYPES:
        raise ValueError(f"array {fname!r} has dtype {arr.dtype}")
    if list(arr.shape) != [int(s) for s in entry["shape"]]:
        raise ValueError(f"array {fname!r} shape differs from its manifest")
    return arr.astype(np.float64), arr.nbytes
