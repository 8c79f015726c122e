"""Unit tests of the trusted side's pieces: reply validation, layouts, init statistics, source scan."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from grader import harvest
from grader.checks.builtin import scan_source
from grader.checks.initialization import xavier_problem
from grader.checks.params import layout_for
from grader.lab_api import LAB_SIZES, LSTM, RNN
from grader.untrusted_fs import UntrustedDir


# ---------------------------------------------------------------- harvest.read_reply
def _reply_dir(tmp_path: Path, arrays: dict[str, np.ndarray], entries: dict | None = None) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    index = {}
    for i, (key, arr) in enumerate(arrays.items()):
        np.save(out / f"a{i}.npy", arr, allow_pickle=True)
        index[key] = {"file": f"a{i}.npy", "shape": list(arr.shape), "dtype": str(arr.dtype)}
    index.update(entries or {})
    (out / "manifest.json").write_text(json.dumps({"version": 1, "steps": {"x": {"ok": True}}, "arrays": index}))
    return out


def _read_reply(folder: Path) -> harvest.ProbeReply:
    with UntrustedDir.open(folder) as held:
        return harvest.read_reply(held)


def test_reply_reads_float_arrays(tmp_path: Path) -> None:
    reply = _read_reply(_reply_dir(tmp_path, {"k": np.ones((2, 3), np.float32)}))
    assert reply.ok and reply.arrays["k"].dtype == np.float64 and reply.steps["x"]["ok"]


@pytest.mark.parametrize(
    "arr",
    [np.array([{"a": 1}], dtype=object), np.ones(3, dtype=np.int64), np.array(["s"])],
    ids=["pickled-object", "int", "str"],
)
def test_reply_rejects_unexpected_dtypes(tmp_path: Path, arr: np.ndarray) -> None:
    reply = _read_reply(_reply_dir(tmp_path, {"k": arr}))
    assert reply.failure == harvest.BAD_RESULT


def test_reply_rejects_path_escape_and_shape_lies(tmp_path: Path) -> None:
    (tmp_path / "secret.npy").write_bytes(b"")
    bad = _reply_dir(tmp_path, {}, {"k": {"file": "../secret.npy", "shape": [], "dtype": "float64"}})
    assert _read_reply(bad).failure == harvest.BAD_RESULT
    other = tmp_path / "o2"
    other.mkdir()
    out = _reply_dir(other, {"k": np.ones(4)})
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["arrays"]["k"]["shape"] = [2, 2]
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert _read_reply(out).failure == harvest.BAD_RESULT


def test_reply_caps_sizes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harvest, "MAX_ARRAY_BYTES", 1000)
    assert _read_reply(_reply_dir(tmp_path, {"k": np.ones(1000)})).failure == harvest.BAD_RESULT


def test_reply_missing_or_linked_manifest(tmp_path: Path) -> None:
    assert _read_reply(tmp_path).failure == harvest.NO_RESULT
    (tmp_path / "real.json").write_text("{}")
    (tmp_path / "manifest.json").symlink_to(tmp_path / "real.json")
    assert _read_reply(tmp_path).failure == harvest.BAD_RESULT  # refused, never followed


def test_reply_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "manifest.json")
    assert _read_reply(tmp_path).failure == harvest.BAD_RESULT
    (tmp_path / "manifest.json").unlink()
    out = _reply_dir(tmp_path, {"k": np.ones(4)})
    (out / "a0.npy").unlink()
    os.mkfifo(out / "a0.npy")
    assert _read_reply(out).failure == harvest.BAD_RESULT


def test_reply_deeply_nested_manifest_is_a_bad_result(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("[" * 200_000 + "]" * 200_000)
    assert _read_reply(tmp_path).failure == harvest.BAD_RESULT


def test_probe_source_is_self_contained() -> None:
    """The probe must not import the grader: it runs in the student's process."""
    source = harvest.probe_source()
    assert "grader" not in "".join(line for line in source.splitlines() if line.startswith(("import", "from")))
    compile(source, "probe", "exec")


