"""The held-out clips of `lstm.train`, chosen after the student's code has run.

The notebook needs the dataset's test split (it reports its own test
accuracy), so that split sits in the kernel's `data/` folder, labels included.
A hostile class could memorise it during the notebook run and recognise the
clips later. So the grader's held-out clips are ones the kernel never saw:

- default (synthetic) data: a fresh set drawn by the same generator with a
  secret seed, after the notebook ran, kept in memory in the grader's process;
- a TA's dataset with a `holdout.csv` + `holdout/` split: that split, which
  `prepare_workdir` never copies into the kernel's folder;
- a TA's dataset without one: the test split, and the result says so
  (`source: "test_split"`, `hidden_from_kernel: false`).
"""
from __future__ import annotations

import io
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from grader.data.features import FeatureCache
from grader.data.layout import CLASSES, LABELS, csv_path, split_dir

HOLDOUT_SPLIT = "holdout"
# As many clips as the default set's test split: the threshold was proven on sets of this size.
FRESH_PER_CLASS = 20


@dataclass(frozen=True)
class HeldOut:
    features: list[np.ndarray]
    labels: np.ndarray
    source: str                 # "fresh_synthetic" | "holdout_split" | "test_split"
    hidden_from_kernel: bool

    def describe(self) -> dict[str, object]:
        return {"source": self.source, "hidden_from_kernel": self.hidden_from_kernel, "clips": len(self.labels)}


def has_holdout(data_dir: Path) -> bool:
    # Either half present means the TA meant a holdout split: a missing other half is a DatasetError
    # (load_split), never a silent fall back to the test split the notebook can see.
    return csv_path(Path(data_dir), HOLDOUT_SPLIT).is_file() or split_dir(Path(data_dir), HOLDOUT_SPLIT).is_dir()


def choose_heldout(data_dir: Path, *, synthetic: bool, cache: FeatureCache | None = None,
                   seed: int | None = None) -> HeldOut:
    """The held-out set for one grading run; call it after the notebook ran. `seed` draws the synthetic one
    (grader/seeds.py: secret, per notebook); None draws a fresh one."""
    from grader.data.features import load_split

    if synthetic:
        return fresh_synthetic(secrets.randbits(63) if seed is None else seed)
    cache = cache or FeatureCache()
    if has_holdout(data_dir):
        split = load_split(Path(data_dir), HOLDOUT_SPLIT, cache)
        return HeldOut(split.features, split.labels, "holdout_split", True)
    split = load_split(Path(data_dir), "test", cache)
    return HeldOut(split.features, split.labels, "test_split", False)


def fresh_synthetic(seed: int, per_class: int = FRESH_PER_CLASS) -> HeldOut:
    """A new set of synthetic clips from `seed`, as WAV bytes in memory, featurised exactly like files.

    The clips go through a PCM_16 WAV round trip, like the dataset's files, so
    the features match what the lab computes from real files bit for bit.
    """
    from grader.data.features import mfcc_of_bytes
    from grader.data.synth import SynthParams, synth_clip

    params = SynthParams()
    children = np.random.SeedSequence(seed).spawn(per_class * len(CLASSES))
    features, labels = [], []
    for index, child in enumerate(children):
        cls = CLASSES[index % len(CLASSES)]
        sr, audio = synth_clip(np.random.default_rng(child), cls, params)
        buffer = io.BytesIO()
        sf.write(buffer, audio, sr, subtype="PCM_16", format="WAV")
        features.append(mfcc_of_bytes(buffer.getvalue()))
        labels.append(LABELS[cls])
    return HeldOut(features, np.array(labels, dtype=np.int64), "fresh_synthetic", True)
