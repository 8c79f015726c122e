"""The results store: OUT/grades.sqlite.

One writer (the coordinating process), WAL mode so a TA or a test can read
while a batch runs. Each result is written in one transaction (its submission
row and all its check rows together), with synchronous=FULL, so a SIGKILL or a
power cut at any moment leaves either the whole result or none of it: a rerun
then grades exactly the submissions that have no row.

The full result JSON is kept per submission, so every report can be rendered
again from the store without regrading; the columns beside it are for queries.

Each row also keeps what decided its verdicts (`VerdictKey`: notebook, rubric text,
calibration applied, dataset incl. its holdout split, grader version); a rerun
regrades a row whose key differs and says why (`regrade_reasons`).

Beside the results: the TAs' overrides, an append-only ledger (grader/overrides.py),
and the latest similarity pass, so outputs written again later (after an override)
are the same as the batch's.

Schema history: 1 keyed rows on notebook, rubric and grader version; 2 adds the
dataset's and the calibration's hashes (rows from 1 have neither: "unrecorded");
3 adds the override ledger, the stored similarity pass and the roster (new tables only);
4 adds the flagged submissions' class sources and the TAs' similarity review marks (new tables only:
a schema-3 store gains them, empty, when opened).

`Store.open(..., read_only=True)` (grader serve without --allow-edit) neither migrates nor changes
anything: SQLite opens the file read-only, and a table an older schema lacks reads as empty.
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from grader.batch.discover import Problem
from grader.errors import BadInputError
from grader.messages import text
from grader.overrides import CLEAR, SET, Override, apply_overrides, in_force
from grader.report.results import StoredResult, from_json
from grader.roster import Roster, Student
from grader.similarity_reviews import REOPENED, REVIEWED, PairReview, reviewed_pairs

SCHEMA_VERSION = 4
# Why a stored verdict no longer stands, in the order the summary names them.
REGRADE_REASONS = ("notebook", "dataset", "rubric", "calibration", "grader", "unrecorded")
STORE_NAME = "grades.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    grader_version TEXT NOT NULL,
    rubric_sha256 TEXT NOT NULL,
    data_sha256 TEXT,
    calibration_sha256 TEXT
);
CREATE TABLE IF NOT EXISTS submissions (
    id TEXT PRIMARY KEY,
    file TEXT NOT NULL,
    notebook_sha256 TEXT NOT NULL,
    rubric_sha256 TEXT NOT NULL,
    grader_version TEXT NOT NULL,
    outcome TEXT NOT NULL,
    score REAL NOT NULL,
    max_score REAL NOT NULL,
    device TEXT,
    duration_s REAL,
    timings TEXT,
    graded_at TEXT NOT NULL,
    run_id INTEGER,
    result TEXT NOT NULL,
    data_sha256 TEXT,
    calibration_sha256 TEXT
);
CREATE TABLE IF NOT EXISTS checks (
    submission_id TEXT NOT NULL REFERENCES submissions(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    status TEXT NOT NULL,
    score REAL NOT NULL,
    max_score REAL NOT NULL,
    message TEXT,
    PRIMARY KEY (submission_id, id)
);
CREATE TABLE IF NOT EXISTS override_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    submission_id TEXT NOT NULL,
    check_id TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('set', 'clear')),
    points REAL,
    reason TEXT NOT NULL,
    made_by TEXT NOT NULL,
    made_at TEXT NOT NULL,
    notebook_sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS similarity (
    run_id INTEGER,
    pairs TEXT NOT NULL,
    left_out TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS roster (
    position INTEGER NOT NULL,
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    section TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS class_sources (
    submission_id TEXT PRIMARY KEY,
    notebook_sha256 TEXT NOT NULL,
    sources TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS similarity_reviews (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    a TEXT NOT NULL,
    b TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('reviewed', 'reopened')),
    note TEXT NOT NULL,
    made_by TEXT NOT NULL,
    made_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS problems (
    run_id INTEGER,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    submission_id TEXT,
    params TEXT NOT NULL
);
"""


# Columns schema 2 added to tables schema 1 created (ALTER TABLE; old rows get NULL).
_ADDED_IN_2 = {"runs": ("data_sha256", "calibration_sha256"), "submissions": ("data_sha256", "calibration_sha256")}


@dataclass(frozen=True)
class VerdictKey:
    """Everything that decides a submission's verdicts: a stored row with another key is regraded."""

    notebook_sha256: str
    rubric_sha256: str           # the rubric file's text
    calibration_sha256: str      # the calibration file applied; "" when the rubric's threshold applied
    data_sha256: str             # train, test and holdout splits (grader.calibrate.dataset_hash)
    grader_version: str


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


