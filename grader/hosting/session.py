"""One student kernel in one private working directory: start it, run the notebook, run probes, stop it.

A KernelSession runs the notebook cell by cell with nbclient (every code cell
gets a CellRecord, a failing cell never stops the rest), under a per-cell
timeout, a whole-notebook budget and a watchdog (watchdog.py) that kills the
kernel's process group when an interrupt is not enough. Afterwards `run_code`
sends the grader's probe code to the same kernel.

What the kernel gets (launch.py, and grader/inkernel/ inside it): its own
kernelspec, a scrubbed environment, rlimits, one torch thread, skipped shell
escapes, a fake torch_npu and 'npu' -> grading device rewriting where no NPU is
used, and an epoch cap. Its disk, file and shared-memory budgets: budgets.py.

Longer than most modules because a session is one state machine (start, run
cells, run probes, die, close) whose steps share its state; the parts that stand
alone (limits, client, watchdog, budgets, streams, records) are its neighbours.
"""
from __future__ import annotations

import json
import logging
import os
import re
import secrets
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient.exceptions import DeadKernelError

from grader import sandbox, untrusted_fs
from grader.devices import DeviceChoice
from grader.errors import InternalError
from grader.hosting import launch, numba_cache
from grader.hosting.budgets import KernelBudgets
from grader.hosting.client import CappedClient, CappedKernelClient, ChannelMonitor, reply_content, text_field
from grader.hosting.limits import MEMORY_LIMITED_DEVICES, MIB, ExecutionLimits
from grader.hosting.process_usage import process_group_members
from grader.hosting.records import (
    ERROR_VALUE_CHARS,
    CellRecord,
    CellStatus,
    CodeResult,
    ExecutionResult,
    frames_in_forward,
    not_run,
    short_traceback,
)
from grader.hosting.streams import coalesce_streams
from grader.hosting.watchdog import Watchdog
from grader.inkernel.transforms import PROBE_MARKER
from grader.messages import Msg, render
from grader.notebook import find_shell_escapes
from grader.pids_cgroup import PidsCgroup
from grader.sandbox import Protections, choose_protections

log = logging.getLogger(__name__)


_BROKEN_CELLS_LINE = re.compile(r"grader-broken-cells (\d{1,6})")


def log_tail(path: Path, max_bytes: int = 2000, max_lines: int = 15) -> list[str]:
    """The last lines of the kernel's own log (its last words when it failed to start)."""
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - max_bytes))
            tail = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return [line for line in tail.splitlines() if line.strip()][-max_lines:]


@dataclass
class _CellOutcome:
    status: CellStatus
    duration_s: float
    error_name: str | None = None
    error_value: str | None = None
    traceback: str | None = None
    message: Msg | None = None
    died: bool = False
    model_frames: bool = False


