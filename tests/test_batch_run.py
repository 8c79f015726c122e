"""`grader grade` end to end: real worker processes, real kernels, a real SQLite store.

Kept small (2-3 submissions per test; the untouched template and broken files
cost little): the reference takes ~10 s to grade, the template ~5 s, a file that
is not JSON no kernel at all.
"""
from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import nbformat
import pytest
from proc_helpers import processes_mentioning

from grader.batch.executors import LocalExecutor
from grader.batch.jobs import JobOptions, make_job
from grader.batch.run import GradeOptions, grade
from grader.batch.store import STORE_NAME
from grader.cli import main
from grader.paths import PROJECT_ROOT, REFERENCE_NOTEBOOK, TEMPLATE_NOTEBOOK
from grader.rubric import CHECK_IDS

NOT_JSON = b"this is not a notebook {"


def hanging_notebook() -> bytes:
    """The template with a first cell that never ends (the kernel's own cell limit is far away)."""
    nb = nbformat.read(TEMPLATE_NOTEBOOK, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell("while True:\n    pass"))
    return nbformat.writes(nb).encode("utf-8")


def make_submissions(folder: Path, spec: dict[str, str]) -> Path:
    sources = {"reference": lambda: REFERENCE_NOTEBOOK.read_bytes(), "template": lambda: TEMPLATE_NOTEBOOK.read_bytes(),
               "notjson": lambda: NOT_JSON, "hang": hanging_notebook}
    folder.mkdir(parents=True, exist_ok=True)
    for name, kind in spec.items():
        (folder / f"{name}.ipynb").write_bytes(sources[kind]())
    return folder


def rows(out: Path) -> dict[str, dict]:
    conn = sqlite3.connect(f"file:{out / STORE_NAME}?mode=ro", uri=True)
    try:
        cur = conn.execute("SELECT id, outcome, score, graded_at, run_id, notebook_sha256 FROM submissions")
        names = [d[0] for d in cur.description]
        return {r[0]: dict(zip(names, r)) for r in cur.fetchall()}
    finally:
        conn.close()


def stored_count(out: Path) -> int:
    try:
        return len(rows(out))
    except sqlite3.Error:  # not created yet
        return 0


def assert_no_leftover_processes(fragment: str) -> None:
    # Kernels die by PR_SET_PDEATHSIG when their worker dies: asynchronous, so wait for it to land.
    deadline = time.monotonic() + 30
    while processes_mentioning(fragment) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_mentioning(fragment) == []


