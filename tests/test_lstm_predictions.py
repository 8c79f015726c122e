"""Recomputing lstm.train's held-out predictions from the trained weights (grader/checks/lstm_predictions.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from grader.checks.lstm_predictions import MAX_DISAGREEMENT, compare, length_batches
from grader.checks.training import PROBE_SOURCE_PATH
from grader.oracle.live import load_functional

SIZES = (13, 32, 3)


def _weights(rng: np.random.Generator) -> dict[str, np.ndarray]:
    w = {}
    for g in "fico":
        w[f"W_x{g}"] = rng.normal(0, 0.3, (13, 32))
        w[f"W_h{g}"] = rng.normal(0, 0.3, (32, 32))
        w[f"b_{g}"] = rng.normal(0, 0.1, 32)
    w["fc.weight"], w["fc.bias"] = rng.normal(0, 0.5, (3, 32)), rng.normal(0, 0.1, 3)
    return w


def _predictions(fn, w, clips, batches) -> np.ndarray:
    canonical = {k: torch.from_numpy(v) for k, v in w.items()}
    preds = np.empty(len(clips), dtype=np.int64)
    for idx in batches:
        longest = max(len(clips[k]) for k in idx)
        x = np.zeros((longest, len(idx), 13))
        for row, k in enumerate(idx):
            x[: len(clips[k]), row] = clips[k]
        preds[idx] = fn.lstm_forward(canonical, torch.from_numpy(x)).argmax(1).numpy()
    return preds


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(3)
    clips = [rng.normal(size=(int(rng.integers(5, 30)), 13)) for _ in range(40)]
    batches = length_batches(np.array([len(c) for c in clips]), 16)
    fn = load_functional()
    w = _weights(rng)
    return fn, w, clips, batches, _predictions(fn, w, clips, batches)


def test_the_lstms_own_predictions_agree_in_any_orientation(case) -> None:
    fn, w, clips, batches, preds = case
    assert compare(fn, w, clips, batches, preds, SIZES).disagreement == 0
    w_at_x = {k: (v.T.copy() if k.startswith("W_") else v) for k, v in w.items()}   # W @ x everywhere
    assert compare(fn, w_at_x, clips, batches, preds, SIZES).agrees
    # one square and one non-square weight stored for W @ x, a (1, H) bias: the square one's orientation is tried
    mixed = dict(w, W_hf=w["W_hf"].T.copy(), W_xo=w["W_xo"].T.copy(), b_i=w["b_i"].reshape(1, 32))
    assert compare(fn, mixed, clips, batches, preds, SIZES).disagreement == 0


def test_predictions_from_elsewhere_disagree(case) -> None:
    fn, w, clips, batches, preds = case
    other = (preds + 1) % 3
    result = compare(fn, w, clips, batches, other, SIZES)
    assert result.checked and result.disagreement > MAX_DISAGREEMENT and not result.agrees


def test_missing_or_malformed_weights_are_not_a_pass(case) -> None:
    fn, w, clips, batches, preds = case
    for broken in ({k: v for k, v in w.items() if k != "W_hc"}, dict(w, b_f=np.full(32, np.nan)),
                   dict(w, W_xf=np.zeros((5, 5)))):
        result = compare(fn, broken, clips, batches, preds, SIZES)
        assert not result.checked and not result.agrees


def test_the_batches_are_the_kernels_own() -> None:
    namespace: dict = {"__name__": "train_probe"}
    exec(compile(PROBE_SOURCE_PATH.read_text(encoding="utf-8"), "train_probe", "exec"), namespace)
    lengths = np.random.default_rng(0).integers(3, 50, 37)
    mine = length_batches(lengths, 16)
    theirs = namespace["_length_batches"](lengths, 16)
    assert [m.tolist() for m in mine] == [t.tolist() for t in theirs]
