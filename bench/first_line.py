"""How soon `grader check` says something on a terminal, against how long the whole check takes.

Issue 17's target: the first line in under 1 s, then a progress line while the notebook runs. Runs
`grader check reference/lab.ipynb` --runs times with its stderr on a pseudo-terminal (as a student's shell
gives it) and prints, per run, the seconds to the first byte on the terminal and to the end.

Usage: OMP_NUM_THREADS=1 .venv/bin/python bench/first_line.py [--runs 3]
"""
from __future__ import annotations

import argparse
import os
import pty
import select
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run() -> tuple[float, float]:
    primary, secondary = pty.openpty()
    began = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "grader", "check", str(ROOT / "reference" / "lab.ipynb"),
                             "--lang", "en"], stdout=subprocess.DEVNULL, stderr=secondary, cwd=ROOT)
    os.close(secondary)
    first = None
    while proc.poll() is None or select.select([primary], [], [], 0)[0]:
        ready, _, _ = select.select([primary], [], [], 0.05)
        if ready:
            try:
                chunk = os.read(primary, 4096)
            except OSError:
                break
            if chunk and first is None:
                first = time.monotonic() - began
            if not chunk:
                break
    proc.wait()
    os.close(primary)
    return (first if first is not None else float("nan")), time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = [one_run() for _ in range(parser.parse_args().runs)]
    for i, (first, total) in enumerate(runs, 1):
        print(f"run {i}: first line after {first:.2f} s, check done after {total:.1f} s")
    print(f"median: first line {statistics.median(r[0] for r in runs):.2f} s (target < 1 s), "
          f"whole check {statistics.median(r[1] for r in runs):.1f} s")


if __name__ == "__main__":
    main()
