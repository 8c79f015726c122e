"""The known student mistakes the diagnosis can name, by name only.

The equations behind each name (the reference and every mistake variant) live
in `reference/functional.py`, which is part of the course's source checkout and
never of the student wheel; the wheel carries their numbers as golden vectors
(grader/golden/). A name here is also the catalogue key `checks.diag.<value>`.
"""
from __future__ import annotations

from enum import Enum


class Variant(str, Enum):
    CORRECT = "correct"
    NO_TANH = "no_tanh"
    TANH_FORGET = "tanh_forget_gate"
    TANH_INPUT = "tanh_input_gate"
    TANH_OUTPUT = "tanh_output_gate"
    NO_CELL_TANH = "no_cell_tanh"
    NO_INPUT_GATE = "no_input_gate"
    UPDATED_H = "updated_h_in_output_gate"
    DETACHED = "detached_hidden"
    X0 = "x0_every_step"
    FIRST_STEP = "first_step_logits"
    ALL_STEPS = "all_steps_logits"
    IGNORES_H0 = "ignores_hidden_state"


RNN_VARIANTS = (
    Variant.NO_TANH,
    Variant.DETACHED,
    Variant.X0,
    Variant.FIRST_STEP,
    Variant.ALL_STEPS,
    Variant.IGNORES_H0,
)
LSTM_VARIANTS = (
    Variant.TANH_FORGET,
    Variant.TANH_INPUT,
    Variant.TANH_OUTPUT,
    Variant.NO_CELL_TANH,
    Variant.NO_INPUT_GATE,
    Variant.UPDATED_H,
    Variant.DETACHED,
    Variant.X0,
    Variant.FIRST_STEP,
    Variant.ALL_STEPS,
)
