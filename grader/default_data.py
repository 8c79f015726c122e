"""The dataset a run grades against: the TA's (`--data DIR|ZIP`) or the embedded default.

The default is the synthetic set, generated once into the cache and reused:
it is deterministic, so a cached copy is as good as a fresh one.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from grader.cachedir import cache_root

# Bump when the generator's output changes, so stale copies are not reused.
DEFAULT_DATA_VERSION = 1
DEFAULT_SEED = 0
_COMPLETE = ".complete"


def default_dataset_dir() -> Path:
    """The synthetic default dataset, generated on first use (a few seconds)."""
    from grader.data.synth import generate

    target = cache_root() / f"synthetic-v{DEFAULT_DATA_VERSION}-seed{DEFAULT_SEED}"
    if (target / _COMPLETE).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".synthetic-", dir=target.parent))
    try:
        generate(staging, seed=DEFAULT_SEED)
        (staging / _COMPLETE).write_text("ok\n", encoding="utf-8")
        try:
            os.rename(staging, target)  # atomic: a parallel grader sees all of it or none
        except OSError:
            if not (target / _COMPLETE).exists():  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


@contextlib.contextmanager
def dataset(path: Path | None, *, lang: str) -> Iterator[Path]:
    """Yield a folder in the lab's layout: the given folder or zip, or the default."""
    if path is None:
        yield default_dataset_dir()
        return
    from grader.data.layout import open_dataset

    with open_dataset(path, lang=lang) as folder:
        yield folder
