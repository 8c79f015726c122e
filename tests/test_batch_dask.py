"""Grading through a real Dask LocalCluster: real workers, real kernels, results back on the coordinator."""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

# A dev dependency (pyproject's [dev]): a missing install fails here instead of skipping the Dask tests.
import dask
import distributed
import pytest

from grader.batch.dask_executor import DaskExecutor, grade_on_worker, task_key
from grader.batch.jobs import GradeJob, JobOptions, make_job
from grader.paths import REFERENCE_NOTEBOOK, TEMPLATE_NOTEBOOK

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = JobOptions(data=None, device="cpu", rubric=None, lang="en")


@pytest.fixture(scope="module")
def cluster():
    # One single-threaded worker process, as docs/cluster.md tells TAs to start them.
    os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the worker processes
    # No retries of a task whose worker died: the scheduler reports KilledWorker at once.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=40) as local:
        yield local


@pytest.fixture()
def submissions(tmp_path: Path) -> Path:
    folder = tmp_path / "subs"
    folder.mkdir()
    shutil.copy(REFERENCE_NOTEBOOK, folder / "alice.ipynb")
    shutil.copy(TEMPLATE_NOTEBOOK, folder / "bob.ipynb")
    return folder


@pytest.mark.kernel
def test_two_submissions_graded_on_the_cluster(cluster, submissions: Path):
    jobs = [make_job(p.stem, p.name, p, OPTIONS) for p in sorted(submissions.glob("*.ipynb"))]
    received: dict[str, dict] = {}
    caller = os.getpid()

    def on_result(job: GradeJob, result: dict) -> None:
        assert os.getpid() == caller  # on the coordinator, where the store lives
        received[job.submission_id] = result

    DaskExecutor(cluster).run(jobs, on_result)
    assert set(received) == {"alice", "bob"}
    assert received["alice"]["outcome"] == "graded" and received["alice"]["score"] == 100
    assert received["bob"]["outcome"] == "graded" and received["bob"]["score"] == 0
    assert received["alice"]["notebook_sha256"] == jobs[0].notebook_sha256


@pytest.mark.kernel
def test_a_worker_that_dies_gives_a_crashed_verdict_and_the_batch_goes_on(cluster, submissions: Path):
    jobs = [make_job(p.stem, p.name, p, OPTIONS) for p in sorted(submissions.glob("*.ipynb"))]

    def task(job: GradeJob) -> dict:
        # A nested function travels by value to the worker; alice's task kills its worker process.
        if job.submission_id == "alice":
            os._exit(1)
        return grade_on_worker(job)

    received: dict[str, dict] = {}
    DaskExecutor(cluster, task=task).run(jobs, lambda job, result: received.__setitem__(job.submission_id, result))
    assert received["alice"]["outcome"] == "crashed" and received["alice"]["score"] == 0
    assert "KilledWorker" in received["alice"]["error"]
    assert all(check["status"] == "error" for check in received["alice"]["checks"])
    assert received["bob"]["outcome"] == "graded" and received["bob"]["score"] == 0


def test_task_keys_are_unique_and_readable(submissions: Path):
    job = make_job("a student/with odd name", "x.ipynb", submissions / "alice.ipynb", OPTIONS)
    first, second = task_key(job), task_key(job)
    assert first != second and first.startswith("grade-a_student_with_odd_name-")


@pytest.mark.kernel
def test_grade_command_with_the_dask_executor(cluster, submissions: Path, tmp_path: Path):
    out = tmp_path / "out"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "grader", "grade", str(submissions), "-o", str(out), "--executor", "dask",
         "--scheduler", cluster.scheduler_address, "--device", "cpu", "--lang", "en"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    with sqlite3.connect(out / "grades.sqlite") as db:
        scores = dict(db.execute("select id, score from submissions"))
    assert scores == {"alice": 100, "bob": 0}
