"""What a submission's style costs `grader check`: no style may cost more than 2x the median (issue 17).

Variants of the reference notebook, each one habit students have, graded by `grader check` in a new process,
interleaved over the runs (warm caches), median wall time per variant, side by side with the median of all:
  plain            the reference as it is (it already redraws its loss plot every epoch)
  helper_cells     ten extra cells of helpers and small computations
  print_model      print(model) and a parameter count after each model is built
  torch_save       torch.save(model.state_dict(), ...) after each training loop
  loader_workers   num_workers=6 in both DataLoaders (the lab's advice for the NPU)
  plot_every_batch a plot redrawn after every batch, not every epoch

Usage: OMP_NUM_THREADS=1 .venv/bin/python bench/style_cost.py [--runs 3]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import nbformat
from grader_run import timed_grader_check

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "reference" / "lab.ipynb"
HELPER = "def helper_{i}(values):\n    return sorted(values)[: len(values) // 2]\n\nhelper_{i}(list(range(1000)))\n"
PLOT_BATCH = ("        plt.figure(figsize=(4, 3))\n        plt.plot([loss.item()])\n        plt.close()\n")


def _edit(nb: nbformat.NotebookNode, needle: str, change: Callable[[str], str]) -> None:
    cells = [c for c in nb.cells if c.cell_type == "code" and needle in c.source]
    assert cells, needle
    for cell in cells:
        cell.source = change(cell.source)


def helper_cells(nb: nbformat.NotebookNode) -> None:
    for i in range(10):
        nb.cells.insert(8 + i, nbformat.v4.new_code_cell(HELPER.format(i=i)))


def print_model(nb: nbformat.NotebookNode) -> None:
    _edit(nb, "model = CustomRNN(", lambda s: s + "\nprint(model)\nprint(sum(p.numel() for p in model.parameters()))")
    _edit(nb, "lstm_model = CustomLSTM(", lambda s: s + "\nprint(lstm_model)")


def torch_save(nb: nbformat.NotebookNode) -> None:
    _edit(nb, "for epoch in range(num_epochs):",
          lambda s: s + "\ntorch.save({k: v.cpu() for k, v in "
                        "(lstm_model if 'lstm_model' in dir() else model).state_dict().items()}, 'checkpoint.pt')")


def loader_workers(nb: nbformat.NotebookNode) -> None:
    _edit(nb, "DataLoader(", lambda s: s.replace("collate_fn=collate_fn)", "collate_fn=collate_fn, num_workers=6)"))


def plot_every_batch(nb: nbformat.NotebookNode) -> None:
    _edit(nb, "total_loss += loss.item()", lambda s: s.replace(
        "        total_loss += loss.item()\n", "        total_loss += loss.item()\n" + PLOT_BATCH))


VARIANTS: dict[str, Callable[[nbformat.NotebookNode], None]] = {
    "plain": lambda nb: None, "helper_cells": helper_cells, "print_model": print_model, "torch_save": torch_save,
    "loader_workers": loader_workers, "plot_every_batch": plot_every_batch,
}


def write_variants(folder: Path) -> dict[str, Path]:
    paths = {}
    for name, change in VARIANTS.items():
        nb = nbformat.read(REFERENCE, as_version=4)
        change(nb)
        paths[name] = folder / f"lab_{name}.ipynb"
        nbformat.write(nb, paths[name])
    return paths


def timed_check(notebook: Path) -> float:
    return timed_grader_check(notebook, allowed=(0,))[0]  # every variant is correct: all its checks pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_variants(Path(tmp))
        timed_check(paths["plain"])  # warm caches
        times: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(args.runs):
            for name, path in paths.items():
                times[name].append(timed_check(path))
    medians = {name: statistics.median(values) for name, values in times.items()}
    overall = statistics.median(medians.values())
    print(f"{'variant':<18}{'median s':>10}{'x median':>10}   runs")
    for name, value in medians.items():
        runs = ", ".join(f"{v:.1f}" for v in times[name])
        print(f"{name:<18}{value:>10.1f}{value / overall:>10.2f}   {runs}")
    worst = max(medians, key=lambda n: medians[n])
    print(f"worst: {worst}, {medians[worst] / overall:.2f}x the median of the variants (target <= 2x)")


if __name__ == "__main__":
    main()
