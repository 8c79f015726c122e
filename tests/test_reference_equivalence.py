"""The reference notebook's classes compute exactly torch's RNN and LSTM.

The classes are pulled from reference/lab.ipynb itself (the single source of
truth), weights are mapped across in float64, and forward outputs and every
gradient must agree to 1e-10.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from grader.oracle.live import load_reference_classes

TOL = 1e-10
SEQ, BATCH, IN, HID, OUT = 7, 5, 13, 32, 3


@pytest.fixture(autouse=True)
def float64_default():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(1234)
    yield
    torch.set_default_dtype(previous)


def _randomise(module: nn.Module) -> None:
    """Non-zero biases too, so a wrong bias path cannot hide behind zeros."""
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-0.5, 0.5)


def _assert_close(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    err = (actual - expected).abs().max().item()
    assert err <= TOL, f"{what}: max abs error {err:.3e} > {TOL}"


def test_reference_rnn_equals_torch_rnn_with_linear_readout():
    CustomRNN, _ = load_reference_classes()
    ours = CustomRNN(IN, HID, OUT)
    _randomise(ours)
    rnn = nn.RNN(IN, HID, nonlinearity="tanh")
    readout = nn.Linear(HID, OUT)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(ours.W_xh.T)
        rnn.weight_hh_l0.copy_(ours.W_hh.T)
        rnn.bias_ih_l0.copy_(ours.b_h)
        rnn.bias_hh_l0.zero_()
        readout.weight.copy_(ours.W_ho.T)
        readout.bias.copy_(ours.b_o)

    x = torch.randn(SEQ, BATCH, IN)
    h0 = torch.randn(BATCH, HID)
    weights = torch.randn(BATCH, OUT)
    for initial in (None, h0):
        ours.zero_grad(), rnn.zero_grad(), readout.zero_grad()
        got = ours(x) if initial is None else ours(x, initial)
        _, h_last = rnn(x, None if initial is None else initial.unsqueeze(0))
        want = readout(h_last[0])
        _assert_close(got, want, f"logits (hidden_state={'None' if initial is None else 'given'})")
        (got * weights).sum().backward()
        (want * weights).sum().backward()
        _assert_close(ours.W_xh.grad, rnn.weight_ih_l0.grad.T, "grad W_xh")
        _assert_close(ours.W_hh.grad, rnn.weight_hh_l0.grad.T, "grad W_hh")
        _assert_close(ours.b_h.grad, rnn.bias_ih_l0.grad, "grad b_h")
        _assert_close(ours.W_ho.grad, readout.weight.grad.T, "grad W_ho")
        _assert_close(ours.b_o.grad, readout.bias.grad, "grad b_o")


# torch.nn.LSTM stacks its gates in the order input, forget, cell, output
GATES = ("i", "f", "c", "o")


def test_reference_lstm_equals_torch_lstm_with_linear():
    _, CustomLSTM = load_reference_classes()
    ours = CustomLSTM(IN, HID, OUT)
    _randomise(ours)
    lstm = nn.LSTM(IN, HID)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.cat([getattr(ours, f"W_x{g}").T for g in GATES]))
        lstm.weight_hh_l0.copy_(torch.cat([getattr(ours, f"W_h{g}").T for g in GATES]))
        lstm.bias_ih_l0.copy_(torch.cat([getattr(ours, f"b_{g}") for g in GATES]))
        lstm.bias_hh_l0.zero_()
    fc = ours.fc  # the lab's classifier is already an nn.Linear: share it

    x = torch.randn(SEQ, BATCH, IN)
    weights = torch.randn(BATCH, OUT)
    got = ours(x)
    fc_grads_ours = None
    (got * weights).sum().backward()
    fc_grads_ours = (fc.weight.grad.clone(), fc.bias.grad.clone())
    fc.zero_grad()

    _, (h_last, _) = lstm(x)
    want = fc(h_last[0])
    _assert_close(got, want, "logits")
    (want * weights).sum().backward()

    for k, g in enumerate(GATES):
        rows = slice(k * HID, (k + 1) * HID)
        _assert_close(getattr(ours, f"W_x{g}").grad, lstm.weight_ih_l0.grad[rows].T, f"grad W_x{g}")
        _assert_close(getattr(ours, f"W_h{g}").grad, lstm.weight_hh_l0.grad[rows].T, f"grad W_h{g}")
        _assert_close(getattr(ours, f"b_{g}").grad, lstm.bias_ih_l0.grad[rows], f"grad b_{g}")
    _assert_close(fc_grads_ours[0], fc.weight.grad, "grad fc.weight")
    _assert_close(fc_grads_ours[1], fc.bias.grad, "grad fc.bias")


def test_reference_api_matches_the_lab():
    """Parameter names, registration, shapes and initialisation as grader/lab_api.py fixes them."""
    CustomRNN, CustomLSTM = load_reference_classes()
    rnn = CustomRNN(13, 32, 3)
    assert dict((n, tuple(p.shape)) for n, p in rnn.named_parameters()) == {
        "W_xh": (13, 32), "W_hh": (32, 32), "b_h": (32,), "W_ho": (32, 3), "b_o": (3,),
    }
    lstm = CustomLSTM(13, 32, 3)
    names = {n for n, _ in lstm.named_parameters()}
    for g in "fico":
        assert {f"W_x{g}", f"W_h{g}", f"b_{g}"} <= names
    assert isinstance(lstm.fc, nn.Linear) and (lstm.fc.in_features, lstm.fc.out_features) == (32, 3)
    for model in (rnn, lstm):
        for name, p in model.named_parameters():
            if name.startswith("b_"):
                assert torch.count_nonzero(p) == 0, f"{name} should start at zero"
            elif p.dim() == 2:
                bound = (6 / sum(p.shape)) ** 0.5
                assert p.abs().max() <= bound, f"{name} exceeds the Xavier bound"
