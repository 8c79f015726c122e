"""Does the synthetic dataset separate a correct LSTM from a plain RNN under the lab's recipe?

The lab's own protocol, unchanged: input 13, hidden 32, output 3, Adam lr
0.005, CrossEntropyLoss, batch 16, 50 epochs, train loader shuffled and test
not, `pad_sequence(batch_first=True)` (zeros at the END), permute to
(seq, batch, feature), logits from the last time step. Target: reference
LSTM >= 90 % test accuracy and reference RNN <= 60 %, for every seed.

    OMP_NUM_THREADS=1 python bench/synthetic_separation.py [--markdown out.md]

Runs one process per (seed, model), `--jobs` at a time, each on one torch
thread. Prints figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grader.data.features import FeatureCache, load_split
from grader.data.synth import generate

INPUT, HIDDEN, OUTPUT = 13, 32, 3
LR, BATCH = 0.005, 16


@dataclass(frozen=True)
class Run:
    seed: int
    model: str
    accuracy: float
    train_s: float
    final_loss: float


def _model_classes(classes_file: str | None) -> tuple[type, type]:
    """(CustomRNN, CustomLSTM): the reference notebook's, or a file's (for experiments)."""
    if classes_file is None:
        from grader.oracle.live import load_reference_classes

        return load_reference_classes()
    spec = importlib.util.spec_from_file_location("bench_models", classes_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CustomRNN, module.CustomLSTM


def _train_one(data_dir: str, cache_root: str, seed: int, model_name: str, epochs: int,
               classes_file: str | None) -> Run:
    import torch
    import torch.nn as nn
    from torch.nn.utils.rnn import pad_sequence
    from torch.utils.data import DataLoader

    torch.set_num_threads(1)
    cache = FeatureCache(Path(cache_root))
    train = load_split(Path(data_dir), "train", cache)
    test = load_split(Path(data_dir), "test", cache)

    def items(split):  # (tensor, label) pairs, as the lab's AudioDataset yields them
        return [(torch.tensor(f, dtype=torch.float32), int(y)) for f, y in zip(split.features, split.labels)]

    def collate(batch):
        labels = torch.tensor([b[1] for b in batch], dtype=torch.long)
        return pad_sequence([b[0] for b in batch], batch_first=True), labels

    torch.manual_seed(seed)
    rnn_cls, lstm_cls = _model_classes(classes_file)
    model = (lstm_cls if model_name == "LSTM" else rnn_cls)(INPUT, HIDDEN, OUTPUT)
    train_loader = DataLoader(items(train), batch_size=BATCH, shuffle=True, collate_fn=collate)
    test_loader = DataLoader(items(test), batch_size=BATCH, shuffle=False, collate_fn=collate)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)

    start = time.perf_counter()
    total_loss = 0.0
    for _epoch in range(epochs):
        model.train()
        total_loss = 0.0
        for features, labels in train_loader:
            logits = model(features.permute(1, 0, 2))
            loss = criterion(logits, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total_loss += loss.item()
    train_s = time.perf_counter() - start

    model.eval()
    correct = total = 0
    with torch.no_grad():
        for features, labels in test_loader:
            predicted = model(features.permute(1, 0, 2)).argmax(dim=1)
            correct += int((predicted == labels).sum())
            total += len(labels)
    return Run(seed, model_name, 100.0 * correct / total, train_s, total_loss)


def markdown_table(runs: list[Run]) -> str:
    lines = ["| seed | model | test accuracy | train time | final loss |", "|---:|---|---:|---:|---:|"]
    for r in runs:
        lines.append(f"| {r.seed} | {r.model} | {r.accuracy:.1f} % | {r.train_s:.0f} s | {r.final_loss:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="dataset folder (default: the synthetic set, written to a temp dir)")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic set when --data is not given")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (init and shuffling)")
    parser.add_argument("--models", nargs="+", default=["LSTM", "RNN"], choices=["LSTM", "RNN"])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=2, help="parallel training processes (one thread each)")
    parser.add_argument("--cache", type=Path, help="MFCC cache folder (default: a temp dir)")
    parser.add_argument("--classes",
                        help="python file defining CustomRNN and CustomLSTM (default: the reference notebook's)")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="grader-bench-") as tmp:
        data_dir = args.data
        if data_dir is None:
            data_dir = Path(tmp) / "data"
            print(generate(data_dir, seed=args.data_seed).describe(), flush=True)
        cache_root = args.cache or Path(tmp) / "cache"
        cache = FeatureCache(cache_root)
        t0 = time.perf_counter()
        lengths = [len(f) for s in ("train", "test") for f in load_split(data_dir, s, cache).features]
        print(f"MFCCs: {len(lengths)} clips, {min(lengths)}-{max(lengths)} frames, "
              f"{time.perf_counter() - t0:.1f} s", flush=True)

        jobs = [(seed, m) for seed in args.seeds for m in args.models]
        wall = time.perf_counter()
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = [
                pool.submit(_train_one, str(data_dir), str(cache_root), seed, m, args.epochs, args.classes)
                for seed, m in jobs
            ]
            runs = []
            for fut in futures:
                run = fut.result()
                runs.append(run)
                print(f"seed {run.seed} {run.model}: {run.accuracy:.1f} % in {run.train_s:.0f} s "
                      f"(loss {run.final_loss:.2f})", flush=True)
    wall_s = time.perf_counter() - wall

    table = markdown_table(runs)
    print(table)
    print(f"wall time {wall_s:.0f} s with {args.jobs} parallel jobs")
    if args.markdown:
        args.markdown.write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
