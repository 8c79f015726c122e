"""Where the grader keeps what it can rebuild: MFCCs, the default dataset, numba's cache."""
from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """`$GRADER_CACHE_DIR`, else `$XDG_CACHE_HOME/grader`, else `~/.cache/grader`."""
    env = os.environ.get("GRADER_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "grader"
