"""Run GradeJobs on a Dask distributed cluster (`grader grade --executor dask --scheduler ADDR`).

Each job is one Dask task, `grade_job(job)`: the job carries the notebook's bytes and
plain options, so a worker needs no shared filesystem, only the same grader installed.
Results come back to this (the coordinating) process through `as_completed`, and
`on_result` runs here, where the SQLite store lives: workers never touch the store.

A task that fails instead of returning (the worker process died and the scheduler gave
up on it with KilledWorker, the worker lost its connection, grader code raised past
grade_job's own guard) gives that submission a "crashed" verdict and the batch goes on.

Workers must run one task at a time with one torch thread, as `LocalExecutor`'s
workers do: `OMP_NUM_THREADS=1 dask worker ADDR --nthreads 1 --nworkers N` (docs/cluster.md).
Each job also sets torch's thread count on its worker, in case a worker was started
without the variable.
"""
from __future__ import annotations

import logging
import re
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from grader.batch.executors import OnResult
from grader.batch.jobs import GradeJob, failed_result, grade_job, short_reason
from grader.errors import BadInputError
from grader.messages import text
from grader.report.results import StoredResult, from_json

log = logging.getLogger(__name__)

# How long to wait for the scheduler before telling the TA it is not reachable.
CONNECT_TIMEOUT_S = 30.0


def grade_on_worker(job: GradeJob) -> StoredResult:
    """The task a worker runs: one torch thread, then the same grade_job as every executor."""
    from grader.threads import limit_torch_threads

    limit_torch_threads()
    return grade_job(job)


def task_key(job: GradeJob) -> str:
    """A unique, readable task key: the dashboard shows which submission a worker is on.

    Unique per run (a random suffix), so regrading a submission in a later batch never
    picks up an old task with the same key that the scheduler still remembers.
    """
    readable = re.sub(r"[^\w.-]+", "_", job.submission_id)[:60]
    return f"grade-{readable}-{job.notebook_sha256[:8]}-{uuid.uuid4().hex[:8]}"


@dataclass
class DaskExecutor:
    """Executor on a Dask cluster.

    `scheduler`: an address such as `tcp://10.0.0.5:8786`, or a `distributed.LocalCluster`
    (or any object `distributed.Client` accepts), which the tests use.
    """

    scheduler: Any
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    # What each task runs; tests swap in one that kills its worker.
    task: Callable[[GradeJob], StoredResult] = grade_on_worker

    def run(self, jobs: Sequence[GradeJob], on_result: OnResult) -> None:
        if not jobs:
            return
        # Imported here: distributed is only needed by TAs who use a cluster.
        from distributed import Client, as_completed

        client = Client(self.scheduler, timeout=self.connect_timeout_s)
        try:
            pending = deque(jobs)
            in_flight: dict[Any, GradeJob] = {}
            finished = as_completed()
            self._submit_more(client, pending, in_flight, finished)
            for future in finished:
                job = in_flight.pop(future)
                on_result(job, _result_of(future, job))
                future.release()  # the result is stored; let the cluster free its memory
                self._submit_more(client, pending, in_flight, finished)
        finally:
            client.close()

    def _submit_more(self, client: Any, pending: deque[GradeJob], in_flight: dict[Any, GradeJob],
                     finished: Any) -> None:
        """Keep one task per worker thread on the cluster, not the whole batch.

        Why: the scheduler sends a worker more tasks than it has threads (worker-saturation
        1.1 rounds up to 2 for one thread), and when a worker dies every task it held counts
        as a suspect. A submission that kills its worker would then take an innocent
        neighbour down with it to KilledWorker. With no more tasks out than threads,
        only the task that was running is charged.
        """
        capacity = max(1, sum(client.nthreads().values()))
        while pending and len(in_flight) < capacity:
            job = pending.popleft()
            future = client.submit(self.task, job, pure=False, key=task_key(job))
            in_flight[future] = job
            finished.add(future)


def _result_of(future: Any, job: GradeJob) -> StoredResult:
    """The task's result, or a "crashed" verdict naming why the cluster could not give one."""
    try:
        result = future.result()
    except Exception as exc:  # the task itself never raises: a lost worker, or a bug of ours
        log.warning("the cluster gave no result for %s", job.submission_id, exc_info=True)
        reason = text("cluster.task_failed", job.options.lang, reason=short_reason(exc))
        return failed_result(job, "crashed", reason)
    try:  # what a worker sent back is read through the result contract, like a stored result
        return from_json(result, f"worker result for {job.submission_id}", job.options.lang)
    except BadInputError as exc:
        reason = text("cluster.task_failed", job.options.lang, reason=str(exc)[:300])
        return failed_result(job, "crashed", reason)
