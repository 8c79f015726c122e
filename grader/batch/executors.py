"""Executors run GradeJobs somewhere and hand each result back to the coordinator.

`LocalExecutor` keeps `jobs` long-lived worker processes on this machine and
replaces any that dies or overruns. Why long-lived workers, not a process per job:
a fresh process pays ~2 s for `import torch` plus the grader's own imports and
the reference model (measured: `grader check` on the reference takes ~10.5 s in a
fresh process, ~8 s in a warm one; docs/batch.md has the figures), which would be
a fifth of every correct submission's cost. A worker is still only the trusted
side: the student's code runs in a separate Jupyter kernel per submission, which
the worker starts and kills, so reusing the worker shares nothing between students.

Isolation from what a submission can do to the trusted side:
- a worker that dies (segfault, the OOM killer, os._exit in grader code) is seen
  through its process sentinel: its job gets a "crashed" verdict, a new worker
  takes its place, the batch goes on;
- a job that runs past `timeout_s` gets its worker SIGKILLed (its kernel dies with
  it: kernels are started with PR_SET_PDEATHSIG) and a "timeout" verdict;
- each worker has its own temporary folder, removed when it is replaced, so a
  killed worker leaves no work folders behind.
"""
from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Protocol

from grader.batch.jobs import GradeJob, failed_result, grade_job
from grader.errors import InternalError
from grader.hosting.launch import PR_SET_PDEATHSIG, load_prctl
from grader.logs import debug_enabled, logging_to_stderr
from grader.messages import text
from grader.report.results import StoredResult
from grader.rubric import Rubric
from grader.untrusted_fs import remove_tree

OnResult = Callable[[GradeJob, StoredResult], None]

# How long a new worker may take to import torch and the grader before it counts as broken.
WORKER_START_TIMEOUT_S = 120.0


class Executor(Protocol):
    def run(self, jobs: Sequence[GradeJob], on_result: OnResult) -> None:
        """Grade every job; call on_result(job, result) in the calling process as each one finishes."""


def default_jobs() -> int:
    """One worker per core this process may use (a container's CPU set, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


# -- the worker process --------------------------------------------------------------------------


def _die_with_parent(parent_pid: int) -> None:
    """SIGKILL this worker when the coordinator dies, even by SIGKILL (Linux); exit if it already has."""
    prctl = load_prctl()
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(0)


def _worker_main(conn: Connection, parent_pid: int, tmpdir: str, debug: bool) -> None:
    """A worker's life: warm up, then grade one job per message until told to stop (None)."""
    _die_with_parent(parent_pid)
    # Ctrl-C reaches the whole terminal process group; the coordinator decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["TMPDIR"] = tmpdir
    tempfile.tempdir = tmpdir
    from grader.threads import limit_torch_threads

    limit_torch_threads()
    # The imports a job needs, paid once per worker, before it says it is ready.
    for module in ("grader.pipeline", "grader.report.json_report", "grader.oracle.live"):
        importlib.import_module(module)

    conn.send(("ready", os.getpid()))
    # A spawned process starts with no logging set up: the coordinator's, sanitised like it (log lines quote
    # student text), or warnings would reach the terminal raw and --debug would stop at the coordinator.
    with logging_to_stderr(debug):
        while True:
            try:
                job = conn.recv()
            except EOFError:
                return
            if job is None:
                return
            conn.send(("result", grade_job(job)))


# -- the coordinator's side ----------------------------------------------------------------------


