"""What the self-check costs: in the student's notebook, and in a graded notebook that still has its check cells.

Issue 16's targets: the model checks of both classes in under 2 s on a CPU (in the student's own process),
and a notebook's optional check cells adding under 1 s to grading (the grading kernel's stand-in returns at
once). Prints, side by side:
- `selfcheck.check` of the reference's CustomRNN and CustomLSTM in this process, each run --runs times
  (the first run loads the golden vectors), median and max;
- the time the graded reference spent in its check cells (from `grader check --full`'s own cell records),
  against the whole notebook's time.

Usage: OMP_NUM_THREADS=1 .venv/bin/python bench/selfcheck_cost.py [--runs 5]
"""
from __future__ import annotations

import argparse
import statistics
import time

from grader import selfcheck
from grader.oracle.live import load_classes
from grader.paths import REFERENCE_NOTEBOOK
from grader.pipeline import CheckOptions, check_notebook


def in_process(runs: int) -> None:
    classes = load_classes(REFERENCE_NOTEBOOK)
    for name in ("CustomRNN", "CustomLSTM"):
        times = []
        for _ in range(runs):
            began = time.perf_counter()
            result = selfcheck.check(classes[name], lang="en")
            times.append(time.perf_counter() - began)
            assert result.passed, str(result)
        print(f"selfcheck.check({name}): median {statistics.median(times):.2f} s, max {max(times):.2f} s "
              f"over {runs} runs (target: both classes under 2 s)")


def in_grading() -> None:
    report = check_notebook(REFERENCE_NOTEBOOK, CheckOptions(device="cpu"), lang="en")
    checks = [c for c in report.cells if "selfcheck.check(" in c.source]
    spent = sum(c.duration_s for c in checks)
    total = sum(c.duration_s for c in report.cells)
    print(f"graded reference: {report.score:g}/{report.max_score:g}; {len(checks)} check cells took {spent:.3f} s "
          f"of the notebook's {total:.1f} s (target: under 1 s); statuses {[c.status for c in checks]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    in_process(args.runs)
    in_grading()


if __name__ == "__main__":
    main()
