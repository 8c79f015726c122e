"""`*.forward` and `*.grad`: the student's class computes the reference's function.

The data and the expected answers come from an oracle (grader/oracle/): in TA
grading, fresh data drawn in the trusted process from a seed taken from
`secrets` after the notebook ran, answered by the live reference; in a
student's self-check, the packaged golden case and its answers. Weights
are written into the student's tensors in the student's own layout (see
params.Layout); hidden x hidden weights get symmetric values so either
orientation computes the same function, and their gradient is accepted as is
or transposed (the gradient of a transposed use is the transpose).

The probe first runs with torch's default dtype set to float64, so that the
template's `torch.zeros(batch, hidden)` is float64 too; if that fails (a
dtype hard-coded somewhere), it retries in float32, and the looser tolerance
applies. The tolerance used is in every result's details.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grader.checks import diagnosis as dg
from grader.checks.common import TOL_FLOAT32, TOL_FLOAT64, Tolerance, close, max_abs_error, names, result
from grader.checks.params import Layout
from grader.harvest import ProbeReply
from grader.lab_api import ModelSpec, Sizes
from grader.messages import Msg
from grader.oracle import Oracle, ProbeData
from grader.oracle.probe_data import BATCH, SEQ_LEN
from grader.result import CheckResult, Status


def run_request(spec: ModelSpec, sizes: Sizes, data: ProbeData, layouts: dict[str, Layout],
                device: str = "cpu") -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The probe request for forward/backward, and the arrays it refers to."""
    arrays: dict[str, np.ndarray] = {"x": data.x, "R": data.r}
    if data.h0 is not None:
        arrays["h0"] = data.h0
    weight_files: dict[str, str] = {}
    for i, p in enumerate(spec.params):
        arrays[f"w{i}"] = layouts[p.path].to_student(data.weights[p.path])
        weight_files[p.path] = f"w{i}.npy"
    request = {
        "mode": "run",
        "class_name": spec.class_name,
        "sizes": list(sizes.as_args()),
        "params": list(spec.param_paths),
        "weights": weight_files,
        "inputs": {k: f"{k}.npy" for k in arrays if k in ("x", "h0")},
        "calls": [{"name": n, "args": a} for n, a in data.calls().items()],
        "grad_call": ["x"],
        "R": "R.npy",
        "dtypes": ["float64", "float32"],
        "device": device,
    }
    return request, arrays


@dataclass
class RunView:
    """The run reply, reduced to the attempt that counts."""

    attempt: dict[str, Any]
    tol: Tolerance
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    grads: dict[str, np.ndarray] = field(default_factory=dict)


def view_run(reply: ProbeReply) -> RunView | None:
    attempts = reply.steps.get("run", {}).get("attempts") or []
    if not attempts:
        return None
    ok = [a for a in attempts if a.get("ok")]
    # The first working attempt; else the last one, whose error is the most telling
    # (float64 often fails on a dtype clash that float32 does not have).
    attempt = ok[0] if ok else attempts[-1]
    tag = attempt.get("dtype", "")
    dtypes = {tag, *attempt.get("param_dtypes", {}).values()}
    dtypes |= {c.get("dtype") for c in attempt.get("calls", {}).values() if c.get("ok")}
    tol = TOL_FLOAT64 if dtypes == {"float64"} else TOL_FLOAT32
    prefix_out, prefix_grad = f"{tag}/out/", f"{tag}/grad/"
    return RunView(
        attempt=attempt,
        tol=tol,
        outputs={k[len(prefix_out):]: v for k, v in reply.arrays.items() if k.startswith(prefix_out)},
        grads={k[len(prefix_grad):]: v for k, v in reply.arrays.items() if k.startswith(prefix_grad)},
    )


@dataclass
class ForwardOutcome:
    result: CheckResult
    variant: Any = None  # the matched grader.mistakes.Variant, if any


