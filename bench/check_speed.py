"""How long `grader check` takes on the reference notebook, beside running it as is with nbclient.

Prints three figures on this machine:
  1. `grader check` in a new process with empty caches (dataset generation + MFCCs included);
  2. `grader check` in a new process with warm caches (the usual case; target <= 6 s), --warm-runs times,
     their median (and range) reported: the machine is shared and one run is noise;
  3. the notebook run as is by nbclient, 50 epochs, what other notebook graders do. To let it
     run at all on a machine without an NPU, the baseline removes `import torch_npu` and the
     shell escapes and uses device 'cpu'; everything else is the student's notebook unchanged.

Usage: .venv/bin/python bench/check_speed.py [--skip-baseline]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader_run import timed_grader_check  # noqa: E402

from grader.notebook import read_notebook  # noqa: E402
from grader.paths import REFERENCE_NOTEBOOK  # noqa: E402


def timed_check(cache: Path) -> float:
    return timed_grader_check(REFERENCE_NOTEBOOK, env={"GRADER_CACHE_DIR": str(cache)})[0]


def as_is_baseline(data_dir: Path) -> float:
    from nbclient import NotebookClient

    nb = read_notebook(REFERENCE_NOTEBOOK)
    for cell in nb.cells:
        if cell.cell_type == "code":
            lines = [line for line in cell.source.splitlines()
                     if not line.lstrip().startswith("!") and line.strip() != "import torch_npu"]
            cell.source = "\n".join(lines).replace("torch.device('npu')", "torch.device('cpu')")
    with tempfile.TemporaryDirectory() as work:
        shutil.copytree(data_dir, Path(work) / "data")
        client = NotebookClient(nb, timeout=3600, kernel_name="python3", resources={"metadata": {"path": work}})
        began = time.monotonic()
        client.execute()
        return time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--warm-runs", type=int, default=3)
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        cold = timed_check(cache)
        warm_runs = sorted(timed_check(cache) for _ in range(max(1, args.warm_runs)))
        warm = statistics.median(warm_runs)
        data_dir = next(cache.glob("synthetic-*"))
        baseline = None if args.skip_baseline else as_is_baseline(data_dir)
    print(f"{'run':<58}{'seconds':>10}")
    print(f"{'grader check reference, new process, empty caches':<58}{cold:>10.1f}")
    spread = f"  ({warm_runs[0]:.1f}-{warm_runs[-1]:.1f}, {len(warm_runs)} runs)" if len(warm_runs) > 1 else ""
    print(f"{'grader check reference, new process, warm caches, median':<58}{warm:>10.1f}{spread}")
    if baseline is not None:
        print(f"{'nbclient, notebook as is (50 epochs x 2 models)':<58}{baseline:>10.1f}")
        print(f"ratio as-is / grader check (warm): {baseline / warm:.1f}x")


if __name__ == "__main__":
    main()
