"""Name the likely bug: which known mistake (grader.mistakes.Variant) the student's numbers match.

The oracle gives every variant's answer in float64 on the same weights and
inputs the student's class got (computed live, or looked up in the golden
vectors); a variant matches when every output (or every returned gradient)
agrees with it within the check's tolerance. The variants differ from the
reference and from each other by orders of magnitude more than the tolerance
on random data, so at most one matches in practice; the first in the list wins
otherwise.
"""
from __future__ import annotations

import numpy as np

from grader.checks.common import Tolerance, close
from grader.lab_api import ModelSpec
from grader.messages import Msg
from grader.mistakes import LSTM_VARIANTS, RNN_VARIANTS, Variant
from grader.oracle import Oracle, ProbeData


def variants_for(spec: ModelSpec) -> tuple[Variant, ...]:
    return RNN_VARIANTS if spec.takes_hidden_state else LSTM_VARIANTS


def match_outputs(oracle: Oracle, spec: ModelSpec, data: ProbeData, found: dict[str, np.ndarray],
                  tol: Tolerance) -> Variant | None:
    """The mistake whose logits equal the student's on every call, if any."""
    if not found:
        return None
    for variant in variants_for(spec):
        expected = oracle.outputs(spec, data, variant)
        if all(call in found and close(found[call], expected[call], tol) for call in expected):
            return variant
    return None


def match_grads(oracle: Oracle, spec: ModelSpec, data: ProbeData, found: dict[str, list[np.ndarray]],
                tol: Tolerance) -> Variant | None:
    """The mistake whose gradients equal the student's (any candidate layout), if any."""
    if not found:
        return None
    for variant in variants_for(spec):
        expected = oracle.grads(spec, data, variant)
        if all(any(close(c, expected[path], tol) for c in cands) for path, cands in found.items()):
            return variant
    return None


def diagnosis_msg(variant: Variant) -> Msg:
    return Msg(f"checks.diag.{variant.value}")
