"""reference/functional.py: the reference equals torch's own RNN/LSTM; the mistake variants are distinct."""
from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn as nn

from grader.oracle.live import load_functional

fn = load_functional()

I, H, O, T, B = 5, 7, 3, 6, 4


def _rnn_pair(gen: torch.Generator):
    rnn = nn.RNN(I, H, nonlinearity="tanh").double()
    head = nn.Linear(H, O).double()
    with torch.no_grad():
        for p in [*rnn.parameters(), *head.parameters()]:
            p.uniform_(-0.5, 0.5, generator=gen)
    w = {
        "W_xh": rnn.weight_ih_l0.detach().T,
        "W_hh": rnn.weight_hh_l0.detach().T,
        "b_h": (rnn.bias_ih_l0 + rnn.bias_hh_l0).detach(),
        "W_ho": head.weight.detach().T,
        "b_o": head.bias.detach(),
    }
    return rnn, head, w


def _lstm_pair(gen: torch.Generator):
    lstm = nn.LSTM(I, H).double()
    fc = nn.Linear(H, O).double()
    with torch.no_grad():
        for p in [*lstm.parameters(), *fc.parameters()]:
            p.uniform_(-0.5, 0.5, generator=gen)
    # torch packs the gates as (i, f, g, o) along dim 0 of (4H, in).
    w: dict[str, torch.Tensor] = {"fc.weight": fc.weight.detach(), "fc.bias": fc.bias.detach()}
    wi = lstm.weight_ih_l0.detach().chunk(4)
    wh = lstm.weight_hh_l0.detach().chunk(4)
    b = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach().chunk(4)
    for k, letter in enumerate("ifco"):
        w[f"W_x{letter}"], w[f"W_h{letter}"], w[f"b_{letter}"] = wi[k].T, wh[k].T, b[k]
    return lstm, fc, w


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rnn_equals_torch_rnn(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    rnn, head, w = _rnn_pair(gen)
    x = torch.randn(T, B, I, generator=gen, dtype=torch.float64)
    h0 = torch.randn(B, H, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        out, h_n = rnn(x, h0[None])
        expected = head(h_n[0])
        expected_zero = head(rnn(x)[1][0])
    assert (fn.rnn_forward(w, x, h0) - expected).abs().max() < 1e-10
    assert (fn.rnn_forward(w, x) - expected_zero).abs().max() < 1e-10
    all_steps = fn.rnn_forward(w, x, h0, fn.Variant.ALL_STEPS)
    assert (all_steps - head(out).detach()).abs().max() < 1e-10


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lstm_equals_torch_lstm(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    lstm, fc, w = _lstm_pair(gen)
    x = torch.randn(T, B, I, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        out, (h_n, _) = lstm(x)
        expected = fc(h_n[0])
    assert (fn.lstm_forward(w, x) - expected).abs().max() < 1e-10
    assert (fn.lstm_forward(w, x, fn.Variant.FIRST_STEP) - fc(out[0]).detach()).abs().max() < 1e-10


def test_gradients_equal_torch_lstm() -> None:
    gen = torch.Generator().manual_seed(5)
    lstm, fc, w = _lstm_pair(gen)
    x = torch.randn(T, B, I, generator=gen, dtype=torch.float64)
    r = torch.randn(B, O, generator=gen, dtype=torch.float64)
    (fc(lstm(x)[1][0][0]) * r).sum().backward()
    _, grads = fn.gradients(lambda ww: fn.lstm_forward(ww, x), w, r)
    assert (grads["fc.weight"] - fc.weight.grad).abs().max() < 1e-10
    # input gate rows of torch's packed weight
    assert (grads["W_xi"] - lstm.weight_ih_l0.grad[:H].T).abs().max() < 1e-10
    assert (grads["W_hf"] - lstm.weight_hh_l0.grad[H:2 * H].T).abs().max() < 1e-10


def _outputs(model: str, w, x, h0, r):
    if model == "rnn":
        variants = fn.RNN_VARIANTS
        fwd = lambda v: (lambda ww: fn.rnn_forward(ww, x, h0, v))  # noqa: E731
    else:
        variants = fn.LSTM_VARIANTS
        fwd = lambda v: (lambda ww: fn.lstm_forward(ww, x, v))  # noqa: E731
    return {v: fn.gradients(fwd(v), w, r) for v in (fn.Variant.CORRECT, *variants)}


@pytest.mark.parametrize("model", ["rnn", "lstm"])
def test_variants_are_pairwise_distinct(model: str) -> None:
    """Every mistake differs from the reference and from every other mistake, in logits or gradients."""
    gen = torch.Generator().manual_seed(11)
    w = _rnn_pair(gen)[2] if model == "rnn" else _lstm_pair(gen)[2]
    x = torch.randn(T, B, I, generator=gen, dtype=torch.float64)
    h0 = torch.randn(B, H, generator=gen, dtype=torch.float64)
    r = torch.randn(B, O, generator=gen, dtype=torch.float64)
    results = _outputs(model, w, x, h0, r)
    for (va, (la, ga)), (vb, (lb, gb)) in itertools.combinations(results.items(), 2):
        if la.shape != lb.shape:
            continue
        d_logits = (la - lb).abs().max().item()
        d_grads = max((ga[k] - gb[k]).abs().max().item() for k in ga)
        assert max(d_logits, d_grads) > 1e-3, (va, vb)
    # the detached variant: same logits, different gradients
    la, ga = results[fn.Variant.CORRECT]
    ld, gd = results[fn.Variant.DETACHED]
    assert (la - ld).abs().max() < 1e-12
    assert max((ga[k] - gd[k]).abs().max().item() for k in ga) > 1e-3


def test_reference_notebook_matches_functional() -> None:
    """The lead's reference classes (reference/lab.ipynb) compute what functional.py computes."""
    from grader.oracle.live import load_reference_classes

    # no skip: the reference ships with the repo, so failing to load it is a real failure
    rnn_cls, lstm_cls = load_reference_classes()
    torch.manual_seed(0)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        rnn, lstm = rnn_cls(I, H, O), lstm_cls(I, H, O)
        with torch.no_grad():  # non-zero biases too, so a wrong bias path cannot hide behind zeros
            for p in [*rnn.parameters(), *lstm.parameters()]:
                p.uniform_(-0.5, 0.5)
        x = torch.randn(T, B, I)
        h0 = torch.randn(B, H)
        w_rnn = {n: p.detach() for n, p in rnn.named_parameters()}
        w_lstm = {n: p.detach() for n, p in lstm.named_parameters()}
        with torch.no_grad():
            assert (rnn(x, h0) - fn.rnn_forward(w_rnn, x, h0)).abs().max() < 1e-10
            assert (lstm(x) - fn.lstm_forward(w_lstm, x)).abs().max() < 1e-10
    finally:
        torch.set_default_dtype(old)