# ---------------------------------------------------------------- layouts
def test_layouts() -> None:
    s = LAB_SIZES
    assert layout_for(RNN.param("W_xh"), s, (13, 32)).transposed is False
    assert layout_for(RNN.param("W_xh"), s, (32, 13)).transposed is True
    assert layout_for(RNN.param("W_hh"), s, (32, 32)).square is True
    assert layout_for(RNN.param("W_xh"), s, (13, 13)) is None
    for shape in [(32,), (1, 32), (32, 1)]:
        assert layout_for(RNN.param("b_h"), s, shape) is not None
    assert layout_for(RNN.param("b_h"), s, (2, 16)) is None
    # nn.Linear's layout is fixed: its transpose is wrong, not an orientation choice
    assert layout_for(LSTM.param("fc.weight"), s, (3, 32)) is not None
    assert layout_for(LSTM.param("fc.weight"), s, (32, 3)) is None


def test_layout_round_trip() -> None:
    lay = layout_for(RNN.param("W_ho"), LAB_SIZES, (3, 32))
    w = np.arange(32 * 3, dtype=float).reshape(32, 3)
    assert np.array_equal(lay.to_student(w), w.T)
    assert np.array_equal(lay.grad_candidates(w.T, (32, 3))[0], w)


# ---------------------------------------------------------------- init statistics
def _draws(init, shape=(13, 32), n=3) -> list[np.ndarray]:
    out = []
    for _ in range(n):
        t = torch.empty(shape)
        init(t)
        out.append(t.numpy().astype(float))
    return out


@pytest.mark.parametrize("shape", [(13, 32), (32, 32), (32, 13), (1, 32)])
def test_xavier_uniform_accepted(shape) -> None:
    torch.manual_seed(0)
    for _ in range(20):
        problem, _ = xavier_problem(_draws(nn.init.xavier_uniform_, shape))
        assert problem == ""


@pytest.mark.parametrize(
    "init, expected",
    [
        (nn.init.xavier_normal_, "exceeds_bound"),
        (nn.init.normal_, "exceeds_bound"),
        (lambda t: nn.init.uniform_(t, 0.0, 0.36), "spread|mean"),
        (lambda t: nn.init.kaiming_uniform_(t, a=5 ** 0.5), "spread"),
        (lambda t: nn.init.normal_(t, 0.0, 0.01), "spread"),
        (nn.init.zeros_, "degenerate"),
        (lambda t: nn.init.constant_(t, 0.1), "degenerate"),
    ],
    ids=["xavier_normal", "randn", "one_sided", "torch_default", "small_normal", "zeros", "constant"],
)
def test_non_xavier_rejected(init, expected: str) -> None:
    torch.manual_seed(0)
    problem, stats = xavier_problem(_draws(init))
    assert problem in expected.split("|"), stats


# ---------------------------------------------------------------- source scan
@pytest.mark.parametrize(
    "snippet",
    [
        "self.rnn = nn.LSTM(i, h)",
        "self.cell = torch.nn.GRUCell(i, h)",
        "out = torch._VF.lstm(x, hx, ps, True, 1, 0.0, False, False, False)",
        "from torch import _VF",
        "h = torch.rnn_tanh_cell(x, h, a, b, c, d)",
        "self.m = getattr(nn, 'RNN')(i, h)",
        "from torch.nn import LSTMCell",
    ],
)
def test_scan_finds_builtins(snippet: str) -> None:
    source = f"class CustomLSTM(nn.Module):\n    def forward(self, x):\n        {snippet}\n"
    assert scan_source(source)


def test_scan_ignores_lookalikes() -> None:
    source = (
        "class CustomLSTM(nn.Module):\n"
        "    '''An LSTM, not nn.LSTM.'''\n"
        "    def __init__(self, i, h, o):\n"
        "        super(CustomLSTM, self).__init__()\n"
        "        self.lstm = 1\n        self.lstm_cell = 2\n        self.gru = 3\n"
    )
    assert scan_source(source) == []


def test_scan_survives_unparsable_source() -> None:
    assert scan_source("class CustomRNN(nn.Module):\n    x = = nn.RNN(3, 4)\n")
