"""The lstm.train probe: runs INSIDE the student's kernel, one epoch per call.

This file is never imported by the grader. `grader.checks.training` reads its text,
executes it into a fresh module object inside the kernel (so the student's
global names cannot shadow ours) and calls `main(config, cls)` with the
student's `CustomLSTM` (or None when it is undefined).

What it may trust: nothing but the arrays the grader wrote. It reads them with
`allow_pickle=False`, checks dtype, shape and size, trains, and writes two
things back: the held-out predictions (int64 .npy) and a small JSON report
(mean loss, or which phase failed and why). The held-out labels are never
here; the grader computes accuracy itself, so a forged report or a patched
torch function can make the student's result worse, never better.

Everything the probe calls from torch/numpy is captured when this file is
executed, before the student's forward() ever runs, so a forward that patches
torch.argmax or torch.optim.Adam halfway through training does not change
the protocol.
"""
import json as _json
import math as _math
import os as _os
import traceback as _traceback

import numpy as _np
import torch as _torch

# --- captured once, before any student code runs in this probe -------------
_Tensor = _torch.Tensor
_tensor = _torch.tensor
_from_numpy = _torch.from_numpy
_zeros = _torch.zeros
_device = _torch.device
_float32 = _torch.float32
_int64 = _torch.int64
_manual_seed = _torch.manual_seed
_Generator = _torch.Generator
_randperm = _torch.randperm
_no_grad = _torch.no_grad
_argmax = _torch.argmax
_isfinite = _math.isfinite
_Adam = _torch.optim.Adam
_cross_entropy = _torch.nn.functional.cross_entropy
_np_load = _np.load
_np_save = _np.save
_np_argsort = _np.argsort
_np_empty = _np.empty
_np_cumsum = _np.cumsum

# File names shared with grader.checks.training (the trusted side writes the first five).
TRAIN_X, TRAIN_LEN, TRAIN_Y = "train_x.npy", "train_len.npy", "train_y.npy"
HELDOUT_X, HELDOUT_LEN = "heldout_x.npy", "heldout_len.npy"

# One probe per grading run: the state of the model being trained between calls.
_STATE = {}


class ProbeFailure(Exception):
    """A failure attributed to a phase of the protocol (reported, not raised out)."""

    def __init__(self, phase, error):
        super().__init__(error)
        self.phase = phase
        self.error = error


def _describe(exc, limit=400):
    text = "%s: %s" % (type(exc).__name__, exc)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _read(folder, name, dtype, ndim, max_bytes):
    path = _os.path.join(folder, name)
    try:
        st = _os.lstat(path)
    except OSError as exc:
        raise ProbeFailure("input", "%s: %s" % (name, _describe(exc))) from None
    if not _os.path.isfile(path) or _os.path.islink(path) or st.st_size > max_bytes:
        raise ProbeFailure("input", "%s: not a regular file within %d bytes" % (name, max_bytes))
    arr = _np_load(path, allow_pickle=False)
    if arr.dtype != _np.dtype(dtype) or arr.ndim != ndim:
        raise ProbeFailure("input", "%s: expected %dD %s, got %dD %s" % (name, ndim, dtype, arr.ndim, arr.dtype))
    return arr


def _read_split(folder, x_name, len_name, cfg):
    x = _read(folder, x_name, "float32", 2, cfg["max_bytes"])
    lengths = _read(folder, len_name, "int64", 1, cfg["max_bytes"])
    if x.shape[1] != cfg["input_size"] or len(lengths) == 0 or lengths.min() < 1 or int(lengths.sum()) != x.shape[0]:
        raise ProbeFailure("input", "%s/%s: lengths do not tile the frames" % (x_name, len_name))
    return x, lengths


