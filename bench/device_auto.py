"""`--device auto` against `--device cpu` (and any accelerator asked for), side by side, in one run.

`grader check --full` on the reference, in a new process, warm caches, alternating the devices run by run so
the machine's load falls on each alike; prints each device's median wall time, the grader's own
`duration_s`, what `auto` chose and the reason it gave, and the score (the verdicts must not depend on the
device). On a machine without an accelerator `auto` is the CPU, and the bench says so: that is the figure
this machine can give. On one with CUDA or an NPU, add it: `--devices auto cpu cuda`.

Usage: OMP_NUM_THREADS=1 .venv/bin/python bench/device_auto.py [--runs 3] [--devices auto cpu]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader_run import timed_grader_check  # noqa: E402

from grader.paths import REFERENCE_NOTEBOOK  # noqa: E402


def timed_check(device: str) -> tuple[float, dict]:
    return timed_grader_check(REFERENCE_NOTEBOOK, "--full", "--device", device, "--lang", "en")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--devices", nargs="+", default=["auto", "cpu"])
    args = parser.parse_args()
    timed_check("cpu")  # warm the caches (dataset, numba, MFCCs, feature pack) before anything is timed
    walls: dict[str, list[float]] = {d: [] for d in args.devices}
    last: dict[str, dict] = {}
    for _ in range(args.runs):
        for device in args.devices:
            wall, result = timed_check(device)
            walls[device].append(wall)
            last[device] = result
    print(f"{'--device':<10}{'chose':<10}{'median wall, s':>16}{'range':>14}{'duration_s':>12}{'score':>10}")
    for device in args.devices:
        runs = sorted(walls[device])
        result = last[device]
        spread = f"{runs[0]:.1f}-{runs[-1]:.1f}"
        score = f"{result['score']:g}/{result['max_score']:g}"
        print(f"{device:<10}{result['device']:<10}{statistics.median(runs):>16.1f}{spread:>14}"
              f"{result['duration_s']:>12.1f}{score:>10}")
    if "auto" in last:
        print(f"auto chose {last['auto']['device']}: {last['auto'].get('device_note', '')}")
    if "cpu" in walls and "auto" in walls:
        ratio = statistics.median(walls["auto"]) / statistics.median(walls["cpu"])
        print(f"auto / cpu: {ratio:.2f}x (target: never above 1, beyond the machine's noise)")


if __name__ == "__main__":
    main()
