"""Is lstm.train reliable? The check's own code path, many seeds, three kinds of model.

On the default synthetic dataset (or --data), with the rubric's [training]
protocol and early stop on, exactly as grading runs it:

  lstm        the reference CustomLSTM                       should pass in every seed
  rnn         the reference CustomRNN, built as CustomLSTM(13, 32, 3)   should fail in every seed
  lstm-2bugs  tanh on the forget gate AND no input gate       should fail
  (optional)  lstm-tanh-forget, lstm-no-input: one bug each   informational

Each model runs in its own child process (grader.trusted_runner.ProcessRunner: the
same probe source and files a real kernel gets), one torch thread, seeds run
one after another. Prints pass counts, epochs, time per seed and best held-out
accuracy (min / median / max). A benchmark, not a test: it asserts nothing.

    OMP_NUM_THREADS=1 python bench/lstm_train_reliability.py [--seeds 50] \
        [--models lstm rnn lstm-2bugs] [--fresh-heldout]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grader.checks.training import TrainProtocol, load_training_data, train_lstm
from grader.rubric import load_rubric
from grader.trusted_runner import ProcessRunner, reference_source

_FORGET = "f_t = torch.sigmoid(x_t @ self.W_xf"
_CELL = "c_t = f_t * c_t + i_t * c_hat_t"


def _patched(source: str, *edits: tuple[str, str]) -> str:
    for old, new in edits:
        assert source.count(old) == 1, f"reference changed: {old!r} not found exactly once"
        source = source.replace(old, new)
    return source


def model_sources() -> dict[str, str]:
    """Source that defines `CustomLSTM` for each model under test."""
    ref = reference_source()
    tanh_forget = (_FORGET, "f_t = torch.tanh(x_t @ self.W_xf")
    no_input = (_CELL, "c_t = f_t * c_t + c_hat_t")
    return {
        "lstm": ref,
        # The RNN already has the (input, hidden, output) constructor; the probe builds "CustomLSTM".
        "rnn": ref + "\nCustomLSTM = CustomRNN\n",
        "lstm-2bugs": _patched(ref, tanh_forget, no_input),
        "lstm-tanh-forget": _patched(ref, tanh_forget),
        "lstm-no-input": _patched(ref, no_input),
    }


@dataclass
class SeedRun:
    model: str
    seed: int
    passed: bool
    outcome: str
    epochs: int
    best_accuracy: float
    seconds: float
    error: str


def _spread(values: list[float], fmt: str) -> str:
    if not values:
        return "-"
    return " / ".join(format(v, fmt) for v in (min(values), statistics.median(values), max(values)))


def summarise(model: str, runs: list[SeedRun]) -> str:
    passed = sum(r.passed for r in runs)
    errors = [r for r in runs if r.outcome not in ("passed", "completed", "budget")]
    line = (f"{model:17s} passed {passed:2d}/{len(runs):<2d}  "
            f"epochs {_spread([r.epochs for r in runs], '.0f'):>12s}  "
            f"s/seed {_spread([r.seconds for r in runs], '.2f'):>18s}  "
            f"best acc {_spread([100 * r.best_accuracy for r in runs], '.1f'):>18s} %")
    if errors:
        line += f"  errors {len(errors)} (first: {errors[0].outcome}: {errors[0].error})"
    return line


def with_fresh_heldout(data, seed: int):
    """`data` with a fresh synthetic held-out set, as grading on the default data draws one per run."""
    from grader.checks.heldout import fresh_synthetic
    from grader.checks.training import TrainingData

    fresh = fresh_synthetic(1_000_000 + seed)  # reproducible here; grading uses a secret seed
    return TrainingData(data.train_x, data.train_y, fresh.features, fresh.labels)


def run_model(model: str, source: str, data, training, seeds: list[int], device: str,
              fresh_heldout: bool = False) -> list[SeedRun]:
    runs = []
    with tempfile.TemporaryDirectory(prefix=f"bench-{model}-") as tmp, ProcessRunner(Path(tmp), source) as runner:
        # Start the child (import torch, define the classes) outside the timed runs:
        # a graded kernel has done that long before lstm.train.
        runner.run_code("pass", 300)
        for seed in seeds:
            protocol = TrainProtocol.from_rubric(training, device=device, seed=seed)
            run = train_lstm(runner, with_fresh_heldout(data, seed) if fresh_heldout else data, protocol)
            runs.append(SeedRun(model, seed, run.outcome == "passed", run.outcome, run.epochs,
                                run.best_accuracy, run.duration_s, run.error))
            print(f"  {model} seed {seed}: {run.outcome} epochs {run.epochs} "
                  f"best {100 * run.best_accuracy:.1f} % {run.duration_s:.2f} s", flush=True)
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="dataset folder (default: synthetic set, seed --data-seed)")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=50, help="training seeds 0..N-1")
    parser.add_argument("--models", nargs="+", default=["lstm", "rnn", "lstm-2bugs"], choices=sorted(model_sources()))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, help="also write every run as JSON here")
    parser.add_argument("--fresh-heldout", action="store_true",
                        help="a fresh synthetic held-out set per seed, as grading on the default data does")
    args = parser.parse_args(argv)

    from grader.data.features import FeatureCache
    from grader.data.synth import generate

    training = load_rubric().training
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        data_dir = args.data
        if data_dir is None:
            data_dir = Path(tmp) / "data"
            generate(data_dir, seed=args.data_seed)
        data = load_training_data(data_dir, FeatureCache())
    frames = [len(x) for x in data.train_x + data.heldout_x]
    print(f"data: {args.data or f'synthetic seed {args.data_seed}'}: {len(data.train_x)} train / "
          f"{len(data.heldout_x)} held-out clips, {min(frames)}-{max(frames)} frames; chance {100 * data.chance:.1f} %")
    print(f"protocol: threshold {training.threshold}, max_epochs {training.max_epochs}, lr {training.learning_rate}, "
          f"batch {training.batch_size}, budget {training.time_budget_s:.0f} s, device {args.device}, "
          f"torch threads 1 (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')})")
    sources = model_sources()
    results: dict[str, list[SeedRun]] = {}
    started = time.monotonic()
    for model in args.models:
        results[model] = run_model(model, sources[model], data, training, list(range(args.seeds)), args.device,
                                   args.fresh_heldout)
    print(f"\nsummary ({args.seeds} seeds each; min / median / max; {time.monotonic() - started:.0f} s in all)")
    for model, runs in results.items():
        print(summarise(model, runs))
    if args.json:
        args.json.write_text(json.dumps({m: [asdict(r) for r in rs] for m, rs in results.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