@pytest.fixture
def private_tmp(tmp_path, monkeypatch) -> Path:
    """Worker and kernel folders under this test's tmp folder, so leftovers can be found by path."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    yield tmp
    assert_no_leftover_processes(str(tmp))


@pytest.mark.kernel
def test_sigkill_mid_batch_then_resume_loses_nothing_and_grades_nothing_twice(tmp_path):
    subs = make_submissions(tmp_path / "subs", {"a_broken": "notjson", "b_template": "template", "c_reference": "reference"})
    out = tmp_path / "out"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp)}
    command = [sys.executable, "-m", "grader", "grade", str(subs), "-o", str(out), "--jobs", "1", "--lang", "en"]
    first = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while stored_count(out) < 1 and first.poll() is None:
            time.sleep(0.05)
        os.killpg(first.pid, signal.SIGKILL)  # the coordinator and its workers; kernels follow by PDEATHSIG
    finally:
        first.wait(30)
    before = rows(out)
    assert 1 <= len(before) < 3, "the kill must land mid-batch"
    assert_no_leftover_processes(str(tmp))

    second = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 1, second.stderr  # a_broken is bad input; the others are graded
    after = rows(out)
    assert sorted(after) == ["a_broken", "b_template", "c_reference"]
    for sid, row in before.items():  # stored before the kill: kept as is, not graded again
        assert after[sid] == row
    assert {after[s]["run_id"] for s in after if s not in before} == {2}
    assert after["a_broken"]["outcome"] == "bad_input"
    assert after["b_template"]["outcome"] == "graded" and after["b_template"]["score"] == 0
    assert after["c_reference"]["outcome"] == "graded" and after["c_reference"]["score"] == 100
    conn = sqlite3.connect(out / STORE_NAME)
    assert conn.execute("SELECT COUNT(*) FROM checks").fetchone()[0] == 3 * len(CHECK_IDS)
    assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 2
    conn.close()
    assert f"{3 - len(before)} graded, 0 not graded, {len(before)} unchanged" in second.stdout
    assert len(json.loads((out / "results" / "c_reference.json").read_text())["checks"]) == len(CHECK_IDS)
    assert_no_leftover_processes(str(tmp))


@pytest.mark.kernel
def test_rerun_regrades_only_the_changed_notebook_and_force_regrades_all(tmp_path, private_tmp):
    subs = make_submissions(tmp_path / "subs", {"a": "template", "b": "notjson", "c": "notjson"})
    out = tmp_path / "out"
    options = GradeOptions(submissions=subs, out=out, jobs=1, lang="en")

    first = grade(options, out=io.StringIO(), err=io.StringIO())
    assert (first.graded_now, first.failed_now, first.skipped_unchanged, first.exit_code) == (1, 2, 0, 1)
    before = rows(out)

    (subs / "b.ipynb").write_bytes(TEMPLATE_NOTEBOOK.read_bytes())  # b fixed its upload
    second = grade(options, out=io.StringIO(), err=io.StringIO())
    after = rows(out)
    assert (second.graded_now, second.failed_now, second.skipped_unchanged) == (1, 0, 2)
    assert after["a"] == before["a"] and after["c"] == before["c"]
    assert after["b"]["graded_at"] != before["b"]["graded_at"] and after["b"]["outcome"] == "graded"

    forced = grade(GradeOptions(submissions=subs, out=out, jobs=1, lang="en", force=True),
                   out=io.StringIO(), err=io.StringIO())
    assert (forced.graded_now, forced.failed_now, forced.skipped_unchanged) == (2, 1, 0)
    assert all(rows(out)[s]["graded_at"] != after[s]["graded_at"] for s in "abc")
    assert len(rows(out)) == 3


@pytest.mark.kernel
def test_lms_zip_with_student_folders_a_stray_file_and_a_duplicate_id(tmp_path, private_tmp, capsys):
    archive = tmp_path / "moodle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        def add(name: str, data: bytes, year: int) -> None:
            zf.writestr(zipfile.ZipInfo(name, (year, 1, 1, 0, 0, 0)), data)

        add("Lab3/2023001_Zhang San_assignsubmission_file_/lab.ipynb", TEMPLATE_NOTEBOOK.read_bytes(), 2024)
        add("Lab3/2023001_Zhang San_assignsubmission_file_/notes.pdf", b"%PDF-1.4", 2024)
        add("Lab3/2023002_Li Si_assignsubmission_file_/lab.ipynb", TEMPLATE_NOTEBOOK.read_bytes(), 2025)
        add("Lab3/2023002_Li Si_late_assignsubmission_file_/lab.ipynb", NOT_JSON, 2024)  # older duplicate
        add("../escape.ipynb", NOT_JSON, 2024)
    out = tmp_path / "out"
    code = main(["grade", str(archive), "-o", str(out), "--jobs", "2", "--lang", "en",
                 "--id-pattern", r"^(?P<id>[^_]+)_"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert sorted(rows(out)) == ["2023001", "2023002"]
    assert all(r["outcome"] == "graded" for r in rows(out).values())
    assert "notes.pdf: not a notebook" in printed
    assert "2023002_Li Si_late_assignsubmission_file_/lab.ipynb: same student id 2023002" in printed
    assert "../escape.ipynb: an unsafe name" in printed
    assert not (tmp_path / "escape.ipynb").exists()
    conn = sqlite3.connect(out / STORE_NAME)
    assert sorted(k for (k,) in conn.execute("SELECT kind FROM problems")) == [
        "duplicate_id", "not_a_notebook", "zip_unsafe_name"]
    conn.close()
    grades = (out / "grades.csv").read_text(encoding="utf-8-sig")
    assert "2023001" in grades and "2023002" in grades
    assert (out / "summary.html").is_file() and (out / "junit.xml").is_file()


@pytest.mark.kernel
def test_a_hanging_submission_times_out_and_the_batch_goes_on(tmp_path, private_tmp):
    subs = make_submissions(tmp_path / "subs", {"a_hang": "hang", "b_broken": "notjson", "c_template": "template"})
    out = tmp_path / "out"
    # jobs=1: the hung worker is killed and a fresh one grades the rest
    summary = grade(GradeOptions(submissions=subs, out=out, jobs=1, lang="en", job_timeout_s=20),
                    out=io.StringIO(), err=io.StringIO())
    stored = rows(out)
    assert {s: r["outcome"] for s, r in stored.items()} == {
        "a_hang": "timeout", "b_broken": "bad_input", "c_template": "graded"}
    assert summary.exit_code == 1 and summary.outcomes == {"timeout": 1, "bad_input": 1, "graded": 1}
    hung = json.loads((out / "results" / "a_hang.json").read_text())
    assert "20 s" in hung["error"] and len(hung["checks"]) == len(CHECK_IDS)
    assert all(c["status"] == "error" and c["score"] == 0 for c in hung["checks"])


def test_a_worker_that_dies_mid_job_gives_that_job_a_crashed_verdict(tmp_path, private_tmp):
    subs = make_submissions(tmp_path / "subs", {"victim": "template", "next": "notjson"})
    options = JobOptions(data=None, device="cpu", rubric=None, lang="en")
    jobs = [make_job(p.stem, p.name, p, options) for p in sorted(subs.glob("*.ipynb"), reverse=True)]
    executor = LocalExecutor(jobs=1, timeout_s=300)
    got: dict[str, dict] = {}

    def kill_the_victims_worker() -> None:  # what the OOM killer does
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            busy = [w for w in list(executor._workers) if w.job is not None and w.job.submission_id == "victim"]
            if busy:
                os.kill(busy[0].process.pid, signal.SIGKILL)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_victims_worker)
    killer.start()
    executor.run(jobs, lambda job, result: got.setdefault(job.submission_id, result))
    killer.join()
    assert got["victim"]["outcome"] == "crashed" and "SIGKILL" in got["victim"]["error"]
    assert got["next"]["outcome"] == "bad_input"


def test_missing_or_empty_submissions_exit_2(tmp_path, capsys):
    assert main(["grade", str(tmp_path / "nope"), "-o", str(tmp_path / "out"), "--lang", "en"]) == 2
    (tmp_path / "empty").mkdir()
    assert main(["grade", str(tmp_path / "empty"), "-o", str(tmp_path / "out"), "--lang", "en"]) == 2
    assert "no notebooks" in capsys.readouterr().err
    dask = main(["grade", str(tmp_path / "empty"), "-o", str(tmp_path / "out"), "--executor", "dask", "--lang", "en"])
    assert dask == 2 and "--scheduler" in capsys.readouterr().err


def classes_only_notebook() -> bytes:
    """Just the reference's imports and two classes: quick to grade, and a copy of someone else's code."""
    from grader.notebook import find_class_sources

    classes = find_class_sources(nbformat.read(REFERENCE_NOTEBOOK, as_version=4), ["CustomRNN", "CustomLSTM"])
    cells = [nbformat.v4.new_code_cell("import torch\nimport torch.nn as nn")]
    cells += [nbformat.v4.new_code_cell(source) for source in classes.values()]
    return nbformat.writes(nbformat.v4.new_notebook(cells=cells)).encode("utf-8")


@pytest.mark.kernel
def test_copied_classes_are_flagged_in_the_class_summary_for_a_human(tmp_path, private_tmp):
    subs = tmp_path / "subs"
    subs.mkdir()
    for name in ("alice", "bob"):
        (subs / f"{name}.ipynb").write_bytes(classes_only_notebook())
    (subs / "carol.ipynb").write_bytes(TEMPLATE_NOTEBOOK.read_bytes())
    out = tmp_path / "out"
    grade(GradeOptions(submissions=subs, out=out, jobs=2, lang="en"), out=io.StringIO(), err=io.StringIO())
    summary_csv = (out / "summary.csv").read_text(encoding="utf-8-sig")
    flagged = [line for line in summary_csv.splitlines() if line.startswith("similarity,")]
    assert len(flagged) == 1 and "alice / bob" in flagged[0], summary_csv
    page = (out / "summary.html").read_text(encoding="utf-8")
    assert "not a penalty" in page


def test_a_crash_keeps_the_errors_details_in_the_stored_verdict(tmp_path, monkeypatch):
    """A kernel that dies at start: its last log lines (InternalError details) reach the TA's verdict."""
    from grader.batch import jobs
    from grader.errors import InternalError

    def dies(job):
        raise InternalError("could not start a Python kernel", details=["ImportError: libcuda.so.1: cannot open"])

    monkeypatch.setattr(jobs, "_grade", dies)
    path = tmp_path / "a.ipynb"
    path.write_text("{}", encoding="utf-8")
    result = jobs.grade_job(make_job("a", "a.ipynb", path, JobOptions(data=None, device="cpu", rubric=None, lang="en")))
    assert result["outcome"] == "crashed"
    assert result["error"].splitlines() == ["could not start a Python kernel", "ImportError: libcuda.so.1: cannot open"]