@dataclass
class _Worker:
    process: Any                      # multiprocessing.Process (spawn context)
    conn: Connection
    tmpdir: Path
    started: float
    ready: bool = False
    job: GradeJob | None = None
    job_started: float = 0.0

    def deadline(self, timeout_s: float) -> float:
        if self.job is not None:
            return self.job_started + timeout_s
        return self.started + WORKER_START_TIMEOUT_S if not self.ready else float("inf")

    def kill(self) -> None:
        if self.process.is_alive():
            try:
                os.kill(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.join(10)
        self.conn.close()
        remove_tree(self.tmpdir)  # its kernels' folders, whatever they hold: never recursive, bounded


@dataclass
class LocalExecutor:
    """`jobs` worker processes on this machine; a job over `timeout_s` seconds is killed and given "timeout"."""

    jobs: int
    timeout_s: float
    _workers: list[_Worker] = field(default_factory=list, init=False, repr=False)
    _lang: str = field(default="zh", init=False, repr=False)

    def __post_init__(self) -> None:
        if self.jobs < 1:
            raise ValueError("jobs must be at least 1")

    def run(self, jobs: Sequence[GradeJob], on_result: OnResult) -> None:
        pending: deque[int] = deque(range(len(jobs)))
        if len(jobs):
            self._lang = jobs[0].options.lang
        root = Path(tempfile.mkdtemp(prefix="grader-workers-"))
        try:
            while pending or any(w.job is not None for w in self._workers):
                self._top_up(min(self.jobs, len(pending) + self._busy()), root)
                self._dispatch(jobs, pending)
                self._wait_and_collect(on_result)
        finally:
            self._stop_all()
            remove_tree(root)

    # -- pieces of the loop ----------------------------------------------------------------------

    def _busy(self) -> int:
        return sum(1 for w in self._workers if w.job is not None)

    def _top_up(self, wanted: int, root: Path) -> None:
        while len(self._workers) < wanted:
            self._workers.append(self._spawn(root))

    def _spawn(self, root: Path) -> _Worker:
        # spawn, not fork: the coordinator may hold an SQLite connection and threads.
        ctx = multiprocessing.get_context("spawn")
        parent_conn, child_conn = ctx.Pipe(duplex=True)
        tmpdir = Path(tempfile.mkdtemp(prefix="w-", dir=root))
        process = ctx.Process(target=_worker_main, args=(child_conn, os.getpid(), str(tmpdir), debug_enabled()),
                              name="grader-worker", daemon=True)
        process.start()
        child_conn.close()
        return _Worker(process, parent_conn, tmpdir, time.monotonic())

    def _dispatch(self, jobs: Sequence[GradeJob], pending: deque[int]) -> None:
        for worker in self._workers:
            if not pending:
                return
            if worker.ready and worker.job is None:
                job = jobs[pending.popleft()]
                worker.job, worker.job_started = job, time.monotonic()
                try:
                    worker.conn.send(job)
                except (BrokenPipeError, OSError):
                    pass  # the worker died: its sentinel reports it and the job gets its verdict there

    def _wait_and_collect(self, on_result: OnResult) -> None:
        now = time.monotonic()
        nearest = min((w.deadline(self.timeout_s) for w in self._workers), default=now + 1)
        waitables: list[Any] = []
        for w in self._workers:
            waitables += [w.conn, w.process.sentinel]
        ready = wait(waitables, timeout=max(0.0, min(nearest - now, 5.0))) if waitables else []
        for worker in list(self._workers):
            if worker.conn in ready and self._read(worker, on_result):
                continue
            if worker.process.sentinel in ready or not worker.process.is_alive():
                self._retire(worker, on_result, "crashed", self._death_reason(worker))
            elif time.monotonic() > worker.deadline(self.timeout_s):
                reason = (text("batch.job_timeout", self._lang, seconds=round(self.timeout_s))
                          if worker.job else text("batch.worker_start_timeout", self._lang,
                                                  seconds=round(WORKER_START_TIMEOUT_S)))
                self._retire(worker, on_result, "timeout", reason)

    def _read(self, worker: _Worker, on_result: OnResult) -> bool:
        """Handle one message from a worker; False when the pipe broke (the worker died)."""
        try:
            kind, payload = worker.conn.recv()
        except (EOFError, OSError):
            return False
        if kind == "ready":
            worker.ready = True
        elif kind == "result" and worker.job is not None:
            job, worker.job = worker.job, None
            on_result(job, payload)
        return True

    def _retire(self, worker: _Worker, on_result: OnResult, outcome: str, reason: str) -> None:
        """Kill a dead, hung or broken worker; its job (if any) gets its own verdict."""
        job, elapsed = worker.job, time.monotonic() - worker.job_started
        worker.kill()
        self._workers.remove(worker)
        if job is not None:
            on_result(job, failed_result(job, outcome, reason, duration_s=elapsed))
        elif not worker.ready:
            # A worker that cannot even start would be replaced forever: stop with the reason.
            raise InternalError(text("batch.worker_start_failed", self._lang, reason=reason))

    def _death_reason(self, worker: _Worker) -> str:
        worker.process.join(1)
        code = worker.process.exitcode
        lang = self._lang
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = str(-code)
            return text("batch.worker_killed", lang, signal=name)
        return text("batch.worker_exited", lang, code=code)

    def _stop_all(self) -> None:
        for worker in self._workers:
            try:
                worker.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        for worker in self._workers:
            worker.process.join(5)
            worker.kill()
        self._workers.clear()


def job_timeout_s(rubric: Rubric, margin_s: float = 120.0) -> float:
    """The longest one submission may take: the notebook, the probes, the training check, and a margin
    for kernel starts, the fallback kernel and a loaded machine."""
    limits, training = rubric.limits, rubric.training
    # Model checks make a handful of probe calls, each bounded by probe_timeout_s; two bound the
    # realistic worst case (a probe that hangs is killed, and the rest fail fast on a dead kernel).
    return limits.notebook_timeout_s + 2 * limits.probe_timeout_s + training.time_budget_s + margin_s