class Store:
    """OUT/grades.sqlite; open with `Store.open(out_dir, lang)`, close with `close()` (or `with`)."""

    def __init__(self, conn: sqlite3.Connection, path: Path, tables: frozenset[str] | None = None) -> None:
        self._conn = conn
        self.path = path
        self._tables = tables  # None: every table of this schema (a store opened for writing is migrated)

    @classmethod
    def open(cls, out_dir: Path, lang: str = "zh", *, shared: bool = False, read_only: bool = False) -> Store:
        """`shared`: the connection may be used from other threads (`grader serve`, which holds a lock around
        every use); sqlite3 refuses that by default. `read_only`: an existing store, opened by SQLite for
        reading only, with no migration and no pragma that writes (see the module docstring)."""
        out_dir = Path(out_dir)
        path = out_dir / STORE_NAME
        if read_only:
            return cls._open_read_only(path, lang, shared)
        out_dir.mkdir(parents=True, exist_ok=True)
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per result.
            conn = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=not shared)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            store = cls(conn, path)
            store._migrate(lang)
        except sqlite3.DatabaseError as exc:
            raise BadInputError(text("batch.store_unreadable", lang, path=str(path), reason=str(exc))) from None
        return store

    @classmethod
    def _open_read_only(cls, path: Path, lang: str, shared: bool) -> Store:
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None, timeout=30,
                                   check_same_thread=not shared)
        except sqlite3.DatabaseError as exc:
            raise BadInputError(text("batch.store_unreadable", lang, path=str(path), reason=str(exc))) from None
        try:
            tables = frozenset(row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'"))
            store = cls(conn, path, tables)
            version = store._version()
            if "submissions" not in tables:
                raise sqlite3.DatabaseError("no submissions table")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise BadInputError(text("batch.store_unreadable", lang, path=str(path), reason=str(exc))) from None
        if version is not None and version > SCHEMA_VERSION:
            conn.close()
            raise BadInputError(text("batch.store_too_new", lang, path=str(path), found=version,
                                     supported=SCHEMA_VERSION))
        return store

    def _has(self, table: str) -> bool:
        """`table` exists: always in a store opened for writing; in a read-only one, as its schema has it."""
        return self._tables is None or table in self._tables

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    def _migrate(self, lang: str) -> None:
        version = self._version()
        if version is not None and version > SCHEMA_VERSION:
            # A newer grader wrote this store; writing to it with an older schema could corrupt it.
            raise BadInputError(text("batch.store_too_new", lang, path=str(self.path), found=version,
                                     supported=SCHEMA_VERSION))
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in filter(str.strip, _SCHEMA.split(";")):
                self._conn.execute(statement)
            if self._version() is None:
                self._conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            self._add_missing_columns()
            self._conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def _add_missing_columns(self) -> None:
        """Bring a schema-1 store to 2 in place: its rows stay readable, with no dataset or calibration recorded."""
        for table, columns in _ADDED_IN_2.items():
            have = {row[1] for row in self._conn.execute(f"PRAGMA table_info({table})")}
            for column in columns:
                if column not in have:
                    self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")

    def stamp(self) -> tuple[int, int]:
        """Changes whenever the store does (another process's commit, or this connection's own): a cache of
        what was read from it is still good while the stamp is the same."""
        row = self._conn.execute("PRAGMA data_version").fetchone()
        return int(row[0]), self._conn.total_changes

    def _version(self) -> int | None:
        exists = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_version'").fetchone()
        if not exists:
            return None
        row = self._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return row[0] if row and row[0] is not None else None

    # -- runs ----------------------------------------------------------------------------------------

    def begin_run(self, grader_version: str, rubric_sha256: str, *, data_sha256: str | None = None,
                  calibration_sha256: str | None = None) -> int:
        cur = self._conn.execute(
            "INSERT INTO runs (started_at, grader_version, rubric_sha256, data_sha256, calibration_sha256) "
            "VALUES (?, ?, ?, ?, ?)", (now_iso(), grader_version, rubric_sha256, data_sha256, calibration_sha256))
        assert cur.lastrowid is not None  # an INSERT always sets it
        return int(cur.lastrowid)

    def end_run(self, run_id: int) -> None:
        self._conn.execute("UPDATE runs SET finished_at = ? WHERE run_id = ?", (now_iso(), run_id))

    # -- results -------------------------------------------------------------------------------------

    def already_graded(self, submission_id: str, notebook_sha256: str, rubric_sha256: str,
                       grader_version: str) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM submissions WHERE id = ? AND notebook_sha256 = ? AND rubric_sha256 = ? "
            "AND grader_version = ?", (submission_id, notebook_sha256, rubric_sha256, grader_version)).fetchone()
        return row is not None

    def regrade_reasons(self, submission_id: str, key: VerdictKey) -> list[str] | None:
        """None: never graded. []: its stored verdict stands. Else why it must be regraded (REGRADE_REASONS)."""
        row = self._conn.execute(
            "SELECT notebook_sha256, rubric_sha256, calibration_sha256, data_sha256, grader_version "
            "FROM submissions WHERE id = ?", (submission_id,)).fetchone()
        if row is None:
            return None
        notebook, rubric, calibration, data, version = row
        changed = {
            "notebook": notebook != key.notebook_sha256,
            "rubric": rubric != key.rubric_sha256,
            "grader": version != key.grader_version,
            # A schema-1 row never recorded them: its verdicts may belong to other data.
            "unrecorded": data is None or calibration is None,
            "dataset": data is not None and data != key.data_sha256,
            "calibration": calibration is not None and calibration != key.calibration_sha256,
        }
        return [reason for reason in REGRADE_REASONS if changed[reason]]

    def save_result(self, result: StoredResult, *, notebook_sha256: str, run_id: int | None = None,
                    data_sha256: str | None = None, calibration_sha256: str | None = None) -> None:
        """Replace the submission's row and its check rows, all in one transaction.

        `data_sha256`/`calibration_sha256`: what the verdicts were made on (the coordinator's
        VerdictKey); None leaves them unrecorded, so the next run regrades the row.
        """
        sid = str(result["submission_id"])
        row = (
            sid, str(result.get("file") or result.get("notebook") or ""), notebook_sha256,
            str(result.get("rubric_sha256") or ""), str(result.get("grader_version") or ""),
            str(result.get("outcome") or "graded"), float(result.get("score") or 0.0),
            float(result.get("max_score") or 0.0), result.get("device"), result.get("duration_s"),
            json.dumps(result.get("timings") or {}), now_iso(), run_id,
            json.dumps(result, ensure_ascii=False), data_sha256, calibration_sha256,
        )
        checks = [
            (sid, str(c["id"]), str(c["status"]), float(c["score"]), float(c["max_score"]), c.get("message"))
            for c in result.get("checks", [])
        ]
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.execute("DELETE FROM checks WHERE submission_id = ?", (sid,))
            self._conn.execute("DELETE FROM submissions WHERE id = ?", (sid,))
            self._conn.execute(
                "INSERT INTO submissions (id, file, notebook_sha256, rubric_sha256, grader_version, outcome, score, "
                "max_score, device, duration_s, timings, graded_at, run_id, result, data_sha256, calibration_sha256) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
            self._conn.executemany(
                "INSERT INTO checks (submission_id, id, status, score, max_score, message) VALUES (?, ?, ?, ?, ?, ?)",
                checks)
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def all_results(self) -> list[StoredResult]:
        """Every stored result, read back through the result contract (a key an older grader did not write
        gets its neutral value; a row that is not a result is a BadInputError naming it)."""
        rows = self._conn.execute("SELECT id, result FROM submissions ORDER BY id").fetchall()
        return [from_json(json.loads(r[1]), f"{self.path} ({r[0]})") for r in rows]

    def rows(self) -> list[dict[str, Any]]:
        """The submissions table without the JSON (for tests and a TA's quick look)."""
        cur = self._conn.execute(
            "SELECT id, file, notebook_sha256, rubric_sha256, grader_version, outcome, score, max_score, device, "
            "duration_s, graded_at, run_id, data_sha256, calibration_sha256 FROM submissions ORDER BY id")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    def notebook_hashes(self) -> dict[str, str]:
        """Each stored submission's notebook sha256: what an override is made, and later checked, against."""
        return dict(self._conn.execute("SELECT id, notebook_sha256 FROM submissions").fetchall())

    def results_for_outputs(self) -> list[StoredResult]:
        """Every stored result with the TAs' overrides applied: what every output shows."""
        hashes = self.notebook_hashes()
        overrides = list(self.overrides().values())
        return [apply_overrides(r, [o for o in overrides if o.submission_id == r["submission_id"]],
                                hashes.get(r["submission_id"], "")) for r in self.all_results()]

    # -- overrides -----------------------------------------------------------------------------------

    def record_override(self, event: Override) -> None:
        """Append one event to the ledger (never updated or deleted)."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.execute(
                "INSERT INTO override_events (submission_id, check_id, action, points, reason, made_by, made_at, "
                "notebook_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (event.submission_id, event.check_id, event.action, event.points, event.reason, event.by, event.at,
                 event.notebook_sha256))
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def override_events(self) -> list[Override]:
        """The whole ledger, oldest first."""
        if not self._has("override_events"):
            return []
        rows = self._conn.execute(
            "SELECT submission_id, check_id, action, points, reason, made_by, made_at, notebook_sha256 "
            "FROM override_events ORDER BY seq").fetchall()
        return [Override(sid, cid, action, points, reason, by, at, sha)
                for sid, cid, action, points, reason, by, at, sha in rows if action in (SET, CLEAR)]

    def overrides(self) -> dict[tuple[str, str], Override]:
        """The overrides in force, by (submission, check)."""
        return in_force(self.override_events())

    # -- roster --------------------------------------------------------------------------------------

    def save_roster(self, roster: Roster) -> None:
        """The roster of the latest run that gave one (it replaces the one before)."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.execute("DELETE FROM roster")
            self._conn.executemany("INSERT INTO roster (position, id, name, section) VALUES (?, ?, ?, ?)",
                                   [(i, s.id, s.name, s.section) for i, s in enumerate(roster.students)])
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def roster(self) -> Roster | None:
        if not self._has("roster"):
            return None
        rows = self._conn.execute("SELECT id, name, section FROM roster ORDER BY position").fetchall()
        return Roster(tuple(Student(i, n, s) for i, n, s in rows), str(self.path)) if rows else None

    # -- similarity ----------------------------------------------------------------------------------

    def save_similarity(self, run_id: int, pairs: list[dict[str, Any]], left_out: list[dict[str, Any]]) -> None:
        """The latest similarity pass (None was not stored: it failed, and the summary says so)."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.execute("DELETE FROM similarity")
            self._conn.execute("INSERT INTO similarity (run_id, pairs, left_out) VALUES (?, ?, ?)",
                               (run_id, json.dumps(pairs, ensure_ascii=False),
                                json.dumps(left_out, ensure_ascii=False)))
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def similarity(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
        """(pairs, left_out) of the latest similarity pass, or None when none was stored."""
        if not self._has("similarity"):
            return None
        row = self._conn.execute("SELECT pairs, left_out FROM similarity").fetchone()
        if row is None:
            return None
        pairs, left_out = json.loads(row[0]), json.loads(row[1])
        return (pairs if isinstance(pairs, list) else []), (left_out if isinstance(left_out, list) else [])

    # -- the flagged submissions' class sources and the TAs' review marks --------------------------

    def save_class_sources(self, sources: dict[str, tuple[str, list[dict[str, Any]]]]) -> None:
        """Each flagged submission's classes (`grader.similarity.ClassSource` as dicts), with the notebook
        SHA-256 they came from, replacing the pass before's: `grader serve` shows them side by side later,
        when the submissions' own files may be gone (a zip's are extracted into a temporary folder)."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.execute("DELETE FROM class_sources")
            self._conn.executemany(
                "INSERT INTO class_sources (submission_id, notebook_sha256, sources) VALUES (?, ?, ?)",
                [(sid, sha, json.dumps(items, ensure_ascii=False)) for sid, (sha, items) in sources.items()])
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def class_sources(self, submission_id: str) -> tuple[str, list[dict[str, Any]]] | None:
        """(notebook SHA-256, classes) stored for one submission, or None."""
        if not self._has("class_sources"):
            return None
        row = self._conn.execute("SELECT notebook_sha256, sources FROM class_sources WHERE submission_id = ?",
                                 (submission_id,)).fetchone()
        if row is None:
            return None
        items = json.loads(row[1])
        return str(row[0]), [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []

    def record_pair_review(self, event: PairReview) -> None:
        """Append one mark to the similarity reviews (never updated or deleted)."""
        self._conn.execute(
            "INSERT INTO similarity_reviews (a, b, action, note, made_by, made_at) VALUES (?, ?, ?, ?, ?, ?)",
            (event.a, event.b, event.action, event.note, event.by, event.at))

    def pair_review_events(self) -> list[PairReview]:
        if not self._has("similarity_reviews"):
            return []
        rows = self._conn.execute(
            "SELECT a, b, action, note, made_by, made_at FROM similarity_reviews ORDER BY seq").fetchall()
        return [PairReview(*row) for row in rows if row[2] in (REVIEWED, REOPENED)]

    def reviewed_pairs(self) -> dict[tuple[str, str], PairReview]:
        """The "reviewed, not a concern" marks in force, by pair (similarity_reviews.pair_key)."""
        return reviewed_pairs(self.pair_review_events())

    # -- problems ------------------------------------------------------------------------------------

    def replace_problems(self, run_id: int, problems: Iterable[Problem]) -> None:
        """The discovery problems of the latest run (the older ones described an older input)."""
        items = [(run_id, p.kind, p.path, p.submission_id, json.dumps(p.params, ensure_ascii=False))
                 for p in problems]
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.execute("DELETE FROM problems")
            self._conn.executemany(
                "INSERT INTO problems (run_id, kind, path, submission_id, params) VALUES (?, ?, ?, ?, ?)", items)
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def problems(self) -> list[Problem]:
        rows = self._conn.execute("SELECT kind, path, submission_id, params FROM problems ORDER BY rowid").fetchall()
        return [Problem(k, p, s, json.loads(params)) for k, p, s, params in rows]
