"""Where the grader keeps what it can rebuild: MFCCs, the default dataset, numba's cache."""
from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """`$GRADER_CACHE_DIR`, else `~/.cache/grader`."""
    env = os.environ.get("GRADER_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "grader"
