"""What the kernel's librosa memo (grader/inkernel/feature_memo.py) saves on the lab's own data loading.

Runs the reference notebook's own `AudioDataset` and `collate_fn` (its cell, executed as is) over the default
dataset in the passes a graded notebook makes under the epoch cap of 2: three batches to look at, two epochs and
one evaluation per model (RNN, then LSTM). Each variant in a fresh process, librosa warmed up first (numba's
compilation is not what is measured), the memo off then on, three rounds; prints the medians side by side.

Usage: .venv/bin/python bench/feature_memo.py
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = 3

CHILD = r'''
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
import librosa, librosa.feature, numpy as np, pandas as pd, torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset
from grader.default_data import default_dataset_dir
from grader.inkernel import feature_memo
from grader.notebook import read_notebook
from grader.paths import REFERENCE_NOTEBOOK

data = default_dataset_dir()
librosa.feature.mfcc(y=np.zeros(2048, dtype=np.float32), sr=8000, n_mfcc=13)  # numba warm-up, not measured
if sys.argv[2] == "on":
    feature_memo.install()
cell = next(c.source for c in read_notebook(REFERENCE_NOTEBOOK).cells if "class AudioDataset" in c.source)
ns = {"os": os, "librosa": librosa, "torch": torch, "Dataset": Dataset, "pad_sequence": pad_sequence}
exec(cell, ns)
train = DataLoader(ns["AudioDataset"](pd.read_csv(data / "train.csv"), str(data / "train")), batch_size=16,
                   shuffle=True, collate_fn=ns["collate_fn"])
test = DataLoader(ns["AudioDataset"](pd.read_csv(data / "test.csv"), str(data / "test")), batch_size=16,
                  collate_fn=ns["collate_fn"])
began = time.perf_counter()
for i, _ in enumerate(train):  # the notebook's look at three batches
    if i >= 2:
        break
for _model in ("rnn", "lstm"):
    for _epoch in range(2):
        for _ in train:
            pass
    for _ in test:
        pass
print(json.dumps({"seconds": time.perf_counter() - began, "clips": len(train.dataset) + len(test.dataset)}))
'''


def one(variant: str) -> dict[str, float]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), variant], env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    runs: dict[str, list[float]] = {"off": [], "on": []}
    clips = 0
    for _ in range(ROUNDS):
        for variant in runs:
            result = one(variant)
            runs[variant].append(result["seconds"])
            clips = int(result["clips"])
    off, on = statistics.median(runs["off"]), statistics.median(runs["on"])
    print(f"the lab's data loading under the epoch cap ({clips} clips; 3 batches, 2 x (2 epochs + test))")
    print(f"{'memo':<6}{'median s':>10}   runs")
    for name, values in runs.items():
        print(f"{name:<6}{statistics.median(values):>10.2f}   {', '.join(f'{v:.2f}' for v in values)}")
    print(f"saved: {off - on:.2f} s per graded notebook ({off / on:.1f}x less time in data loading)")


if __name__ == "__main__":
    main()
