"""`grader grade` regrades a stored verdict when anything that decided it changed (#13 item 5).

A real SQLite store and the real coordinator; the jobs are graded in this process
(`grade_job`, the workers' own function) so no worker or kernel starts: every
submission here is a file that is not a notebook, whose verdict (bad input) still
gets a stored row keyed like any other. A calibration refused on other data stops
the batch before any job (exit 2).
"""
from __future__ import annotations

import io
import shutil
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
from test_batch_store import result

from grader.batch import run as batch_run
from grader.batch.jobs import GradeJob, grade_job
from grader.batch.run import GradeOptions, grade
from grader.batch.store import SCHEMA_VERSION, STORE_NAME, Store, VerdictKey
from grader.calibration import Calibration, calibration_path, dataset_hash
from grader.cli import main
from grader.paths import DEFAULT_RUBRIC

NOT_A_NOTEBOOK = b"this is not a notebook {"


class InProcessExecutor:
    """The executor contract without worker processes: what is tested here is the coordinator."""

    def run(self, jobs: Sequence[GradeJob], on_result) -> None:  # type: ignore[no-untyped-def]
        for job in jobs:
            on_result(job, grade_job(job))


@pytest.fixture(autouse=True)
def in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_run, "_make_executor", lambda options, rubric, lang: InProcessExecutor())


@pytest.fixture
def data(tmp_path: Path, small_synthetic_dataset: Path) -> Path:
    return Path(shutil.copytree(small_synthetic_dataset, tmp_path / "data"))


@pytest.fixture
def subs(tmp_path: Path) -> Path:
    folder = tmp_path / "subs"
    folder.mkdir()
    for sid in ("a", "b", "c"):
        (folder / f"{sid}.ipynb").write_bytes(NOT_A_NOTEBOOK + sid.encode())
    return folder


@pytest.fixture
def rubric(tmp_path: Path) -> Path:
    path = tmp_path / "rubrics" / "lab.toml"
    path.parent.mkdir()
    shutil.copy(DEFAULT_RUBRIC, path)
    return path


def write_calibration(path: Path, data: Path, threshold: float, *, sha: str | None = None) -> Path:
    """A calibration file as `grader calibrate` writes it, for the rubric's protocol (no training needed)."""
    cal = Calibration(threshold, 0.05, sha or dataset_hash(data), (0,), (threshold + 0.05,), 0.34, 20, 0.01, 16,
                      data=str(data))
    path.write_text(cal.to_toml(), encoding="utf-8")
    return path


def run_batch(subs: Path, out: Path, data: Path, rubric: Path, **extra) -> tuple[batch_run.GradeSummary, str]:
    stdout = io.StringIO()
    summary = grade(GradeOptions(submissions=subs, out=out, data=data, rubric=rubric, lang="en", **extra),
                    out=stdout, err=io.StringIO())
    return summary, stdout.getvalue()


def graded_at(out: Path) -> dict[str, str]:
    return {r["id"]: r["graded_at"] for r in Store.open(out).rows()}


def add_holdout(data: Path) -> None:
    """A holdout split made of copies of the test clips: the dataset changes, train and test do not."""
    shutil.copytree(data / "test", data / "holdout")
    shutil.copy(data / "test.csv", data / "holdout.csv")


def test_unchanged_inputs_are_skipped_and_a_dataset_change_regrades_all(subs: Path, data: Path, rubric: Path,
                                                                         tmp_path: Path) -> None:
    out = tmp_path / "out"
    first, _ = run_batch(subs, out, data, rubric)
    assert (first.graded_now + first.failed_now, first.regraded_count) == (3, 0)
    again, text = run_batch(subs, out, data, rubric)
    assert again.skipped_unchanged == 3 and again.regraded_count == 0 and "regraded" not in text
    before = graded_at(out)

    add_holdout(data)  # only the holdout split changes: lstm.train would measure on other clips
    changed, text = run_batch(subs, out, data, rubric)
    assert changed.regraded_count == 3 and changed.regraded == {"dataset": 3}
    assert "3 regraded: dataset changed" in text
    after = graded_at(out)
    assert all(after[s] != before[s] for s in "abc")
    assert {r["data_sha256"] for r in Store.open(out).rows()} == {dataset_hash(data)}