def _base_details(data: ProbeData, view: RunView) -> dict[str, Any]:
    return {"seed": data.seed, "tolerance": view.tol.as_dict(), "dtype_run": view.attempt.get("dtype"),
            "seq_len": SEQ_LEN, "batch": BATCH}


def _attempt_error(check_id: str, spec: ModelSpec, view: RunView | None) -> CheckResult | None:
    """An ERROR result when the attempt never got to call forward, else None."""
    if view is None:
        return result(check_id, Status.ERROR, "forward.no_run", cls=spec.class_name)
    a = view.attempt
    if a.get("weights"):
        return result(check_id, Status.ERROR, "forward.weights", details={"weights": a["weights"]},
                      names=names(sorted(a["weights"])))
    if a.get("error"):
        return result(check_id, Status.ERROR, "forward.crash", details={"error": a["error"]},
                      call=f"{spec.class_name}(...)", error=a["error"])
    return None


def check_forward(oracle: Oracle, spec: ModelSpec, data: ProbeData, view: RunView | None) -> ForwardOutcome:
    check_id = f"{spec.prefix}.forward"
    early = _attempt_error(check_id, spec, view)
    if early is not None:
        return ForwardOutcome(early)
    assert view is not None
    details = _base_details(data, view)
    expected = oracle.outputs(spec, data)
    calls = view.attempt.get("calls", {})
    for call in expected:
        info = calls.get(call, {})
        if info.get("error"):
            details["error"] = info["error"]
            return ForwardOutcome(result(check_id, Status.ERROR, "forward.crash", details=details,
                                         call=_call_text(spec, call), error=info["error"]))
        if info.get("returned"):
            return ForwardOutcome(result(check_id, Status.FAILED, "forward.not_tensor", details=details,
                                         call=_call_text(spec, call), type=info["returned"]))
        if call not in view.outputs:
            return ForwardOutcome(result(check_id, Status.ERROR, "forward.no_run", details=details,
                                         cls=spec.class_name))
    errors = {c: max_abs_error(view.outputs[c], expected[c]) for c in expected}
    details["max_abs_error"] = errors
    details["shape_expected"] = {c: list(v.shape) for c, v in expected.items()}
    details["shape_found"] = {c: list(view.outputs[c].shape) for c in expected}
    bad = [c for c in expected if not close(view.outputs[c], expected[c], view.tol)]
    if not bad:
        worst = max((e for e in errors.values() if e is not None), default=0.0)
        return ForwardOutcome(result(check_id, Status.PASSED, "forward.ok", details=details,
                                     max_err=f"{worst:.1e}", tol=view.tol.text()))
    variant = dg.match_outputs(oracle, spec, data, view.outputs, view.tol)
    diagnosis = dg.diagnosis_msg(variant) if variant else None
    details["diagnosis"] = variant.value if variant else None
    call = bad[0]
    if errors[call] is None:
        res = result(check_id, Status.FAILED, "forward.shape", diagnosis, details, call=_call_text(spec, call),
                     found=str(tuple(view.outputs[call].shape)), expected=str(tuple(expected[call].shape)))
    else:
        res = result(check_id, Status.FAILED, "forward.mismatch", diagnosis, details, call=_call_text(spec, call),
                     max_err=f"{errors[call]:.3g}", tol=view.tol.text())
    return ForwardOutcome(res, variant)


def _call_text(spec: ModelSpec, call: str) -> str:
    return "model(x, hidden_state)" if call == "h0" else "model(x)"


@dataclass
class _GradComparison:
    candidates: dict[str, list[np.ndarray]]  # each parameter's gradient in every layout it may be stored in
    errors: dict[str, float | None]          # the smallest max-abs error over those layouts
    wrong: list[str]                         # parameters whose gradient matches in no layout


