"""How much does the MFCC disk cache save? Cold (compute every clip) vs warm (load every clip).

    OMP_NUM_THREADS=1 python bench/mfcc_cache.py [--data DIR] [--repeat 3]

On the synthetic default set unless --data is given. librosa's numba
functions are compiled once before timing, so "cold" is the steady cost of
computing MFCCs, not the one-off JIT warm-up (reported separately). Prints
figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grader.data.features import FeatureCache, compute_mfcc, load_split
from grader.data.layout import SPLITS
from grader.data.synth import generate


def _load_all(data_dir: Path, cache: FeatureCache) -> int:
    return sum(len(load_split(data_dir, split, cache).features) for split in SPLITS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="dataset folder (default: the synthetic set in a temp dir)")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds of each (the median is reported)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="grader-bench-") as tmp:
        data_dir = args.data or Path(tmp) / "data"
        if args.data is None:
            print(generate(data_dir, seed=0).describe())
        first_wav = next((data_dir / "train").glob("*.wav"))
        t0 = time.perf_counter()
        compute_mfcc(first_wav)
        print(f"first MFCC in this process (numba warm-up included): {time.perf_counter() - t0:.2f} s")

        cold, warm = [], []
        for round_ in range(args.repeat):
            cache = FeatureCache(Path(tmp) / f"cache-{round_}")  # empty: every clip is computed and stored
            t0 = time.perf_counter()
            n = _load_all(data_dir, cache)
            cold.append(time.perf_counter() - t0)
            assert cache.misses == n and cache.hits == 0
            cache = FeatureCache(cache.root)  # same folder, fresh counters: every clip is a hit
            t0 = time.perf_counter()
            _load_all(data_dir, cache)
            warm.append(time.perf_counter() - t0)
            assert cache.hits == n and cache.misses == 0

    cold_s, warm_s = statistics.median(cold), statistics.median(warm)
    print(f"clips: {n}")
    print(f"cold (compute + store): {cold_s:.3f} s  ({1000 * cold_s / n:.2f} ms/clip)")
    print(f"warm (hash + load):     {warm_s:.3f} s  ({1000 * warm_s / n:.2f} ms/clip)")
    print(f"speed-up: {cold_s / warm_s:.1f}x  (median of {args.repeat} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