def test_a_calibration_added_or_changed_regrades_and_says_so(subs: Path, data: Path, rubric: Path,
                                                             tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_batch(subs, out, data, rubric)
    beside = write_calibration(calibration_path(rubric), data, 0.6)  # picked up automatically: made on this data
    added, text = run_batch(subs, out, data, rubric)
    assert added.regraded == {"calibration": 3} and "3 regraded: calibration changed" in text
    assert {r["calibration_sha256"] for r in Store.open(out).rows()} != {""}

    explicit = write_calibration(tmp_path / "other.calibration.toml", data, 0.55)
    switched, text = run_batch(subs, out, data, rubric, calibration=explicit)
    assert switched.regraded == {"calibration": 3} and "calibration changed" in text
    kept, _ = run_batch(subs, out, data, rubric, calibration=explicit)
    assert kept.skipped_unchanged == 3 and kept.regraded_count == 0
    beside.unlink()


def test_a_calibration_beside_the_rubric_for_other_data_is_not_applied(subs: Path, data: Path, rubric: Path,
                                                                        tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_batch(subs, out, data, rubric)
    write_calibration(calibration_path(rubric), data, 0.6, sha="0" * 64)  # made on other data: as before, ignored
    summary, _ = run_batch(subs, out, data, rubric)
    assert summary.skipped_unchanged == 3 and summary.regraded_count == 0


def test_a_calibration_given_for_other_data_is_refused_before_any_job(subs: Path, data: Path, rubric: Path,
                                                                      tmp_path: Path, capsys) -> None:
    other = write_calibration(tmp_path / "real.calibration.toml", data, 0.64, sha="f" * 64)
    code = main(["--lang", "en", "grade", str(subs), "-o", str(tmp_path / "out"), "--data", str(data),
                 "--rubric", str(rubric), "--calibration", str(other)])
    err = capsys.readouterr().err
    assert code == 2
    assert "was calibrated on other data" in err and f"grader calibrate --data {data} --out {other}" in err
    assert not (tmp_path / "out" / "results").exists()  # nothing graded
    code = main(["--lang", "zh", "grade", str(subs), "-o", str(tmp_path / "out"), "--data", str(data),
                 "--rubric", str(rubric), "--calibration", str(other)])
    assert code == 2 and "另一份数据上校准" in capsys.readouterr().err


def test_a_broken_holdout_split_stops_the_batch_with_exit_2(subs: Path, data: Path, rubric: Path, tmp_path: Path,
                                                            capsys) -> None:
    add_holdout(data)
    (data / "holdout.csv").write_text("filename,class\n000.wav,cow\n", encoding="utf-8")
    code = main(["--lang", "en", "grade", str(subs), "-o", str(tmp_path / "out"), "--data", str(data),
                 "--rubric", str(rubric)])
    err = capsys.readouterr().err
    assert code == 2 and "holdout.csv row 2: unknown class 'cow'" in err and "Traceback" not in err


# --- the store itself ------------------------------------------------------------------------------

KEY = VerdictKey("n1", "r1", "", "d1", "0.1.0")


def test_regrade_reasons_name_every_changed_input(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        assert store.regrade_reasons("a", KEY) is None  # never graded
        store.save_result(result("a"), notebook_sha256="n1", data_sha256="d1", calibration_sha256="")
        assert store.regrade_reasons("a", KEY) == []
        assert store.regrade_reasons("a", VerdictKey("n1", "r1", "", "d2", "0.1.0")) == ["dataset"]
        assert store.regrade_reasons("a", VerdictKey("n1", "r1", "c1", "d1", "0.1.0")) == ["calibration"]
        assert store.regrade_reasons("a", VerdictKey("n2", "r2", "", "d1", "0.2.0")) == ["notebook", "rubric", "grader"]
        store.save_result(result("b"), notebook_sha256="n1")  # what a schema-1 row looks like
        assert store.regrade_reasons("b", KEY) == ["unrecorded"]


SCHEMA_1 = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version VALUES (1);
CREATE TABLE runs (run_id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL, finished_at TEXT,
    grader_version TEXT NOT NULL, rubric_sha256 TEXT NOT NULL);
CREATE TABLE submissions (id TEXT PRIMARY KEY, file TEXT NOT NULL, notebook_sha256 TEXT NOT NULL,
    rubric_sha256 TEXT NOT NULL, grader_version TEXT NOT NULL, outcome TEXT NOT NULL, score REAL NOT NULL,
    max_score REAL NOT NULL, device TEXT, duration_s REAL, timings TEXT, graded_at TEXT NOT NULL, run_id INTEGER,
    result TEXT NOT NULL);
CREATE TABLE checks (submission_id TEXT NOT NULL REFERENCES submissions(id) ON DELETE CASCADE, id TEXT NOT NULL,
    status TEXT NOT NULL, score REAL NOT NULL, max_score REAL NOT NULL, message TEXT, PRIMARY KEY (submission_id, id));
CREATE TABLE problems (run_id INTEGER, kind TEXT NOT NULL, path TEXT NOT NULL, submission_id TEXT, params TEXT NOT NULL);
INSERT INTO runs (started_at, grader_version, rubric_sha256) VALUES ('2024-01-01', '0.1.0', 'r1');
INSERT INTO submissions VALUES ('a', 'a.ipynb', 'n1', 'r1', '0.1.0', 'graded', 7, 20, 'cpu', 1.0, '{}',
    '2024-01-01', 1, '{"schema": 1, "submission_id": "a", "notebook": "a.ipynb", "score": 7, "max_score": 20,
    "checks": []}');
"""


@pytest.mark.kernel
def test_a_schema_1_store_is_migrated_in_place_and_its_rows_stay_readable(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / STORE_NAME)
    conn.executescript(SCHEMA_1)
    conn.close()
    with Store.open(tmp_path) as store:
        [old] = store.all_results()  # read back through the result contract: the keys added since get theirs
        assert (old["submission_id"], old["score"], old["max_score"], old["loader_workers"]) == ("a", 7, 20, [])
        assert store.rows()[0]["data_sha256"] is None
        assert store.regrade_reasons("a", KEY) == ["unrecorded"]  # its data was never recorded
        store.save_result(result("a"), notebook_sha256="n1", data_sha256="d1", calibration_sha256="")
        assert store.regrade_reasons("a", KEY) == []
    conn = sqlite3.connect(tmp_path / STORE_NAME)
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)] == [(4,)]
    conn.close()
    Store.open(tmp_path).close()  # opening a migrated store again changes nothing
