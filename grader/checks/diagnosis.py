"""Name the likely bug: which known mistake (grader.functional.Variant) the student's numbers match.

Every variant is evaluated in float64 on the same weights and inputs the
student's class got; a variant matches when every output (or every returned
gradient) agrees with it within the check's tolerance. The variants differ
from the reference and from each other by orders of magnitude more than the
tolerance on random data, so at most one matches in practice; the first in
the list wins otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from grader import functional as fn
from grader.checks.common import Tolerance, close
from grader.lab_api import ModelSpec
from grader.messages import Msg


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


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def _forward_fn(spec: ModelSpec, data: ProbeData, call: str, variant: fn.Variant) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
    x = _t(data.x)
    if spec.takes_hidden_state:
        h0 = _t(data.h0) if (call == "h0" and data.h0 is not None) else None
        return lambda w: fn.rnn_forward(w, x, h0, variant)
    return lambda w: fn.lstm_forward(w, x, variant)


def variants_for(spec: ModelSpec) -> tuple[fn.Variant, ...]:
    return fn.RNN_VARIANTS if spec.takes_hidden_state else fn.LSTM_VARIANTS


def outputs(spec: ModelSpec, data: ProbeData, variant: fn.Variant = fn.Variant.CORRECT) -> dict[str, np.ndarray]:
    weights = {k: _t(v) for k, v in data.weights.items()}
    with torch.no_grad():
        return {call: _forward_fn(spec, data, call, variant)(weights).numpy() for call in data.calls()}


def grads(spec: ModelSpec, data: ProbeData, variant: fn.Variant = fn.Variant.CORRECT) -> dict[str, np.ndarray]:
    """d sum(logits * R) / d weight, canonical layout, for the plain call."""
    weights = {k: _t(v) for k, v in data.weights.items()}
    _, g = fn.gradients(_forward_fn(spec, data, "plain", variant), weights, _t(data.r))
    return {k: v.numpy() for k, v in g.items()}


def match_outputs(spec: ModelSpec, data: ProbeData, found: dict[str, np.ndarray], tol: Tolerance) -> fn.Variant | None:
    """The mistake whose logits equal the student's on every call, if any."""
    if not found:
        return None
    for variant in variants_for(spec):
        expected = outputs(spec, data, variant)
        if all(call in found and close(found[call], expected[call], tol) for call in expected):
            return variant
    return None


def match_grads(
    spec: ModelSpec, data: ProbeData, found: dict[str, list[np.ndarray]], tol: Tolerance
) -> fn.Variant | None:
    """The mistake whose gradients equal the student's (any candidate layout), if any."""
    if not found:
        return None
    for variant in variants_for(spec):
        expected = grads(spec, data, variant)
        if all(any(close(c, expected[path], tol) for c in cands) for path, cands in found.items()):
            return variant
    return None


def diagnosis_msg(variant: fn.Variant) -> Msg:
    return Msg(f"checks.diag.{variant.value}")
