"""`*.params`: the named parameters exist, are registered, and have a right shape.

Also decides each parameter's layout: how a canonical array (x @ W
orientation) maps onto the student's tensor, which the forward/grad checks use
to write weights and read gradients back.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.checks.common import names, result
from grader.harvest import ProbeReply
from grader.lab_api import ModelSpec, ParamSpec, Sizes
from grader.messages import Msg
from grader.result import CheckResult, Status


@dataclass(frozen=True)
class Layout:
    """How the student stores one parameter relative to the canonical shape.

    `transposed`: a non-square weight stored (out, in) for `W @ x`.
    `square`: a hidden x hidden weight; its orientation cannot be read from
    the shape, so the forward check writes symmetric values (both
    orientations then compute the same function) and the gradient check
    accepts the canonical gradient or its transpose.
    """

    student_shape: tuple[int, ...]
    transposed: bool = False
    square: bool = False

    def to_student(self, canonical: np.ndarray) -> np.ndarray:
        arr = canonical.T if self.transposed else canonical
        return np.ascontiguousarray(arr.reshape(self.student_shape))

    def grad_candidates(self, student_grad: np.ndarray, canonical_shape: tuple[int, ...]) -> list[np.ndarray]:
        """The student's gradient in canonical layout: one candidate, two for a square weight."""
        if self.transposed:
            return [student_grad.T]
        g = student_grad.reshape(canonical_shape)
        return [g, g.T] if self.square else [g]


def layout_for(spec: ParamSpec, sizes: Sizes, shape: tuple[int, ...]) -> Layout | None:
    """The layout of a student tensor of `shape`, or None when no reading of it is right."""
    canonical = spec.canonical_shape(sizes)
    if spec.is_bias:
        n = canonical[0]
        # (n,), (1, n), (n, 1): all broadcast correctly in one orientation or the other.
        if shape in ((n,), (1, n), (n, 1)):
            return Layout(student_shape=shape)
        return None
    if shape == canonical:
        return Layout(student_shape=shape, square=spec.is_square)
    if not spec.fixed_layout and shape == canonical[::-1]:
        return Layout(student_shape=shape, transposed=True)
    return None


@dataclass
class ParamsOutcome:
    result: CheckResult
    layouts: dict[str, Layout]
    # Parameters the optimizer would not train (absent from named_parameters() or frozen).
    untrained: list[str]


def check_params(spec: ModelSpec, sizes: Sizes, reply: ProbeReply) -> ParamsOutcome:
    check_id = f"{spec.prefix}.params"
    step = reply.steps.get("params", {})
    if not step.get("ok"):
        res = result(check_id, Status.ERROR, "params.probe_error", cls=spec.class_name,
                     error=str(step.get("error", "no report")))
        return ParamsOutcome(res, {}, [])
    expected: dict[str, Any] = step.get("expected", {})
    missing, not_param, wrong_shape, frozen = [], [], [], []
    layouts: dict[str, Layout] = {}
    shapes: dict[str, Any] = {}
    for p in spec.params:
        info = expected.get(p.path, {"kind": "missing"})
        kind = info.get("kind")
        if kind not in ("parameter", "tensor"):
            missing.append(p.path)
            continue
        shape = tuple(int(s) for s in info.get("shape", []))
        shapes[p.path] = {"found": list(shape), "expected": list(p.canonical_shape(sizes))}
        layout = layout_for(p, sizes, shape)
        if layout is None:
            wrong_shape.append(f"{p.path} {list(shape)}")
        else:
            layouts[p.path] = layout
        if kind != "parameter" or not info.get("registered"):
            not_param.append(p.path)
        elif not info.get("requires_grad"):
            frozen.append(p.path)
    readout_problem = _readout_problem(spec, sizes, reply)
    details: dict[str, Any] = {
        "shapes": shapes,
        "missing": missing,
        "not_registered": not_param,
        "wrong_shape": wrong_shape,
        "requires_grad_false": frozen,
        "orientation": {k: ("transposed" if v.transposed else "square" if v.square else "canonical")
                        for k, v in layouts.items()},
        "named_parameters": step.get("named_parameters", []),
    }
    if readout_problem:
        details["readout"] = readout_problem
    untrained = not_param + frozen
    if missing or not_param or wrong_shape or frozen or readout_problem:
        diagnosis = Msg("checks.diag.not_registered", {"names": names(not_param)}) if not_param else None
        res = result(check_id, Status.FAILED, "params.bad", diagnosis, details,
                     missing=names(missing), not_registered=names(not_param),
                     wrong_shape=names(wrong_shape), frozen=names(frozen),
                     readout=readout_problem or "-")
    else:
        res = result(check_id, Status.PASSED, "params.ok", None, details, count=len(spec.params))
    return ParamsOutcome(res, layouts, untrained)


def _readout_problem(spec: ModelSpec, sizes: Sizes, reply: ProbeReply) -> str:
    """'' when the lab's read-out module (LSTM fc) is nn.Linear(hidden, output)."""
    if not spec.linear_readout:
        return ""
    info = reply.steps.get("modules", {}).get("readout")
    if not info:
        return f"{spec.linear_readout}: ?"
    if not info.get("is_linear"):
        return f"{spec.linear_readout}: {info.get('type')} != Linear"
    found = (info.get("in_features"), info.get("out_features"))
    if found != (sizes.hidden, sizes.output):
        return f"{spec.linear_readout}: Linear{found} != Linear({sizes.hidden}, {sizes.output})"
    return ""
