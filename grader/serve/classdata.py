"""What the pages read from the store, read once per change of it.

Reading a class means parsing every stored result (300 JSON objects of ~20 checks),
applying the overrides and joining the roster: ~0.1-0.3 s, too slow to pay on every
click. `ClassStore` keeps the last read and its stamp (`Store.stamp`: SQLite's
data_version, which another process's commit changes, and this connection's own
changes), so a filter costs only the filter, while an override made here, or by
`grader override` or a batch in another terminal, shows on the next load.

One connection, shared by the server's threads under one lock: SQLite connections are
not for concurrent use, and the page's work per request is small. Without --allow-edit
the connection is read-only (`Store.open(read_only=True)`): the store is neither migrated
nor written, and a schema-3 store shows without similarity reviews or kept sources.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.batch.store import STORE_NAME, Store
from grader.errors import BadInputError
from grader.messages import text
from grader.overrides import Override
from grader.report.results import StoredResult
from grader.roster import join
from grader.rubric import Rubric
from grader.serve.table import ClassTable, build_rows
from grader.similarity_reviews import PairReview


@dataclass(frozen=True)
class ClassData:
    results: dict[str, StoredResult]          # by id, in the class's order (the roster's, then by id)
    table: ClassTable
    pairs: list[dict[str, Any]]               # the stored similarity pass's flagged pairs
    similarity_run: bool                      # False: no pass was stored
    reviewed: dict[tuple[str, str], PairReview]
    events: list[Override]                    # the override ledger, oldest first


class ClassStore:
    """OUT's store for the server's threads (see the module docstring)."""

    def __init__(self, out: Path, lang: str, rubric: Rubric, *, writable: bool) -> None:
        self.out = Path(out)
        self.lang = lang
        self.rubric = rubric
        if not (self.out / STORE_NAME).is_file():  # exit 2 for a folder without a store, before the server starts
            raise BadInputError(text("override.no_store", lang, out=str(out)))
        self._store = Store.open(self.out, lang, shared=True, read_only=not writable)
        self._lock = threading.RLock()
        self._cached: tuple[tuple[int, int], ClassData] | None = None

    def close(self) -> None:
        with self._lock:
            self._store.close()

    @contextmanager
    def locked(self) -> Iterator[Store]:
        """The store, for one request's reads and writes, with no other thread using it meanwhile."""
        with self._lock:
            yield self._store

    def data(self) -> ClassData:
        with self._lock:
            stamp = self._store.stamp()
            if self._cached is None or self._cached[0] != stamp:
                self._cached = (stamp, self._read(self._store))
            return self._cached[1]

    def _read(self, store: Store) -> ClassData:
        results = join(store.results_for_outputs(), store.roster(), self.rubric, self.lang)
        similarity = store.similarity()
        pairs = similarity[0] if similarity else []
        reviewed = store.reviewed_pairs()
        table = build_rows(results, pairs, set(reviewed), self.lang)
        return ClassData({str(r["submission_id"]): r for r in results}, table, pairs, similarity is not None,
                         reviewed, store.override_events())
