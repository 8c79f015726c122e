"""What the grader-side hardening (issue 12) costs per `grader check` of the reference.

Prints two figures, side by side:
  1. in one process, the time spent inside the hardening code during a warm `grader check --full` of the
     reference: the kernel-folder channel (grader/untrusted_fs.py: descriptor opens, capped reads, O_EXCL writes,
     removal), the watchdog's walks of every kernel folder (a thread, every 0.5 s), the bounded parse of student
     code (notebook.parse_source), the terminal sanitiser (safe_text) and the chart code (report/chart_scale).
     Measured by wrapping each entry point, outermost calls only; target: under 0.3 s;
  2. the wall time of `grader check --full` on the reference, this checkout against the commit before the
     hardening (a git worktree of BASELINE run with the same virtual environment), interleaved runs, medians.
     Shared, noisy machines make this figure's spread larger than the difference: figure 1 is the precise one.

Usage: .venv/bin/python bench/hardening_cost.py [--runs 5] [--baseline COMMIT]
"""
from __future__ import annotations

import argparse
import functools
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from grader_run import timed_grader_check  # noqa: E402

BASELINE = "0ca10a3"  # main before issue 12's hardening landed


class Meter:
    """Seconds spent in wrapped functions, outermost calls only (per thread), across threads."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._depth = threading.local()
        self._lock = threading.Lock()

    def wrap(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            depth = getattr(self._depth, "n", 0)
            self._depth.n = depth + 1
            began = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._depth.n = depth
                if depth == 0:
                    with self._lock:
                        self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - began
                        self.calls[label] = self.calls.get(label, 0) + 1
        return timed


def _instrument(meter: Meter) -> None:
    import grader.checks.training as training
    import grader.harvest as harvest
    import grader.hosting.budgets as budgets
    import grader.hosting.session as session
    import grader.notebook as notebook
    import grader.pipeline as pipeline
    import grader.report.chart_scale as chart_scale
    import grader.safe_text as safe_text
    import grader.untrusted_fs as ufs

    for name in ("read_bytes", "read_npy", "write_bytes", "save_npy", "make_dir", "make_dirs", "child", "exists",
                 "copy_tree_from", "open"):
        setattr(ufs.UntrustedDir, name, meter.wrap("untrusted_fs (reads, writes, folders)",
                                                   getattr(ufs.UntrustedDir, name)))
    for module in (harvest, training, pipeline):
        for name in ("remove_child", "remove_tree"):
            if hasattr(module, name):
                setattr(module, name, meter.wrap("untrusted_fs (removal)", getattr(module, name)))
    session.untrusted_fs.remove_tree = meter.wrap("untrusted_fs (removal)", ufs.remove_tree)
    session.untrusted_fs.remove_child = meter.wrap("untrusted_fs (removal)", ufs.remove_child)
    budgets.KernelBudgets.usage = meter.wrap("budget walks of kernel folders (thread + cell ends)",
                                             budgets.KernelBudgets.usage)
    budgets.unlinked_open_bytes = meter.wrap("budget: deleted open files, shared memory (thread + cell ends)",
                                             budgets.unlinked_open_bytes)
    budgets.shared_memory_bytes = meter.wrap("budget: deleted open files, shared memory (thread + cell ends)",
                                             budgets.shared_memory_bytes)
    notebook.parse_source = meter.wrap("parse_source", notebook.parse_source)
    for name in dir(safe_text):
        if name.startswith("safe") and callable(getattr(safe_text, name)):
            setattr(safe_text, name, meter.wrap("safe_text", getattr(safe_text, name)))
    for name in dir(chart_scale):
        fn = getattr(chart_scale, name)
        if callable(fn) and not name.startswith("_") and getattr(fn, "__module__", "") == chart_scale.__name__:
            setattr(chart_scale, name, meter.wrap("chart_scale", fn))


def in_process_cost() -> tuple[Meter, float]:
    from grader.cli import main

    meter = Meter()
    _instrument(meter)
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["check", str(ROOT / "reference" / "lab.ipynb"), "--full", "--lang", "en",
                "--html", str(Path(tmp) / "r.html")]
        main(argv)  # warm-up: caches, numba, imports
        meter.seconds.clear()
        meter.calls.clear()
        began = time.perf_counter()
        with open(os.devnull, "w") as sink:
            stdout, sys.stdout = sys.stdout, sink
            try:
                main(argv)
            finally:
                sys.stdout = stdout
        return meter, time.perf_counter() - began


def _timed_check(python: str, cwd: Path, pythonpath: Path) -> float:
    return timed_grader_check(cwd / "reference" / "lab.ipynb", "--full", env={"PYTHONPATH": str(pythonpath)},
                              cwd=cwd, python=python)[0]


def wall_times(runs: int, baseline: str) -> tuple[list[float], list[float]]:
    worktree = Path(tempfile.mkdtemp(prefix="grader-baseline-"))
    subprocess.run(["git", "worktree", "add", "--detach", str(worktree), baseline], cwd=ROOT, check=True,
                   capture_output=True)
    try:
        now, before = [], []
        _timed_check(sys.executable, ROOT, ROOT)
        _timed_check(sys.executable, worktree, worktree)
        for _ in range(runs):
            now.append(_timed_check(sys.executable, ROOT, ROOT))
            before.append(_timed_check(sys.executable, worktree, worktree))
        return now, before
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--skip-wall", action="store_true", help="only the in-process figure")
    args = parser.parse_args()

    meter, total = in_process_cost()
    print(f"1. hardening code inside one warm `grader check --full` of the reference ({total:.2f} s in all):")
    for label in sorted(meter.seconds, key=meter.seconds.get, reverse=True):
        print(f"   {label:62s} {meter.seconds[label] * 1000:8.1f} ms  ({meter.calls[label]} calls)")
    main_thread = sum(v for k, v in meter.seconds.items() if "thread" not in k)
    print(f"   {'channel, parsing, text, charts (main thread)':62s} {main_thread * 1000:8.1f} ms")
    print(f"   {'in all, budget checks included':62s} {sum(meter.seconds.values()) * 1000:8.1f} ms   target < 300 ms")
    if args.skip_wall:
        return
    now, before = wall_times(args.runs, args.baseline)
    med_now, med_before = statistics.median(now), statistics.median(before)
    print(f"2. `grader check --full` wall time, {args.runs} interleaved runs each (median, min-max):")
    print(f"   this checkout      {med_now:6.2f} s  ({min(now):.2f}-{max(now):.2f})")
    print(f"   {args.baseline} (before) {med_before:6.2f} s  ({min(before):.2f}-{max(before):.2f})")
    print(f"   difference         {med_now - med_before:+6.2f} s  (ratio {med_now / med_before:.3f})")


if __name__ == "__main__":
    main()