def _compare_grads(expected: dict[str, np.ndarray], spec: ModelSpec, view: RunView, layouts: dict[str, Layout],
                   sizes: Sizes, no_grad: list[str]) -> _GradComparison:
    """The student's gradients against the oracle's, parameter by parameter (those without one left out)."""
    found = _GradComparison({}, {}, [])
    for p in spec.params:
        if p.path in no_grad:
            continue
        try:
            cands = layouts[p.path].grad_candidates(view.grads[p.path], p.canonical_shape(sizes))
        except ValueError:  # a gradient of another shape than its parameter: cannot be right
            found.wrong.append(p.path)
            continue
        found.candidates[p.path] = cands
        errs = [max_abs_error(c, expected[p.path]) for c in cands]
        found.errors[p.path] = min((e for e in errs if e is not None), default=None)
        if not any(close(c, expected[p.path], view.tol) for c in cands):
            found.wrong.append(p.path)
    return found


def check_grad(
    oracle: Oracle,
    spec: ModelSpec,
    data: ProbeData,
    view: RunView | None,
    layouts: dict[str, Layout],
    untrained: list[str],
    sizes: Sizes,
) -> CheckResult:
    check_id = f"{spec.prefix}.grad"
    early = _attempt_error(check_id, spec, view)
    if early is not None:
        return early
    assert view is not None
    details = _base_details(data, view)
    grad = view.attempt.get("grad", {})
    if not grad.get("ok"):
        details["error"] = grad.get("error")
        if untrained:
            # Typically "element 0 of tensors does not require grad": nothing was trainable.
            details["not_registered"] = untrained
            return result(check_id, Status.FAILED, "grad.untrained",
                          Msg("checks.diag.not_registered", {"names": names(untrained)}), details,
                          names=names(untrained))
        return result(check_id, Status.ERROR, "grad.crash", details=details, error=str(grad.get("error")))
    statuses: dict[str, str] = grad.get("params", {})
    no_grad = [p for p in spec.param_paths if statuses.get(p) != "ok" or p not in view.grads]
    compared = _compare_grads(oracle.grads(spec, data), spec, view, layouts, sizes, no_grad)
    candidates, errors, wrong = compared.candidates, compared.errors, compared.wrong
    untrained = [p for p in untrained if p in spec.param_paths]
    details.update({"max_abs_error": errors, "wrong": wrong, "no_grad": no_grad,
                    "not_registered": untrained, "grad_status": statuses})
    if not wrong and not no_grad and not untrained:
        worst = max((e for e in errors.values() if e is not None), default=0.0)
        return result(check_id, Status.PASSED, "grad.ok", details=details,
                      max_err=f"{worst:.1e}", tol=view.tol.text(), count=len(errors))
    diagnosis: Msg | None = None
    # Registered and trainable, yet no gradient: forward never touched them.
    unused = [p for p in no_grad if p not in untrained and statuses.get(p) == "grad_none"]
    details["unused"] = unused
    not_trained = [p for p in spec.param_paths if (p in no_grad and p not in unused) or p in untrained]
    if unused:
        diagnosis = Msg("checks.diag.unused_params", {"names": names(unused)})
    if not_trained:
        diagnosis = Msg("checks.diag.not_registered", {"names": names(not_trained)})
    if wrong:
        variant = dg.match_grads(oracle, spec, data, candidates, view.tol)
        details["diagnosis"] = variant.value if variant else None
        if variant is not None:
            diagnosis = dg.diagnosis_msg(variant)
        worst_name = max(wrong, key=lambda k: errors.get(k) or float("inf"))
        err = errors.get(worst_name)
        return result(check_id, Status.FAILED, "grad.mismatch", diagnosis, details, names=names(wrong + no_grad),
                      worst=worst_name, max_err=f"{err:.3g}" if err is not None else "shape",
                      tol=view.tol.text())
    if unused and not not_trained:
        return result(check_id, Status.FAILED, "grad.unused", diagnosis, details, names=names(unused))
    return result(check_id, Status.FAILED, "grad.untrained", diagnosis, details,
                  names=names(sorted(set(no_grad + untrained), key=spec.param_paths.index)))
