"""The class sources of the submissions a similarity pass flagged, kept in the store for `grader serve`.

The store keeps results, not notebooks, and a zip's notebooks live only in the batch's
temporary folder; a TA judging a pair side by side later needs the two classes as they
were compared. Only flagged submissions are kept (a handful, not the class), each class
as `grader.similarity.class_sources` found it (its cell and first line, so the pass's line
ranges land on it), capped in size like everything else read from a notebook.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from grader.notebook import read_notebook
from grader.similarity import MAX_CLASS_CHARS, class_sources

log = logging.getLogger(__name__)


def flagged_ids(pairs: Iterable[dict[str, Any]]) -> list[str]:
    """Every id named by a flagged pair, once."""
    ids = [str(p.get(side)) for p in pairs if isinstance(p, dict) for side in ("a", "b") if p.get(side) is not None]
    return list(dict.fromkeys(ids))


def sources_of(path: Path) -> tuple[str, list[dict[str, Any]]]:
    """(the notebook's SHA-256, its classes as dicts: name, text, cell, line)."""
    sha = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    found = class_sources(read_notebook(Path(path)))
    return sha, [{"name": c.name, "text": c.text[:MAX_CLASS_CHARS], "cell": c.cell, "line": c.line}
                 for c in found.values()]


def flagged_class_sources(pairs: Iterable[dict[str, Any]],
                          paths: Mapping[str, Path]) -> dict[str, tuple[str, list[dict[str, Any]]]]:
    """The classes of each flagged submission; one that cannot be read is left out (the page says so)."""
    kept: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    for sid in flagged_ids(pairs):
        path = paths.get(sid)
        if path is None:
            continue
        try:
            kept[sid] = sources_of(path)
        except Exception:  # one unreadable notebook must not cost the class its stored pass
            log.debug("the classes of %s could not be kept for grader serve", sid, exc_info=True)
    return kept