class KernelSession:
    """One student kernel in one working directory. Use as a context manager.

    A session can be opened again on the same workdir after its kernel died:
    the new kernel starts empty, and the caller replays what it needs with run_code.
    """

    def __init__(self, workdir: Path, device: DeviceChoice, limits: ExecutionLimits,
                 protections: Protections | None = None, feature_pack: Path | None = None) -> None:
        self.workdir = Path(workdir).resolve()
        self.device = device
        self.limits = limits
        self.remap_npu = device.kind != "npu"
        self.protections = protections or choose_protections(limits.sandbox)
        self.sandboxed = self.protections.filesystem
        self.startup_s: float | None = None
        self.feature_pack = feature_pack  # the grader's MFCCs of the kernel's clips, copied into its folder
        self._run_dir: Path | None = None
        self._ipc_dir: Path | None = None
        self._scratch_dir: Path | None = None
        # The work folder, held from before this session's kernel runs: the grader's reads and writes there
        # go through it (grader/untrusted_fs.py), never through the path.
        self.workdir_dir: untrusted_fs.UntrustedDir | None = None
        self._km: AsyncKernelManager | None = None
        self._client: CappedClient | None = None
        self._watchdog: Watchdog | None = None
        self._cgroup: PidsCgroup | None = None
        self._budgets = KernelBudgets(limits.disk_bytes, limits.memory_bytes, self._kernel_folders, self._kernel_pids,
                                      self._own_files_it_writes)
        self._channels = ChannelMonitor()
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
                                       output_chars=self.limits.output_bytes_per_cell + 64 * 1024,
                                       batch_cap=self.limits.batch_cap,
                                       feature_pack=str(self.workdir / launch.FEATURE_PACK_FOLDER)
                                       if self.feature_pack is not None else None)
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
        self._km.client_factory = type("_SessionKernelClient", (CappedKernelClient,),
                                       {"max_message_bytes": self.limits.message_bytes,
                                        "monitor_prefix": monitor_prefix})
        if self.sandboxed:
            # No network namespace shared with us, so no TCP: Unix sockets in the run folder.
            assert self._ipc_dir is not None
            self._km.transport = "ipc"
            self._km.ip = str(self._ipc_dir / "k")
        self._client = CappedClient(
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
            # (measured). streams.coalesce_streams does the same job in linear time.
            coalesce_streams=False,
            resources={"metadata": {"path": str(self.workdir)}},
        )
        env = launch.kernel_env(self.workdir, ipython_dir, self.device.torch_device, not self.remap_npu)
        self._prepare_kernel_folders()
        self._budgets.start()
        self._watchdog = Watchdog(self._kill_group, [("disk", self._budgets.over_disk), ("flood", self._channel_cut),
                                                     ("shmem", self._budgets.over_shared_memory)])
        memory = self.limits.memory_bytes if self.device.kind in MEMORY_LIMITED_DEVICES else None
        process_limits = launch.ProcessLimits(
            memory, self.limits.file_size_bytes, self.limits.open_files, self.limits.processes,
            int(self.limits.cpu_time_s) if self.limits.cpu_time_s else None,
        )
        join = None
        if self.limits.processes and not sandbox.nproc_rlimit_effective():
            self._cgroup = PidsCgroup.create(self.limits.processes)
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
            if self._client.kc is not None:
                self._channels.watch(self._client.kc, monitor_prefix)
            if self._ipc_dir is not None:  # its sockets are bound and no student code has run yet
                sandbox.lock_socket_folder(self._ipc_dir)
        except Exception as exc:
            log.close()
            # The kernel's own last words say why it died (an import, a limit); the TA needs them. Read
            # before close(), which removes the run folder.
            last_words = log_tail(self._run_dir / "kernel.log")
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
        self._channels.close()
        client, km = self._client, self._km
        if client is not None and client.kc is not None:
            try:
                client.kc.stop_channels()
            except Exception:  # closing must always finish
                log.debug("stopping the kernel's channels failed", exc_info=True)
        if km is not None:
            try:
                if km.has_kernel:
                    run_sync(km.shutdown_kernel)(now=True)
            except Exception:  # the process group is killed next in any case
                log.debug("the kernel's shutdown failed", exc_info=True)
            self._kill_group()
            try:
                run_sync(km.cleanup_resources)()
            except Exception:  # its files are in the run folder, removed below
                log.debug("the kernel manager's cleanup failed", exc_info=True)
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
            try:
                numba_cache.seed_kernel_cache(numba)
            except OSError:  # an optimisation: without it librosa compiles in the kernel (slower, not wrong)
                log.warning("the warm numba cache could not be copied into the kernel's folder", exc_info=True)
        if self.feature_pack is not None:
            try:
                with self.workdir_dir.make_dirs(launch.FEATURE_PACK_FOLDER) as pack:
                    pack.copy_tree_from(self.feature_pack, max_entries=4)
            except OSError:  # an optimisation too: without it the kernel computes its MFCCs
                log.warning("the feature pack could not be copied into the kernel's folder", exc_info=True)

    def _kernel_folders(self) -> list[Path]:
        """Every host folder the kernel can write: its work folder, sockets, scratch /tmp and IPython folder."""
        folders = [self.workdir, self._ipc_dir, self._scratch_dir]
        if self._run_dir is not None:
            folders.append(self._run_dir / "ipython")
        return [f for f in folders if f is not None]

    def alive(self) -> bool:
        if self._dead or self._km is None:
            return False
        try:
            return bool(run_sync(self._km.is_alive)())
        except Exception:  # counted as dead, but a bug of ours must not pass for a dead kernel unseen
            log.warning("could not tell whether the kernel is alive; counting it as dead", exc_info=True)
            return False

    def cells_broken_by_batch_cap(self) -> int:
        """How many of the notebook's cells raised after a DataLoader pass had been cut short (the kernel's word,
        grader/inkernel/batch_cap.py); 0 when the kernel cannot say."""
        result = self.run_code(
            "import sys as __grader_sys\n"
            "print('\\ngrader-broken-cells',"
            " int(getattr(__grader_sys.modules.get('grader.inkernel.batch_cap'), 'broken_cells', lambda: 0)()))\n"
            "del __grader_sys",
            30,
        )
        # The answer's own line, a small number: a flood that truncates the output or any other claim reads as 0.
        lines = result.stdout.splitlines() if result.ok else []
        answer = _BROKEN_CELLS_LINE.fullmatch(lines[-1]) if lines else None
        return int(answer.group(1)) if answer else 0

    def startup_failures(self) -> list[str] | None:
        """Names of the kernel shims that failed to install (threads, shell, fake_npu, ...); None if unknown."""
        result = self.run_code(
            "import sys, json\n"
            "print(json.dumps(getattr(sys.modules.get('grader.inkernel.startup'), 'FAILED', None)))",
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
        pgid = getattr(provisioner, "pgid", None) or getattr(provisioner, "pid", None)
        return pgid if isinstance(pgid, int) else None

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

    def _channel_cut(self) -> bool:
        return self._channels.cut(getattr(getattr(self._km, "provisioner", None), "process", None))

    def _own_files_it_writes(self) -> list[Path]:
        return [self._run_dir / "kernel.log"] if self._run_dir is not None else []

    def _over_a_budget_now(self) -> bool:
        """The budgets, checked at once at the end of a notebook cell; on a hit the kernel is stopped as it
        would have been a tick later, with the same verdict."""
        watchdog = self._watchdog
        if watchdog is None:
            return False
        if watchdog.tripped is not None:
            return True
        tripped = self._budgets.tripped_now()
        if tripped is not None:
            watchdog.tripped = tripped
            self._kill_group()
            return True
        return False

    def _kernel_pids(self) -> list[int]:
        """The kernel's processes: its pids cgroup when it has one, else its process group."""
        if self._cgroup is not None:
            return list(self._cgroup.members())
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
        replies: list[dict[str, Any]] = []
        client.on_cell_executed = lambda **kw: replies.append(kw.get("execute_reply") or {})
        client.timeout_func = lambda _cell: max(1, round(timeout_s))
        client.reset_cap()
        began = time.monotonic()
        watchdog.arm(began + timeout_s + self.limits.kill_grace_s)
        died = False
        malformed: str | None = None
        try:
            client.execute_cell(cell, index, store_history=store_history)
        except DeadKernelError:
            died = True
        except Exception as exc:  # a hostile kernel's reply, reported as malformed; the traceback tells a bug of ours
            log.debug("the kernel's reply broke the cell's execution", exc_info=True)
            malformed = f"{type(exc).__name__}: {exc}"[:ERROR_VALUE_CHARS]
        finally:
            watchdog.disarm()
        coalesce_streams(cell)
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
        content = reply_content(replies)
        if content.get("status") != "error":
            return _CellOutcome("ok", duration)
        name = text_field(content.get("ename")) or None
        overran = duration >= timeout_s - 0.5
        status: CellStatus = "timeout" if name == "KeyboardInterrupt" and overran else "error"
        lines = content.get("traceback")
        return _CellOutcome(
            status,
            duration,
            error_name=name,
            error_value=text_field(content.get("evalue"))[:ERROR_VALUE_CHARS],
            traceback=short_traceback([x for x in lines if isinstance(x, str)] if isinstance(lines, list) else []),
            message=Msg("exec.cell_timeout", {"seconds": round(timeout_s)}) if status == "timeout" else None,
            model_frames=frames_in_forward(lines),
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
            code: int | None = process.wait(timeout=2)
            return code
        except Exception:  # still exiting after 2 s (or already reaped): what poll() says
            log.debug("waiting for the kernel's exit code failed", exc_info=True)
            polled: int | None = process.poll()
            return polled

    def run_notebook(self, nb: nbformat.NotebookNode,
                     on_cell: Callable[[int, int], None] | None = None) -> ExecutionResult:
        """Run every code cell in order; return a record per code cell and the executed notebook.

        `on_cell(number, total)` is told before each code cell runs (1-based, among the code cells)."""
        client = self._client
        if client is None:
            raise InternalError("KernelSession.run_notebook called before start()")
        executed = nbformat.from_dict(nb)  # a deep copy: the caller's notebook stays as it was
        client.nb = executed
        began = time.monotonic()
        budget_end = began + self.limits.notebook_timeout_s
        records: list[CellRecord] = []
        total = sum(1 for c in executed.cells if c.cell_type == "code")
        timed_out = killed = died = False
        for index, cell in enumerate(executed.cells):
            if cell.cell_type != "code":
                continue
            remaining = budget_end - time.monotonic()
            if died or remaining <= 0:
                timed_out = timed_out or remaining <= 0
                reason = "exec.not_run_after_death" if died else "exec.not_run_budget"
                records.append(not_run(index, cell.source, Msg(reason)))
                continue
            if on_cell is not None:
                on_cell(len(records) + 1, total)
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


def _mentions_npu(nb: nbformat.NotebookNode) -> bool:
    return any(cell.cell_type == "code" and "npu" in cell.source for cell in nb.cells)
