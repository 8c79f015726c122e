"""The reference forward passes as plain functions, plus known student mistakes.

TA-side only: this file is the reference solution in equation form. It lives in
reference/, outside the `grader` package, so the student wheel never carries it;
the grader loads it by path (grader/oracle/live.py) from a source checkout.

Each function takes a dict of canonical weights (see grader.lab_api: `x @ W`
orientation, biases (n,), `fc.weight` as nn.Linear's (out, in)) and returns
logits. Run in float64 in the trusted process, they give both the reference
answer and, with a `Variant`, the answer a known mistake would give, so a
failing student output can be matched to the likely bug.

Variants, defined precisely (t = 1..T, h_0 = given or 0, c_0 = 0):

- CORRECT: the lab's equations; logits from h_T.
- NO_TANH (RNN): h_t = W_xh x_t + W_hh h_{t-1} + b_h.
- TANH_FORGET / TANH_INPUT / TANH_OUTPUT (LSTM): that gate uses tanh, not sigmoid.
- NO_CELL_TANH (LSTM): h_t = o_t * c_t.
- NO_INPUT_GATE (LSTM): c_t = f_t * c_{t-1} + c~_t.
- UPDATED_H (LSTM): the hidden variable is overwritten before the output gate
  reads it, i.e. the student writes `h = tanh(c_t)`, then
  `o_t = sigmoid(W_xo x_t + W_ho h + b_o)`, then `h = o_t * h`. The output gate
  therefore sees tanh(c_t) of *this* step instead of h_{t-1}. (f, i and c~
  come before the cell update in the lab's order, so only the output gate can
  see an updated h.)
- DETACHED (both): h_{t-1} (and c_{t-1}) are detached before each step, as with
  `hidden = hidden.detach()` in the loop: same logits, gradients only through
  the last step.
- X0 (both): x_1 is fed at every step instead of x_t.
- FIRST_STEP (both): logits read out after the first step (a `return` inside the loop).
- ALL_STEPS (both): read-out applied to every h_t, shape (seq, batch, output).
- IGNORES_H0 (RNN): the given hidden_state is replaced by zeros.
"""
from __future__ import annotations

from typing import Callable, Mapping

import torch

from grader.mistakes import LSTM_VARIANTS, RNN_VARIANTS, Variant

__all__ = ["LSTM_VARIANTS", "RNN_VARIANTS", "Variant", "gradients", "loss_of", "lstm_forward", "rnn_forward"]

Weights = Mapping[str, torch.Tensor]


def _read_out(states: list[torch.Tensor], variant: Variant, head: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    if variant is Variant.FIRST_STEP:
        return head(states[0])
    if variant is Variant.ALL_STEPS:
        return torch.stack([head(h) for h in states])
    return head(states[-1])


def rnn_forward(
    w: Weights,
    x: torch.Tensor,
    h0: torch.Tensor | None = None,
    variant: Variant = Variant.CORRECT,
) -> torch.Tensor:
    """Logits of CustomRNN for x of shape (seq, batch, input)."""
    seq_len, batch, _ = x.shape
    hidden = w["W_hh"].shape[0]
    if h0 is None or variant is Variant.IGNORES_H0:
        h = x.new_zeros(batch, hidden)
    else:
        h = h0
    states = []
    for t in range(seq_len):
        x_t = x[0] if variant is Variant.X0 else x[t]
        h_prev = h.detach() if variant is Variant.DETACHED else h
        pre = x_t @ w["W_xh"] + h_prev @ w["W_hh"] + w["b_h"]
        h = pre if variant is Variant.NO_TANH else torch.tanh(pre)
        states.append(h)
    return _read_out(states, variant, lambda s: s @ w["W_ho"] + w["b_o"])


def lstm_forward(w: Weights, x: torch.Tensor, variant: Variant = Variant.CORRECT) -> torch.Tensor:
    """Logits of CustomLSTM for x of shape (seq, batch, input)."""
    seq_len, batch, _ = x.shape
    hidden = w["W_hf"].shape[0]
    h = x.new_zeros(batch, hidden)
    c = x.new_zeros(batch, hidden)

    def gate(letter: str, x_t: torch.Tensor, h_in: torch.Tensor, act: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        return act(x_t @ w[f"W_x{letter}"] + h_in @ w[f"W_h{letter}"] + w[f"b_{letter}"])

    def act_for(gate_variant: Variant) -> Callable[[torch.Tensor], torch.Tensor]:
        return torch.tanh if variant is gate_variant else torch.sigmoid

    states = []
    for t in range(seq_len):
        x_t = x[0] if variant is Variant.X0 else x[t]
        if variant is Variant.DETACHED:
            h, c = h.detach(), c.detach()
        f_t = gate("f", x_t, h, act_for(Variant.TANH_FORGET))
        i_t = gate("i", x_t, h, act_for(Variant.TANH_INPUT))
        c_hat = gate("c", x_t, h, torch.tanh)
        c = f_t * c + (c_hat if variant is Variant.NO_INPUT_GATE else i_t * c_hat)
        squashed = c if variant is Variant.NO_CELL_TANH else torch.tanh(c)
        h_for_o = squashed if variant is Variant.UPDATED_H else h
        o_t = gate("o", x_t, h_for_o, act_for(Variant.TANH_OUTPUT))
        h = o_t * squashed
        states.append(h)
    return _read_out(states, variant, lambda s: s @ w["fc.weight"].T + w["fc.bias"])


def loss_of(logits: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """The scalar the gradient check differentiates: touches every logit.

    Broadcasting is deliberate: a (seq, batch, out) output times R (batch, out)
    still gives a loss, the same one the probe computes in the kernel.
    """
    return (logits * r).sum()


def gradients(
    forward: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    weights: Weights,
    r: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(logits, d loss / d weight for every weight) with loss = loss_of(logits, r)."""
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in weights.items()}
    with torch.enable_grad():
        logits = forward(leaves)
        loss_of(logits, r).backward()
    grads = {k: (v.grad if v.grad is not None else torch.zeros_like(v)) for k, v in leaves.items()}
    return logits.detach(), grads
