"""Did the held-out predictions come from the student's LSTM? (TA grading, live reference only.)

`lstm.train` trusts the kernel for one thing: the predictions it returns. A class that computes the LSTM's
equations when probed but switches to a shortcut when the grader's training is on the call stack would earn the
training points without its LSTM (measured). So after the last epoch the kernel also returns the trained
weights, and the grader recomputes the predictions itself with the reference equations
(reference/functional.py), on the same padded batches the kernel used. They must agree.

Square weights (hidden x hidden) hold no orientation in their shape: `x @ W` and `W @ x` are both right, so each
is tried, the orientation of the non-square weights first. Agreement allows for float32 against float64: a
prediction may differ only where the reference's two best logits are within MARGIN of each other.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import torch

from grader.untrusted_fs import UntrustedDir

GATES = ("f", "i", "c", "o")
WEIGHT_NAMES: tuple[str, ...] = (*(f"W_x{g}" for g in GATES), *(f"W_h{g}" for g in GATES),
                                 *(f"b_{g}" for g in GATES), "fc.weight", "fc.bias")
MARGIN = 1e-3
# Predictions may disagree on at most this share of the clips beyond near-ties (float32 drift over long clips).
MAX_DISAGREEMENT = 0.02


@dataclass(frozen=True)
class Agreement:
    """How the kernel's predictions compare with the reference's on the trained weights."""

    checked: bool          # False: the weights were missing or malformed, so nothing could be recomputed
    disagreement: float    # share of clips predicted differently (near-ties excluded)
    reason: str = ""

    @property
    def agrees(self) -> bool:
        return self.checked and self.disagreement <= MAX_DISAGREEMENT


def compare(fn: ModuleType, weights: dict[str, np.ndarray], clips: list[np.ndarray], batches: list[np.ndarray],
            predictions: np.ndarray, sizes: tuple[int, int, int]) -> Agreement:
    """Recompute the predictions for `clips` batched as `batches` (index arrays) and compare."""
    try:
        candidates = _canonical_candidates(weights, sizes)
    except ValueError as exc:
        return Agreement(False, 1.0, str(exc)[:200])
    best = 1.0
    for canonical in candidates:
        best = min(best, _disagreement(fn, canonical, clips, batches, predictions))
        if best <= MAX_DISAGREEMENT:
            break
    return Agreement(True, best)


def _canonical_candidates(weights: dict[str, np.ndarray], sizes: tuple[int, int, int]) -> list[dict[str, torch.Tensor]]:
    """The student's weights in the reference's layout (x @ W), once per orientation of the square ones."""
    n_in, hidden, n_out = sizes
    fixed: dict[str, torch.Tensor] = {}
    transposed_inputs = 0
    for g in GATES:
        w = _get(weights, f"W_x{g}")
        if w.shape == (n_in, hidden):
            fixed[f"W_x{g}"] = torch.from_numpy(w)
        elif w.shape == (hidden, n_in):
            fixed[f"W_x{g}"] = torch.from_numpy(w.T.copy())
            transposed_inputs += 1
        else:
            raise ValueError(f"W_x{g} has shape {w.shape}")
        b = _get(weights, f"b_{g}")
        if b.size != hidden:
            raise ValueError(f"b_{g} has shape {b.shape}")
        fixed[f"b_{g}"] = torch.from_numpy(b.reshape(hidden).copy())
    fc_w, fc_b = _get(weights, "fc.weight"), _get(weights, "fc.bias")
    if fc_w.shape != (n_out, hidden) or fc_b.size != n_out:
        raise ValueError(f"fc has shapes {fc_w.shape}, {fc_b.shape}")
    fixed["fc.weight"], fixed["fc.bias"] = torch.from_numpy(fc_w), torch.from_numpy(fc_b.reshape(n_out).copy())
    squares = {g: _get(weights, f"W_h{g}") for g in GATES}
    if any(w.shape != (hidden, hidden) for w in squares.values()):
        raise ValueError("a W_h weight is not hidden x hidden")
    # Most students write every product the same way: try the non-square weights' orientation first.
    first = transposed_inputs > len(GATES) // 2
    out = []
    for flips in sorted(itertools.product((False, True), repeat=len(GATES)),
                        key=lambda f: sum(flip != first for flip in f)):
        canonical = dict(fixed)
        for g, flip in zip(GATES, flips):
            canonical[f"W_h{g}"] = torch.from_numpy(squares[g].T.copy() if flip else squares[g])
        out.append(canonical)
    return out


def _get(weights: dict[str, np.ndarray], name: str) -> np.ndarray:
    value = weights.get(name)
    if not isinstance(value, np.ndarray) or value.dtype != np.float64 or not np.all(np.isfinite(value)):
        raise ValueError(f"{name} is missing or not finite")
    return value


def _disagreement(fn: ModuleType, canonical: dict[str, torch.Tensor], clips: list[np.ndarray],
                  batches: list[np.ndarray], predictions: np.ndarray) -> float:
    differ = 0
    with torch.no_grad():
        for idx in batches:
            logits = fn.lstm_forward(canonical, torch.from_numpy(_padded(clips, idx))).numpy()
            ranked = np.sort(logits, axis=1)
            margin = ranked[:, -1] - ranked[:, -2]
            mine = logits.argmax(axis=1)
            theirs = predictions[idx]
            differ += int(np.sum((mine != theirs) & (margin > MARGIN)))
    return differ / max(1, len(predictions))


def _padded(clips: list[np.ndarray], idx: np.ndarray) -> np.ndarray:
    """(T, B, F) float64, zeros after each clip's end: the batch exactly as the kernel built it."""
    longest = max(len(clips[k]) for k in idx)
    out = np.zeros((longest, len(idx), clips[idx[0]].shape[1]))
    for row, k in enumerate(idx):
        out[: len(clips[k]), row] = clips[k]
    return out


def length_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """The kernel's batches of held-out clips (grader/inkernel/train_probe.py `_length_batches`, the same rule)."""
    order = np.argsort(lengths, kind="stable")
    return [order[i: i + batch_size] for i in range(0, len(order), batch_size)]


def read_weights(folder: UntrustedDir, epoch: int, max_bytes: int) -> dict[str, np.ndarray]:
    """The weights the kernel saved after `epoch` (untrusted: capped, no pickles, float64 only)."""
    found: dict[str, np.ndarray] = {}
    for name in WEIGHT_NAMES:
        try:
            arr = folder.read_npy(f"w_{epoch}_{name}.npy", max_bytes)
        except OSError:
            continue
        if arr.dtype == np.float64 and arr.ndim <= 2:
            found[name] = arr
    return found
