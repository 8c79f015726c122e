"""What `num_workers=6` costs a graded notebook, beside the same notebook with 0 (issue 13, item 8).

The lab tells students to set num_workers=6 on the NPU. The grader runs every DataLoader in the kernel's own
process (grader/inkernel/startup.py), so both notebooks should take about as long: target within 1.5x.
Prints, for `grader check --full` of the reference with num_workers=0 and with num_workers=6 in both
DataLoaders, the median wall time over interleaved runs, side by side, and their ratio. (Before the shim, on a
loaded machine, the same correct notebook took 283 s with num_workers=6 against 33 s with 0: issue 13.)

Usage: OMP_NUM_THREADS=1 .venv/bin/python bench/loader_workers.py [--runs 3]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import nbformat
from grader_run import timed_grader_check

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "reference" / "lab.ipynb"


def variant(workers: int, folder: Path) -> Path:
    nb = nbformat.read(REFERENCE, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "DataLoader(" in cell.source:
            cell.source = cell.source.replace("collate_fn=collate_fn)",
                                              f"collate_fn=collate_fn, num_workers={workers})")
    path = folder / f"lab_num_workers_{workers}.ipynb"
    nbformat.write(nb, path)
    assert f"num_workers={workers}" in path.read_text(encoding="utf-8")
    return path


def timed_check(notebook: Path) -> float:
    return timed_grader_check(notebook, "--full")[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        zero, six = variant(0, Path(tmp)), variant(6, Path(tmp))
        timed_check(zero)  # warm caches
        times: dict[str, list[float]] = {"num_workers=0": [], "num_workers=6": []}
        for _ in range(args.runs):
            times["num_workers=0"].append(timed_check(zero))
            times["num_workers=6"].append(timed_check(six))
    medians = {k: statistics.median(v) for k, v in times.items()}
    print(f"`grader check --full` on the reference, {args.runs} interleaved runs each (median, min-max):")
    for label, values in times.items():
        print(f"  {label:14s} {medians[label]:6.2f} s  ({min(values):.2f}-{max(values):.2f})")
    print(f"  ratio 6/0      {medians['num_workers=6'] / medians['num_workers=0']:6.2f}x   target <= 1.5x")


if __name__ == "__main__":
    main()
