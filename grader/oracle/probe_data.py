"""The data a student's class is probed with: canonical weights and inputs, float64.

Drawn from a seed, so the live oracle can use fresh secret data per run and
`grader golden` can make one fixed case. Hidden x hidden weights are symmetric,
so a student who stores W_hh transposed computes the same function: the
comparison holds whatever the weight orientation.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass

import numpy as np

from grader.lab_api import ModelSpec, Sizes

SEQ_LEN = 6  # > 1 so first-step / x[0] mistakes differ from the reference
BATCH = 4  # differs from every model size, so a transposed output cannot pass
WEIGHT_RANGE = 0.4  # gates stay well inside sigmoid/tanh's sensitive range
H0_RANGE = 0.8


@dataclass(frozen=True)
class ProbeData:
    """What the student's class is run on: canonical weights and inputs (float64)."""

    seed: int
    weights: dict[str, np.ndarray]
    x: np.ndarray
    h0: np.ndarray | None
    r: np.ndarray

    def calls(self) -> dict[str, list[str]]:
        """Forward calls: name -> argument names (files the probe loads)."""
        if self.h0 is None:
            return {"plain": ["x"]}
        return {"plain": ["x"], "h0": ["x", "h0"]}


def new_seed() -> int:
    return secrets.randbits(63)


def draw_data(spec: ModelSpec, sizes: Sizes, seed: int) -> ProbeData:
    rng = np.random.default_rng(seed)
    weights: dict[str, np.ndarray] = {}
    for p in spec.params:
        w = rng.uniform(-WEIGHT_RANGE, WEIGHT_RANGE, size=p.canonical_shape(sizes))
        if p.is_square:
            w = (w + w.T) / np.sqrt(2.0)  # symmetric, same spread as the others
        weights[p.path] = w
    x = rng.standard_normal((SEQ_LEN, BATCH, sizes.input))
    h0 = rng.uniform(-H0_RANGE, H0_RANGE, (BATCH, sizes.hidden)) if spec.takes_hidden_state else None
    r = rng.standard_normal((BATCH, sizes.output))
    return ProbeData(seed=seed, weights=weights, x=x, h0=h0, r=r)
