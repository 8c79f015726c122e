"""One `grader check` in a new process, timed: the measurement the benchmarks share.

The benchmarks run as scripts (`python bench/NAME.py`), so this folder is on their sys.path: `from grader_run
import timed_grader_check`.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def timed_grader_check(notebook: Path, *options: str, env: dict[str, str] | None = None, cwd: Path = ROOT,
                       python: str = sys.executable, allowed: tuple[int, ...] = (0, 1)) -> tuple[float, dict[str, Any]]:
    """Wall seconds of `grader check NOTEBOOK OPTIONS --format json` (one torch thread), and its JSON result.

    `env` adds to the environment; `allowed` are the exit codes that count as a run (0 all passed, 1 a check
    failed); any other stops the benchmark with the grader's own words.
    """
    environment = dict(os.environ, OMP_NUM_THREADS="1", **(env or {}))
    began = time.monotonic()
    done = subprocess.run([python, "-m", "grader", "check", str(notebook), *options, "--format", "json"],
                          cwd=cwd, env=environment, capture_output=True, text=True)
    elapsed = time.monotonic() - began
    if done.returncode not in allowed:
        raise SystemExit(f"{Path(notebook).name}: grader check {' '.join(options)} exited {done.returncode}:\n"
                         f"{done.stdout[-1500:]}{done.stderr[-1500:]}")
    return elapsed, json.loads(done.stdout)
