"""Run a student's notebook, unmodified, in a kernel of our own; then run probes in it.

One KernelSession is one kernel in one private working directory. It runs the
notebook cell by cell with nbclient (every code cell gets a CellRecord, a
failing cell never stops the rest), under a per-cell timeout, a whole-notebook
budget and a watchdog that kills the kernel's process group when an interrupt
is not enough (a loop swallowing KeyboardInterrupt hangs nbclient forever).
Afterwards `run_code` sends the grader's probe code to the same kernel.

What the kernel gets (see grader/kernel/): its own kernelspec, a scrubbed
environment, rlimits, one torch thread, skipped shell escapes, a fake torch_npu
and 'npu' -> grading device rewriting where no NPU is used, and an epoch cap.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import nbformat
import zmq
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from grader.devices import DeviceChoice
from grader.errors import InternalError, SandboxUnavailableError
from grader import sandbox, untrusted_fs
from grader.process_usage import process_group_members, shared_memory_bytes, unlinked_open_bytes
from grader.kernel import launch, numba_cache
from grader.kernel.transforms import PROBE_MARKER
from grader.messages import Msg, render
from grader.notebook import ShellEscape, find_shell_escapes
from grader.sandbox import Protections

CellStatus = Literal["ok", "error", "timeout", "not_run"]
SandboxMode = Literal["auto", "require", "off"]

GIB = 2**30
MIB = 2**20
# RLIMIT_DATA, not RLIMIT_AS: measured on an H100 machine, a CUDA build of torch
# reserves 16 GiB of address space as soon as CUDA initialises (PROT_NONE, which
# RLIMIT_DATA does not count), and under a 4 GiB RLIMIT_AS that failed ("out of
# memory") even with --device cpu, so the lab's kernel died there. Its data
# segment stayed under 0.8 GiB; a 6 GiB numpy or torch allocation is still refused
# (MemoryError / RuntimeError) under a 4 GiB RLIMIT_DATA.
DEFAULT_MEMORY_BYTES = 4 * GIB
# Devices whose memory limit has been measured: NPU drivers (CANN) are untested here.
_MEMORY_LIMITED_DEVICES = ("cpu", "cuda")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_TRACEBACK_LINES = 20
_TRACEBACK_CHARS = 4000
_ERROR_VALUE_CHARS = 1000
_TRUNCATION_MARK = "\n[...]\n"
# The watchdog's look at the work folder: how often, and how many entries it will walk.
_DISK_CHECK_EVERY_S = 0.5
_DISK_MAX_ENTRIES = 100_000
# Folders nested deeper than this in a kernel's folders stop it: the walk holds a descriptor per level,
# and no lab needs more than a handful.
_DISK_MAX_DEPTH = 64


def _log_tail(path: Path, max_bytes: int = 2000, max_lines: int = 15) -> list[str]:
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - max_bytes))
            tail = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return [line for line in tail.splitlines() if line.strip()][-max_lines:]


@dataclass(frozen=True)
class ExecutionLimits:
    """Time, memory and output limits of one kernel.

    epoch_cap: epoch loops run at most this many iterations (0 = no cap; else >= 2,
    since the lab divides by the last epoch index). memory_bytes: RLIMIT_DATA of
    the kernel on cpu and cuda (not yet on npu, unmeasured). kill_grace_s: how long after an interrupt the
    watchdog waits before killing the kernel's process group.
    """

    cell_timeout_s: float = 300.0
    notebook_timeout_s: float = 900.0
    epoch_cap: int = 2
    memory_bytes: int = DEFAULT_MEMORY_BYTES
    output_bytes_per_cell: int = 2 * MIB
    file_size_bytes: int = 1 * GIB
    open_files: int = 1024
    # Tasks (threads count) of the kernel and all it starts: a fork bomb stops here (pids cgroup, or
    # RLIMIT_NPROC for a non-root grader; see grader/sandbox.py). The lab's kernel runs ~20.
    processes: int | None = 256
    # What the kernel may add to its work folder (the dataset copy not counted): RLIMIT_FSIZE bounds one
    # file, this bounds them all; the watchdog measures every half second and stops the kernel past it.
    disk_bytes: int = 2 * GIB
    # One message from the kernel (one zmq frame): bigger ones are dropped by libzmq before they are
    # allocated here. See _CappedKernelClient.
    message_bytes: int = 16 * MIB
    kill_grace_s: float = 5.0
    startup_timeout_s: float = 60.0
    # A backstop behind the wall-clock limits: CPU seconds over the kernel's whole life.
    cpu_time_s: float | None = 1800.0
    sandbox: SandboxMode = "auto"

    def __post_init__(self) -> None:
        if self.epoch_cap == 1 or self.epoch_cap < 0:
            raise ValueError("epoch_cap must be 0 (no cap) or at least 2 (the lab divides by the last epoch)")
        if self.cell_timeout_s <= 0 or self.notebook_timeout_s <= 0:
            raise ValueError("timeouts must be positive")


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


def choose_protections(mode: SandboxMode, lang: str = "zh") -> Protections:
    """The protections a kernel gets: the bwrap layers when available (or required), else the rest.

    "require" raises SandboxUnavailableError instead of grading with less.
    """
    if mode == "off":
        return sandbox.base_protections(False, "turned off")
    reason = sandbox.bwrap_unavailable()
    protections = sandbox.base_protections(not reason, reason)
    if mode == "require" and not protections.complete:
        if not reason:  # bwrap works, yet a layer outside it is missing: name it
            reason = ", ".join(name for name, value in protections.to_json().items() if value is False)
        raise SandboxUnavailableError(render(Msg("exec.sandbox_required", {"reason": reason}), lang))
    return protections


WORK_FOLDER = "work"


def prepare_workdir(notebook_path: Path, data_dir: Path, parent: Path | None = None) -> Path:
    """A fresh private folder with a copy of the notebook and the dataset at data/.

    The folder is `grader-run-XXXX/work`: the kernel owns what is bound into its sandbox (its uid maps to the
    grader's, root on most TA machines) and can chmod it, so the folder it gets sits inside a 0700 one it never
    sees. Opening its own folder to everyone then exposes nothing: a set-uid root file planted there was
    runnable by any local user before (measured). Remove it with remove_workdir.
    """
    notebook_path, data_dir = Path(notebook_path), Path(data_dir)
    if parent is not None:
        Path(parent).mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="grader-run-", dir=parent))
    workdir = root / WORK_FOLDER
    workdir.mkdir(mode=0o700)
    shutil.copy2(notebook_path, workdir / notebook_path.name)
    # The TA's held-out split (grader/heldout.py) never enters the kernel's folder.
    shutil.copytree(data_dir, workdir / "data", symlinks=False, ignore=_hide_holdout(data_dir))
    return workdir


def remove_workdir(workdir: Path) -> bool:
    """Remove a folder made by prepare_workdir, with its private parent (no recursion, no links followed)."""
    workdir = Path(workdir)
    private = workdir.name == WORK_FOLDER and workdir.parent.name.startswith("grader-run-")
    return untrusted_fs.remove_tree(workdir.parent if private else workdir)


def _hide_holdout(data_dir: Path) -> Any:
    top = Path(data_dir).resolve()

    def ignore(folder: str, names: list[str]) -> set[str]:
        if Path(folder).resolve() != top:
            return set()
        return {n for n in names if n in ("holdout", "holdout.csv")}

    return ignore


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def short_traceback(lines: list[str]) -> str:
    """The last lines of an IPython traceback, colour codes removed."""
    text = strip_ansi("\n".join(lines))
    tail = "\n".join(text.splitlines()[-_TRACEBACK_LINES:])
    return tail[-_TRACEBACK_CHARS:]


def _output_size(out: Any) -> int:
    """Bytes an output keeps in memory, roughly (a fixed cost per output counts floods of tiny ones)."""
    size = 200
    if "text" in out:
        size += len(out["text"])
    for value in out.get("data", {}).values():
        size += len(value) if isinstance(value, str) else len(str(value))
    return size


class _Watchdog:
    """Kills the kernel's process group when a deadline passes, or when a check trips.

    One thread per session. `checks` are (name, function) pairs run every tick;
    the first function to return True names the reason (`tripped`) and the
    kernel is killed: "disk" (its files outgrew their budget), "flood" (it sent
    a message over the size limit).
    """

    def __init__(self, kill: Any, checks: list[tuple[str, Any]] | None = None) -> None:
        self._kill = kill
        self._checks = list(checks or [])
        self._deadline: float | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.fired = False
        self.tripped: str | None = None
        self._thread = threading.Thread(target=self._run, name="grader-watchdog", daemon=True)
        self._thread.start()

    def arm(self, deadline: float) -> None:
        with self._lock:
            self._deadline = deadline
            self.fired = False

    def disarm(self) -> None:
        with self._lock:
            self._deadline = None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            with self._lock:
                due = self._deadline is not None and time.monotonic() > self._deadline
                if due:
                    self._deadline = None
                    self.fired = True
            if due:
                self._kill()
            if self.tripped is None:
                for name, check in self._checks:
                    try:
                        hit = check()
                    except Exception:  # noqa: BLE001 - a failing check must not stop the deadline
                        hit = False
                    if hit:
                        self.tripped = name
                        self._kill()
                        break


class _CappedKernelClient(AsyncKernelClient):
    """A kernel client whose sockets refuse any message over MAX_MESSAGE_BYTES.

    Why a limit here, and not only per cell in _CappedClient: that cap applies
    after nbclient has received, decoded and parsed a message whole. One
    `print('x' * 200_000_000)` took the grader's RSS from 50 MB to 650 MB
    (measured). libzmq's ZMQ_MAXMSGSIZE checks a frame's length header before
    allocating it and drops the connection instead (the socket reconnects; the
    messages in between are lost, which only costs that cell's output; a lost
    execute_reply ends as a timeout). The kernel also caps its own streams
    (grader/kernel/startup.py), but student code can undo that, so this one
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
    def connect_iopub(self, identity: bytes | None = None) -> zmq.Socket:
        return self._monitored(super().connect_iopub(identity), "iopub")

    def connect_shell(self, identity: bytes | None = None) -> zmq.Socket:
        return self._monitored(super().connect_shell(identity), "shell")

    def _monitored(self, sock: zmq.Socket, channel: str) -> zmq.Socket:
        if self.monitor_prefix:
            sock.monitor(f"{self.monitor_prefix}-{channel}", zmq.EVENT_DISCONNECTED)
        return sock


class _CappedClient(NotebookClient):
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

    def output(self, outs: list, msg: dict, display_id: str | None, cell_index: int) -> Any:
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

    def clear_output(self, outs: list, msg: dict, cell_index: int) -> None:
        super().clear_output(outs, msg, cell_index)
        if not outs:
            self.kept = 0

    def _mark_truncated(self, outs: list) -> None:
        if not self.truncated:
            self.truncated = True
            outs.append(nbformat.v4.new_output("stream", name="stderr", text=_TRUNCATION_MARK))


@dataclass
class _CellOutcome:
    status: CellStatus
    duration_s: float
    error_name: str | None = None
    error_value: str | None = None
    traceback: str | None = None
    message: Msg | None = None
    died: bool = False
    outputs: list = field(default_factory=list)
    model_frames: bool = False


class KernelSession:
    """One student kernel in one working directory. Use as a context manager.

    A session can be opened again on the same workdir after its kernel died:
    the new kernel starts empty, and the caller replays what it needs with run_code.
    """

    def __init__(self, workdir: Path, device: DeviceChoice, limits: ExecutionLimits,
                 protections: Protections | None = None) -> None:
        self.workdir = Path(workdir).resolve()
        self.device = device
        self.limits = limits
        self.remap_npu = device.kind != "npu"
        self.protections = protections or choose_protections(limits.sandbox)
        self.sandboxed = self.protections.filesystem
        self.startup_s: float | None = None
        self._run_dir: Path | None = None
        self._ipc_dir: Path | None = None
        self._scratch_dir: Path | None = None
        # The work folder, held from before this session's kernel runs: the grader's reads and writes there
        # go through it (grader/untrusted_fs.py), never through the path.
        self.workdir_dir: untrusted_fs.UntrustedDir | None = None
        self._km: AsyncKernelManager | None = None
        self._client: _CappedClient | None = None
        self._watchdog: _Watchdog | None = None
        self._cgroup: sandbox.PidsCgroup | None = None
        self._disk_base = 0
        self._disk_checked_at = 0.0
        self._shmem_checked_at = 0.0
        self._monitors: list[zmq.Socket] = []
        self._cut_since: float | None = None
        self._dead = False

    # -- lifecycle -----------------------------------------------------------------

    def __enter__(self) -> KernelSession:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        began = time.monotonic()
        self._run_dir = Path(tempfile.mkdtemp(prefix="grader-kernel-"))
        self.workdir_dir = untrusted_fs.UntrustedDir.open(self.workdir)
        ipython_dir = self._run_dir / "ipython"
        kernel_side = launch.copy_kernel_side(self._run_dir)
        config = launch.startup_config(self.device.torch_device, self.remap_npu, self.limits.epoch_cap, kernel_side,
                                       output_chars=self.limits.output_bytes_per_cell + 64 * 1024)
        launch.write_startup(ipython_dir, config, kernel_side)
        argv = launch.kernel_argv()
        if self.sandboxed:
            self._ipc_dir = sandbox.make_ipc_dir()
            self._scratch_dir = sandbox.make_scratch_dir()
            argv = sandbox.wrap_command(argv, workdir=self.workdir, run_dir=self._run_dir, ipc=self._ipc_dir,
                                        scratch=self._scratch_dir, accelerator=self.device.kind != "cpu")
        self._km = AsyncKernelManager(
            kernel_name=launch.KERNEL_NAME,
            kernel_spec_manager=launch.write_kernelspec(self._run_dir, argv, interrupt_by_message=self.sandboxed),
            connection_file=str(self._run_dir / "connection.json"),
        )
        # a class per session: each session's limit, and nothing shared between threads
        monitor_prefix = f"inproc://grader-monitor-{id(self)}-{secrets.token_hex(4)}"
        self._km.client_factory = type("_SessionKernelClient", (_CappedKernelClient,),
                                       {"max_message_bytes": self.limits.message_bytes,
                                        "monitor_prefix": monitor_prefix})
        if self.sandboxed:
            # No network namespace shared with us, so no TCP: Unix sockets in the run folder.
            self._km.transport = "ipc"
            self._km.ip = str(self._ipc_dir / "k")
        self._client = _CappedClient(
            nbformat.v4.new_notebook(),
            cap=self.limits.output_bytes_per_cell,
            km=self._km,
            kernel_name=launch.KERNEL_NAME,
            allow_errors=True,
            interrupt_on_timeout=True,
            startup_timeout=int(self.limits.startup_timeout_s),
            iopub_timeout=4,
            record_timing=False,
            # nbclient's own coalescing runs r".*\r(?=[^\n])" over each stream's text: quadratic in
            # the length of a line, so one 1 MB line without a newline hung the grader for good
            # (measured). _coalesce_streams does the same job in linear time.
            coalesce_streams=False,
            resources={"metadata": {"path": str(self.workdir)}},
        )
        env = launch.kernel_env(self.workdir, ipython_dir, self.device.torch_device, not self.remap_npu)
        self._prepare_kernel_folders()
        self._disk_base = self._kernel_usage().bytes
        self._watchdog = _Watchdog(self._kill_group, [("disk", self._over_disk_budget), ("flood", self._channel_cut),
                                                      ("shmem", self._over_shared_memory)])
        memory = self.limits.memory_bytes if self.device.kind in _MEMORY_LIMITED_DEVICES else None
        process_limits = launch.ProcessLimits(
            memory, self.limits.file_size_bytes, self.limits.open_files, self.limits.processes,
            int(self.limits.cpu_time_s) if self.limits.cpu_time_s else None,
        )
        join = None
        if self.limits.processes and not sandbox.nproc_rlimit_effective():
            self._cgroup = sandbox.PidsCgroup.create(self.limits.processes)
            join = self._cgroup.join_function() if self._cgroup else None
        log = (self._run_dir / "kernel.log").open("wb")
        try:
            self._client.start_new_kernel(
                cwd=str(self.workdir),
                env=env,
                # the launcher already starts a new session; independent=True keeps
                # JPY_PARENT_PID out of the kernel's environment
                independent=True,
                preexec_fn=launch.make_preexec(process_limits, join),
                stdout=log,
                stderr=log,
            )
            self._client.start_new_kernel_client()
            self._watch_channels(monitor_prefix)
            if self._ipc_dir is not None:  # its sockets are bound and no student code has run yet
                sandbox.lock_socket_folder(self._ipc_dir)
        except Exception as exc:
            log.close()
            # The kernel's own last words say why it died (an import, a limit); the TA needs them. Read
            # before close(), which removes the run folder.
            last_words = _log_tail(self._run_dir / "kernel.log")
            self.close()
            raise InternalError(render(Msg("exec.kernel_start_failed", {"error": str(exc)[:300]})),
                                details=last_words) from exc
        finally:
            log.close()
        self.startup_s = time.monotonic() - began

    def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.stop()
            self._watchdog = None
        for monitor in self._monitors:
            monitor.close(linger=0)
        self._monitors = []
        client, km = self._client, self._km
        if client is not None and client.kc is not None:
            try:
                client.kc.stop_channels()
            except Exception:  # noqa: BLE001 - closing must always finish
                pass
        if km is not None:
            try:
                if km.has_kernel:
                    run_sync(km.shutdown_kernel)(now=True)
            except Exception:  # noqa: BLE001
                pass
            self._kill_group()
            try:
                run_sync(km.cleanup_resources)()
            except Exception:  # noqa: BLE001
                pass
        if self._cgroup is not None:
            self._cgroup.remove()  # whatever escaped the process group (a daemonised fork, a fork bomb)
            self._cgroup = None
        self._client = self._km = None
        self._dead = True
        if self.workdir_dir is not None:
            self.workdir_dir.close()
            self.workdir_dir = None
        ipc_root = self._ipc_dir.parent if self._ipc_dir is not None else None
        for folder in (self._run_dir, ipc_root, self._scratch_dir):
            if folder is not None:
                untrusted_fs.remove_tree(folder)  # the kernel could write in each: no recursion, no links
        self._run_dir = self._ipc_dir = self._scratch_dir = None

    def _prepare_kernel_folders(self) -> None:
        """The work folder's .tmp and .cache folders, and a private copy of the warm numba cache."""
        assert self.workdir_dir is not None
        # A folder reopened after its kernel died holds whatever that kernel left in .cache: start afresh.
        untrusted_fs.remove_child(self.workdir_dir, ".cache")
        for relative in launch.KERNEL_FOLDERS:
            self.workdir_dir.make_dirs(relative).close()
        with self.workdir_dir.make_dirs(".cache/numba") as numba:
            numba_cache.seed_kernel_cache(numba)

    def _kernel_folders(self) -> list[Path]:
        """Every host folder the kernel can write: its work folder, sockets, scratch /tmp and IPython folder."""
        folders = [self.workdir, self._ipc_dir, self._scratch_dir]
        if self._run_dir is not None:
            folders.append(self._run_dir / "ipython")
        return [f for f in folders if f is not None]

    def _kernel_usage(self) -> untrusted_fs.Usage:
        total = untrusted_fs.Usage()
        for folder in self._kernel_folders():
            total += untrusted_fs.usage(folder, max_entries=_DISK_MAX_ENTRIES - total.entries,
                                        max_depth=_DISK_MAX_DEPTH)
        return total

    def alive(self) -> bool:
        if self._dead or self._km is None:
            return False
        try:
            return bool(run_sync(self._km.is_alive)())
        except Exception:  # noqa: BLE001
            return False

    def startup_failures(self) -> list[str] | None:
        """Names of the kernel shims that failed to install (threads, shell, fake_npu, ...); None if unknown."""
        result = self.run_code(
            "import sys, json\n"
            "print(json.dumps(getattr(sys.modules.get('grader.kernel.startup'), 'FAILED', None)))",
            30,
        )
        if not result.ok:
            return None
        try:
            value = json.loads(result.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return None
        return value if isinstance(value, list) else None

    def _pgid(self) -> int | None:
        provisioner = getattr(self._km, "provisioner", None)
        return getattr(provisioner, "pgid", None) or getattr(provisioner, "pid", None)

    def _kill_group(self) -> None:
        """SIGKILL the kernel and everything it started in its process group (DataLoader workers...).

        In the sandbox, killing bwrap kills its pid namespace's init (--die-with-parent) and with
        it every process of the namespace; the pids cgroup, when there is one, catches the rest.
        """
        pgid = self._pgid()
        if pgid:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self._cgroup is not None:
            self._cgroup.kill()

    def _watch_channels(self, prefix: str) -> None:
        """Sockets receiving the DISCONNECTED events of the client's shell and iopub sockets."""
        kc = self._client.kc if self._client is not None else None
        if kc is None:
            return
        shadow = zmq.Context.shadow(kc.context.underlying)  # inproc needs the same libzmq context
        for channel in ("iopub", "shell"):
            monitor = shadow.socket(zmq.PAIR)
            monitor.connect(f"{prefix}-{channel}")
            self._monitors.append(monitor)

    def _channel_cut(self) -> bool:
        """True once a channel to a kernel that is still running was cut (an over-size message)."""
        if self._cut_since is None:
            for monitor in self._monitors:
                while monitor.poll(0):
                    monitor.recv_multipart()
                    self._cut_since = time.monotonic()
            return False
        # A kernel that exits also disconnects: only a kernel still running a second later was cut off.
        if time.monotonic() - self._cut_since < 1.0:
            return False
        process = getattr(getattr(self._km, "provisioner", None), "process", None)
        if process is not None and process.poll() is None:
            return True
        self._cut_since = None
        return False

    def _over_disk_budget(self) -> bool:
        """Whether the kernel's files (work folder, and its log) grew past limits.disk_bytes."""
        if time.monotonic() - self._disk_checked_at < _DISK_CHECK_EVERY_S:
            return False
        self._disk_checked_at = time.monotonic()
        found = self._kernel_usage()
        used, entries = found.bytes, found.entries
        if found.too_deep:
            return True
        used += unlinked_open_bytes(self._kernel_pids())
        if self._run_dir is not None:
            try:
                used += (self._run_dir / "kernel.log").stat().st_size
            except OSError:
                pass
        return used - self._disk_base > self.limits.disk_bytes or entries >= _DISK_MAX_ENTRIES

    def _over_a_budget_now(self) -> bool:
        """The watchdog's disk and shared-memory checks, run at once; on a hit the kernel is stopped as it would
        have been a tick later, with the same verdict."""
        watchdog = self._watchdog
        if watchdog is None:
            return False
        if watchdog.tripped is not None:
            return True
        for name, check in (("disk", self._over_disk_budget), ("shmem", self._over_shared_memory)):
            self._disk_checked_at = self._shmem_checked_at = 0.0  # not throttled: this is the end of a cell
            try:
                hit = check()
            except Exception:  # noqa: BLE001 - as in the watchdog: a failing check must not fail the cell
                hit = False
            if hit:
                watchdog.tripped = name
                self._kill_group()
                return True
        return False

    def _over_shared_memory(self) -> bool:
        """Whether the kernel's processes hold more shared memory than its memory limit.

        RLIMIT_DATA does not count shared mappings: a MAP_SHARED|MAP_ANONYMOUS block of 2 GiB was fully touched
        under a 1 GiB limit (measured), in RAM that no limit of the kernel's saw. Checked with the disk budget.
        """
        if time.monotonic() - self._shmem_checked_at < _DISK_CHECK_EVERY_S:
            return False
        self._shmem_checked_at = time.monotonic()
        return shared_memory_bytes(self._kernel_pids()) > self.limits.memory_bytes

    def _kernel_pids(self) -> list[int]:
        """The kernel's processes: its pids cgroup when it has one, else its process group."""
        if self._cgroup is not None:
            return self._cgroup.members()
        pgid = self._pgid()
        return process_group_members(pgid) if pgid else []

    @property
    def peak_tasks(self) -> int | None:
        """Most tasks the kernel ran at once (when a pids cgroup counted them)."""
        return self._cgroup.peak() if self._cgroup is not None else None

    # -- running ---------------------------------------------------------------------

    def _execute(self, cell: nbformat.NotebookNode, index: int, timeout_s: float, store_history: bool) -> _CellOutcome:
        """Run one cell with nbclient's interrupt at timeout_s and the watchdog's kill after it."""
        client, watchdog = self._client, self._watchdog
        assert client is not None and watchdog is not None
        replies: list[dict] = []
        client.on_cell_executed = lambda **kw: replies.append(kw.get("execute_reply") or {})
        client.timeout_func = lambda _cell: max(1, int(round(timeout_s)))
        client.reset_cap()
        began = time.monotonic()
        watchdog.arm(began + timeout_s + self.limits.kill_grace_s)
        died = False
        malformed: str | None = None
        try:
            client.execute_cell(cell, index, store_history=store_history)
        except DeadKernelError:
            died = True
        except Exception as exc:  # noqa: BLE001 - the kernel's messages are the student's: a bad one is their verdict
            malformed = f"{type(exc).__name__}: {exc}"[:_ERROR_VALUE_CHARS]
        finally:
            watchdog.disarm()
        _coalesce_streams(cell)
        duration = time.monotonic() - began
        # A notebook cell that went over a budget within a tick of ending is stopped now, not during a later
        # probe (the grader's own calls are left to the watchdog's ticks: they write little, and each check
        # walks every kernel folder).
        died = died or (malformed is None and store_history and self._over_a_budget_now())
        if died or not self.alive():
            self._dead = True
            return self._death_outcome(duration, watchdog.fired, timeout_s)
        if malformed is not None:
            return _CellOutcome("error", duration, error_name="MalformedKernelMessage", error_value=malformed,
                                message=Msg("exec.malformed_message"))
        content = _reply_content(replies)
        if content.get("status") != "error":
            return _CellOutcome("ok", duration)
        name = _text_field(content.get("ename")) or None
        overran = duration >= timeout_s - 0.5
        status: CellStatus = "timeout" if name == "KeyboardInterrupt" and overran else "error"
        lines = content.get("traceback")
        return _CellOutcome(
            status,
            duration,
            error_name=name,
            error_value=_text_field(content.get("evalue"))[:_ERROR_VALUE_CHARS],
            traceback=short_traceback([x for x in lines if isinstance(x, str)] if isinstance(lines, list) else []),
            message=Msg("exec.cell_timeout", {"seconds": round(timeout_s)}) if status == "timeout" else None,
            model_frames=_frames_in_forward(lines),
        )

    def _death_outcome(self, duration: float, killed: bool, timeout_s: float) -> _CellOutcome:
        tripped = self._watchdog.tripped if self._watchdog is not None else None
        if tripped == "disk":
            msg = Msg("exec.disk_limit", {"mib": self.limits.disk_bytes // MIB})
            return _CellOutcome("error", duration, "DiskLimit", None, None, msg, died=True)
        if tripped == "shmem":
            msg = Msg("exec.shared_memory_limit", {"mib": self.limits.memory_bytes // MIB})
            return _CellOutcome("error", duration, "MemoryLimit", None, None, msg, died=True)
        if tripped == "flood":
            msg = Msg("exec.output_flood", {"mib": self.limits.message_bytes // MIB})
            return _CellOutcome("error", duration, "OutputFlood", None, None, msg, died=True)
        if killed:
            msg = Msg("exec.cell_killed", {"seconds": round(timeout_s), "grace": round(self.limits.kill_grace_s)})
            return _CellOutcome("timeout", duration, "KernelKilled", None, None, msg, died=True)
        code = self._exit_code()
        msg = Msg("exec.kernel_died", {"code": code if code is not None else "?"})
        return _CellOutcome("error", duration, "KernelDied", f"exit code {code}", None, msg, died=True)

    def _exit_code(self) -> int | None:
        process = getattr(getattr(self._km, "provisioner", None), "process", None)
        if process is None:
            return None
        try:
            return process.wait(timeout=2)
        except Exception:  # noqa: BLE001
            return process.poll()

    def run_notebook(self, nb: nbformat.NotebookNode) -> ExecutionResult:
        """Run every code cell in order; return a record per code cell and the executed notebook."""
        client = self._client
        if client is None:
            raise InternalError("KernelSession.run_notebook called before start()")
        executed = nbformat.from_dict(nb)  # a deep copy: the caller's notebook stays as it was
        client.nb = executed
        began = time.monotonic()
        budget_end = began + self.limits.notebook_timeout_s
        records: list[CellRecord] = []
        timed_out = killed = died = False
        for index, cell in enumerate(executed.cells):
            if cell.cell_type != "code":
                continue
            remaining = budget_end - time.monotonic()
            if died or remaining <= 0:
                timed_out = timed_out or remaining <= 0
                reason = "exec.not_run_after_death" if died else "exec.not_run_budget"
                records.append(_not_run(index, cell.source, Msg(reason)))
                continue
            timeout_s = min(self.limits.cell_timeout_s, remaining)
            outcome = self._execute(cell, index, timeout_s, store_history=True)
            if outcome.status == "timeout" and timeout_s < self.limits.cell_timeout_s:
                timed_out = True
                outcome.message = Msg("exec.notebook_budget", {"seconds": round(self.limits.notebook_timeout_s)})
            died = died or outcome.died
            killed = killed or (outcome.died and outcome.error_name == "KernelKilled")
            records.append(
                CellRecord(
                    index, outcome.status, outcome.duration_s, outcome.error_name, outcome.error_value,
                    outcome.traceback, cell.source, outcome.message, client.truncated, outcome.model_frames,
                )
            )
        escapes = find_shell_escapes(nb)
        return ExecutionResult(
            cells=records,
            kernel_died=died,
            timed_out=timed_out,
            duration_s=time.monotonic() - began,
            device=self.device,
            npu_remapped=self.remap_npu and _mentions_npu(nb),
            shell_escapes=escapes,
            notebook=executed,
            killed_by_watchdog=killed,
        )

    def run_code(self, code: str, timeout_s: float) -> CodeResult:
        """Run grader code in the kernel: stdout captured, errors reported, never hangs.

        The kernel's AST transforms skip it (epoch cap, npu rewrite) and it does
        not enter the kernel's history. A dead kernel answers at once.
        """
        client = self._client
        if client is None or self._dead:
            return CodeResult(False, "", None, None, timed_out=False, kernel_died=True)
        cell = nbformat.v4.new_code_cell(f"{PROBE_MARKER!r}\n{code}")
        client.nb = nbformat.v4.new_notebook(cells=[cell])
        outcome = self._execute(cell, 0, timeout_s, store_history=False)
        streams = {name: "".join(o["text"] for o in cell.outputs
                                 if o.get("output_type") == "stream" and o.get("name") == name
                                 and isinstance(o.get("text"), str))
                   for name in ("stdout", "stderr")}
        return CodeResult(
            ok=outcome.status == "ok",
            stdout=streams["stdout"],
            error_name=outcome.error_name,
            error_value=outcome.error_value,
            timed_out=outcome.status == "timeout",
            kernel_died=outcome.died,
            stderr=streams["stderr"],
        )


def _frames_in_forward(lines: Any) -> bool:
    """Whether a frame of an IPython traceback (a list: one entry per frame, the exception's message last)
    runs in a `forward` method. The message is left out: the student writes it, and "in forward" there once
    excused a loop's own crash (measured)."""
    if not isinstance(lines, list):
        return False
    frames = [strip_ansi(x) for x in lines[:-1][-_TRACEBACK_LINES:] if isinstance(x, str)]
    return any(", in forward" in f or "forward(" in f.split("\n", 1)[0] or ".forward(" in f for f in frames)


def _reply_content(replies: list[Any]) -> dict[str, Any]:
    """The last execute_reply's content, or {} when the kernel sent something else."""
    reply = replies[-1] if replies else None
    content = reply.get("content") if isinstance(reply, dict) else None
    return content if isinstance(content, dict) else {}


def _text_field(value: Any) -> str:
    """A reply field that should be a string; a kernel can send any JSON there."""
    return value if isinstance(value, str) else ("" if value is None else str(value)[:_ERROR_VALUE_CHARS])


def _coalesce_streams(cell: nbformat.NotebookNode) -> None:
    """One stream output per name, with carriage returns and backspaces applied (as a terminal would).

    What nbclient's coalesce_streams does, in linear time: its regular expressions
    backtrack quadratically on a long line, in the grader's process.
    """
    outputs = cell.get("outputs") or []
    if not outputs:
        return
    merged: list = []
    streams: dict[str, Any] = {}
    for out in outputs:
        if out.get("output_type") == "stream" and out.get("name") in streams:
            streams[out["name"]]["_parts"].append(out.get("text", ""))
            continue
        if out.get("output_type") == "stream":
            out["_parts"] = [out.get("text", "")]
            streams[out["name"]] = out
        merged.append(out)
    for out in streams.values():
        out["text"] = _terminal_text("".join(out.pop("_parts")))
    cell.outputs = merged


def _terminal_text(text: str) -> str:
    """Backspace deletes the character before it; a carriage return inside a line drops what came before."""
    if "\b" in text:
        kept: list[str] = []
        for ch in text:
            if ch == "\b" and kept and kept[-1] != "\n":
                kept.pop()
            else:
                kept.append(ch)
        text = "".join(kept)
    if "\r" in text:
        lines = text.split("\n")
        for i, line in enumerate(lines):
            cut = line.rfind("\r", 0, len(line) - 1)
            if cut >= 0:
                lines[i] = line[cut + 1:]
        text = "\n".join(lines)
    return text


def _not_run(index: int, source: str, message: Msg) -> CellRecord:
    return CellRecord(index, "not_run", 0.0, None, None, None, source, message)


def _mentions_npu(nb: nbformat.NotebookNode) -> bool:
    return any(cell.cell_type == "code" and "npu" in cell.source for cell in nb.cells)
