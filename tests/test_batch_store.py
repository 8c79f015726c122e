"""The SQLite store and the progress line (fast: no kernels)."""
from __future__ import annotations

import io
import sqlite3

import pytest

from grader.batch.discover import Problem
from grader.batch.progress import Progress, format_duration
from grader.batch.store import SCHEMA_VERSION, STORE_NAME, Store
from grader.errors import BadInputError


def result(sid: str, score: float = 10.0, checks: list[dict] | None = None, **extra) -> dict:
    checks = checks if checks is not None else [
        {"id": "rnn.forward", "status": "passed", "score": score, "max_score": 10.0, "message": "ok"},
        {"id": "lstm.forward", "status": "failed", "score": 0.0, "max_score": 10.0, "message": "wrong"},
    ]
    return {"schema": 1, "submission_id": sid, "file": f"{sid}.ipynb", "notebook": f"{sid}.ipynb", "outcome": "graded",
            "score": score, "max_score": 20.0, "device": "cpu", "duration_s": 1.5, "timings": {"execute_s": 1.0},
            "checks": checks, "rubric_sha256": "r1", "grader_version": "0.1.0", **extra}


def test_save_skip_replace_and_read_back(tmp_path):
    with Store.open(tmp_path) as store:
        run = store.begin_run("0.1.0", "r1")
        store.save_result(result("a"), notebook_sha256="n1", run_id=run)
        store.save_result(result("b", 5.0), notebook_sha256="n2", run_id=run)
        assert store.already_graded("a", "n1", "r1", "0.1.0")
        assert not store.already_graded("a", "changed", "r1", "0.1.0")
        assert not store.already_graded("a", "n1", "other rubric", "0.1.0")
        assert not store.already_graded("a", "n1", "r1", "0.2.0")
        store.save_result(result("a", 7.0), notebook_sha256="n1b", run_id=run)
        assert [r["score"] for r in store.all_results()] == [7.0, 5.0]
        assert [r["notebook_sha256"] for r in store.rows()] == ["n1b", "n2"]
        store.end_run(run)
    conn = sqlite3.connect(tmp_path / STORE_NAME)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT COUNT(*) FROM checks").fetchone()[0] == 4
    assert conn.execute("SELECT status FROM checks WHERE submission_id='a' AND id='rnn.forward'").fetchone() == ("passed",)
    assert conn.execute("SELECT timings FROM submissions WHERE id='a'").fetchone() == ('{"execute_s": 1.0}',)
    assert conn.execute("SELECT finished_at IS NOT NULL FROM runs").fetchone() == (1,)


def test_a_failed_write_leaves_the_previous_result_whole(tmp_path):
    with Store.open(tmp_path) as store:
        store.save_result(result("a", 10.0), notebook_sha256="n1")
        duplicate_check = {"id": "rnn.forward", "status": "passed", "score": 1.0, "max_score": 10.0}
        with pytest.raises(sqlite3.IntegrityError):
            # the second check row violates the key after the submission row was replaced: all rolls back
            store.save_result(result("a", 1.0, checks=[duplicate_check, duplicate_check]), notebook_sha256="n2")
        assert [r["score"] for r in store.all_results()] == [10.0]
        assert store.already_graded("a", "n1", "r1", "0.1.0")


def test_problems_are_replaced_per_run(tmp_path):
    with Store.open(tmp_path) as store:
        store.replace_problems(store.begin_run("0.1.0", "r1"), [Problem("not_a_notebook", "x.txt")])
        store.replace_problems(store.begin_run("0.1.0", "r1"), [
            Problem("duplicate_id", "b.ipynb", "7", {"kept": "a.ipynb"})])
        assert store.problems() == [Problem("duplicate_id", "b.ipynb", "7", {"kept": "a.ipynb"})]


def test_a_store_from_a_newer_grader_is_refused(tmp_path):
    Store.open(tmp_path).close()
    conn = sqlite3.connect(tmp_path / STORE_NAME)
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(BadInputError, match="newer grader"):
        Store.open(tmp_path, "en")
    with pytest.raises(BadInputError, match="更新版本"):
        Store.open(tmp_path, "zh")


def test_a_file_that_is_not_sqlite_is_refused(tmp_path):
    (tmp_path / STORE_NAME).write_bytes(b"not a database at all" * 100)
    with pytest.raises(BadInputError, match="grades store"):
        Store.open(tmp_path, "en")


def test_progress_plain_lines_when_not_a_tty():
    stream = io.StringIO()
    progress = Progress(3, "en", stream=stream, is_tty=False, interval_s=3600)
    progress.start()
    progress.advance(failed=False)   # within the interval: no line
    progress.advance(failed=True)
    progress.advance(failed=False)   # the last one always prints
    progress.finish()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "0/3" in lines[0] and "ETA ?" in lines[0]
    assert "3/3" in lines[1] and "not graded 1" in lines[1] and "ETA 0:00" in lines[1]
    assert "\r" not in stream.getvalue()


def test_progress_redraws_in_place_on_a_tty():
    stream = io.StringIO()
    progress = Progress(2, "zh", stream=stream, is_tty=True)
    progress.start()
    progress.advance(failed=False)
    progress.finish()
    assert stream.getvalue().count("\r") == 2 and stream.getvalue().endswith("\n")
    assert "已评测 1/2" in stream.getvalue()


def test_format_duration():
    assert format_duration(5) == "0:05" and format_duration(125) == "2:05" and format_duration(3725) == "1:02:05"