def _length_batches(lengths, batch_size):
    """Indices grouped by length: sort (stable), then cut into consecutive batches."""
    order = _np_argsort(lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def _padded(x, starts, lengths, idx, device):
    """(T, B, F) float32, zeros after each clip's end (the lab's collate_fn, permuted)."""
    longest = int(lengths[idx].max())
    out = _zeros(len(idx), longest, x.shape[1], dtype=_float32)
    for row, k in enumerate(idx):
        n = int(lengths[k])
        out[row, :n] = _from_numpy(x[starts[k] : starts[k] + n])
    return out.permute(1, 0, 2).contiguous().to(device)


def _batches(x, lengths, batch_size, device):
    starts = _np_cumsum(lengths) - lengths
    return [(_padded(x, starts, lengths, idx, device), idx) for idx in _length_batches(lengths, batch_size)]


def _logits(model, x, n_out):
    out = model(x)
    batch = x.shape[1]
    if not isinstance(out, _Tensor):
        raise ProbeFailure("shape", "forward returned %s, expected a tensor of shape (%d, %d)"
                           % (type(out).__name__, batch, n_out))
    if tuple(out.shape) != (batch, n_out):
        raise ProbeFailure("shape", "forward returned shape %s, expected (%d, %d)" % (tuple(out.shape), batch, n_out))
    return out


def _setup(cfg, cls):
    folder = cfg["dir"]
    train_x, train_len = _read_split(folder, TRAIN_X, TRAIN_LEN, cfg)
    train_y = _read(folder, TRAIN_Y, "int64", 1, cfg["max_bytes"])
    if len(train_y) != len(train_len) or train_y.min() < 0 or train_y.max() >= cfg["output_size"]:
        raise ProbeFailure("input", "train_y.npy: wrong length or label range")
    held_x, held_len = _read_split(folder, HELDOUT_X, HELDOUT_LEN, cfg)
    device = _device(cfg["device"])
    train = [(x, _from_numpy(train_y[idx].copy()).to(device))
             for x, idx in _batches(train_x, train_len, cfg["batch_size"], device)]
    heldout = _batches(held_x, held_len, cfg["batch_size"], device)
    try:
        _manual_seed(cfg["seed"])  # the grader's seed decides the initial weights
        model = cls(cfg["input_size"], cfg["hidden_size"], cfg["output_size"])
        model.to(device)
        optimizer = _Adam(model.parameters(), lr=cfg["learning_rate"])
    except Exception as exc:
        raise ProbeFailure("construct", _describe(exc)) from None
    shuffler = _Generator()
    shuffler.manual_seed(cfg["seed"])
    return {"token": cfg["token"], "model": model, "optimizer": optimizer, "train": train,
            "heldout": heldout, "n_heldout": len(held_len), "shuffler": shuffler, "epoch": 0}


def _train_epoch(state, n_out):
    model, optimizer, train = state["model"], state["optimizer"], state["train"]
    model.train()
    total, count = 0.0, 0
    # Batches are fixed by length; only their order changes, drawn from the grader's seed.
    for k in _randperm(len(train), generator=state["shuffler"]).tolist():
        x, y = train[k]
        loss = _cross_entropy(_logits(model, x, n_out), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(y)
        count += len(y)
    return total / count


def _predict(state, n_out):
    model = state["model"]
    model.eval()
    preds = _np_empty(state["n_heldout"], dtype=_np.int64)
    with _no_grad():
        for x, idx in state["heldout"]:
            preds[idx] = _argmax(_logits(model, x, n_out), dim=1).cpu().numpy().astype(_np.int64)
    return preds


def _save_weights(model, cfg, epoch):
    """The trained weights the predictions came from, one .npy each (the grader recomputes the predictions
    with the reference equations from them). A tensor that is missing or not a tensor is simply not written."""
    for name in cfg["save_weights"]:
        value = model
        try:
            for part in name.split("."):
                value = getattr(value, part)
        except AttributeError:
            continue
        if isinstance(value, _Tensor) and value.numel() <= 100_000:
            array = value.detach().to("cpu", dtype=_torch.float64).numpy()
            _np_save(_os.path.join(cfg["dir"], "w_%d_%s.npy" % (epoch, name)), array, allow_pickle=False)


def _write_report(folder, epoch, report):
    with open(_os.path.join(folder, "report_%d.json" % epoch), "w", encoding="utf-8") as fh:
        _json.dump(report, fh)


def _run(cfg, cls):
    if cls is None:
        raise ProbeFailure("missing", "CustomLSTM is not defined")
    epoch = cfg["epoch"]
    if epoch == 1:
        _STATE.clear()
        _STATE.update(_setup(cfg, cls))
    elif _STATE.get("token") != cfg["token"] or _STATE.get("epoch") != epoch - 1:
        raise ProbeFailure("state", "the training state of epoch %d is gone" % (epoch - 1))
    n_out = cfg["output_size"]
    phase = "train"
    try:
        loss = _train_epoch(_STATE, n_out)
        phase = "predict"
        preds = _predict(_STATE, n_out)
    except ProbeFailure:
        raise
    except Exception as exc:
        raise ProbeFailure(phase, _describe(exc)) from None
    _STATE["epoch"] = epoch
    _np_save(_os.path.join(cfg["dir"], "pred_%d.npy" % epoch), preds, allow_pickle=False)
    if cfg.get("save_weights"):
        _save_weights(_STATE["model"], cfg, epoch)
    return {"ok": True, "epoch": epoch, "loss": loss if _isfinite(loss) else None}


def main(cfg, cls):
    """One epoch of the grader's protocol; the outcome goes to report_<epoch>.json."""
    try:
        report = _run(cfg, cls)
    except ProbeFailure as exc:
        report = {"ok": False, "epoch": cfg["epoch"], "phase": exc.phase, "error": exc.error}
    except Exception as exc:  # a bug of ours or a broken input: say where, for the grader's log
        report = {"ok": False, "epoch": cfg["epoch"], "phase": "probe", "error": _describe(exc),
                  "where": _traceback.format_exc(limit=3)[-800:]}
    if not report["ok"]:
        _STATE.clear()  # free the model; later calls must not resume a failed run
    _write_report(cfg["dir"], cfg["epoch"], report)
