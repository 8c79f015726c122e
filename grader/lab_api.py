"""The lab's contract for the two student classes, as data: names, sizes, parameters, call shapes.

Canonical orientation is the reference's: `x_t @ W`, so a weight from a space
of size `a` to one of size `b` has shape (a, b) and a bias has shape (b,).
Students may store any weight transposed, (b, a), and a bias as (b,), (1, b)
or (b, 1); all of those are correct. `fc` of the LSTM is an nn.Linear, whose
weight has torch's own fixed shape (out, in).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Dim(str, Enum):
    INPUT = "input"
    HIDDEN = "hidden"
    OUTPUT = "output"


@dataclass(frozen=True)
class Sizes:
    input: int
    hidden: int
    output: int

    def of(self, dim: Dim) -> int:
        return {Dim.INPUT: self.input, Dim.HIDDEN: self.hidden, Dim.OUTPUT: self.output}[dim]

    def as_args(self) -> tuple[int, int, int]:
        return (self.input, self.hidden, self.output)


# The lab's hyperparameters. All three differ, so the orientation of every
# non-square weight follows from its shape; only hidden x hidden is ambiguous.
LAB_SIZES = Sizes(input=13, hidden=32, output=3)


@dataclass(frozen=True)
class ParamSpec:
    """One parameter the lab asks for.

    `path` is the attribute path on the module (`fc.weight` for the LSTM's
    classifier). `rows`/`cols` give the canonical shape (rows, cols) for a
    weight; a bias has `rows=None` and length `cols`. `fixed_layout` marks a
    parameter whose orientation is not the student's choice (nn.Linear's).
    """

    path: str
    cols: Dim
    rows: Dim | None = None
    fixed_layout: bool = False

    @property
    def is_bias(self) -> bool:
        return self.rows is None

    @property
    def is_square(self) -> bool:
        return self.rows is not None and self.rows == self.cols

    def canonical_shape(self, sizes: Sizes) -> tuple[int, ...]:
        if self.rows is None:
            return (sizes.of(self.cols),)
        return (sizes.of(self.rows), sizes.of(self.cols))


@dataclass(frozen=True)
class ModelSpec:
    """A student class: its name, check-id prefix, parameters and call shape."""

    class_name: str
    prefix: str  # check ids are f"{prefix}.{name}"
    params: tuple[ParamSpec, ...]
    # CustomRNN.forward(x, hidden_state=None); CustomLSTM.forward(x).
    takes_hidden_state: bool
    # The read-out module the lab fixes (LSTM: fc = nn.Linear(hidden, output)).
    linear_readout: str | None = None

    def param(self, path: str) -> ParamSpec:
        for p in self.params:
            if p.path == path:
                return p
        raise KeyError(path)

    @property
    def param_paths(self) -> tuple[str, ...]:
        return tuple(p.path for p in self.params)


def _gate(letter: str) -> tuple[ParamSpec, ParamSpec, ParamSpec]:
    return (
        ParamSpec(f"W_x{letter}", rows=Dim.INPUT, cols=Dim.HIDDEN),
        ParamSpec(f"W_h{letter}", rows=Dim.HIDDEN, cols=Dim.HIDDEN),
        ParamSpec(f"b_{letter}", cols=Dim.HIDDEN),
    )


RNN = ModelSpec(
    class_name="CustomRNN",
    prefix="rnn",
    params=(
        ParamSpec("W_xh", rows=Dim.INPUT, cols=Dim.HIDDEN),
        ParamSpec("W_hh", rows=Dim.HIDDEN, cols=Dim.HIDDEN),
        ParamSpec("b_h", cols=Dim.HIDDEN),
        ParamSpec("W_ho", rows=Dim.HIDDEN, cols=Dim.OUTPUT),
        ParamSpec("b_o", cols=Dim.OUTPUT),
    ),
    takes_hidden_state=True,
)

LSTM = ModelSpec(
    class_name="CustomLSTM",
    prefix="lstm",
    params=(
        *_gate("f"),
        *_gate("i"),
        *_gate("c"),
        *_gate("o"),
        # nn.Linear stores weight as (out, in): canonical here means torch's layout.
        ParamSpec("fc.weight", rows=Dim.OUTPUT, cols=Dim.HIDDEN, fixed_layout=True),
        ParamSpec("fc.bias", cols=Dim.OUTPUT, fixed_layout=True),
    ),
    takes_hidden_state=False,
    linear_readout="fc",
)

MODELS: tuple[ModelSpec, ...] = (RNN, LSTM)
# The names the notebook must define, in the lab's order.
CLASS_NAMES: tuple[str, ...] = tuple(m.class_name for m in MODELS)

CHECK_NAMES = ("defined", "params", "init", "forward", "grad", "no_builtin", "device")


# Built-in recurrent modules and ops that would do the lab's work for the student.
BUILTIN_RNN_MODULES = frozenset(
    {"RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "RNNBase", "RNNCellBase"}
)
BUILTIN_RNN_OPS = frozenset(
    {
        "_VF",
        "rnn_tanh",
        "rnn_relu",
        "rnn_tanh_cell",
        "rnn_relu_cell",
        "lstm",
        "lstm_cell",
        "gru",
        "gru_cell",
        "quantized_lstm",
        "quantized_gru",
        "_thnn_fused_lstm_cell",
        "_thnn_fused_gru_cell",
    }
)
