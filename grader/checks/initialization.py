"""`*.init`: initial weights look Xavier-uniform, biases start at zero.

The probe builds the class a few times and returns the initial values; the
statistics are computed here. A sample from U(-a, a) with a =
sqrt(6 / (fan_in + fan_out)) stays within a, has standard deviation a/sqrt(3)
and mean 0. The bound is symmetric in fan_in/fan_out, so it does not depend
on the student's orientation. Pooled over the instances (>= 96 values for the
smallest tensor, a (1, 32) bias), the sample std of a true Xavier tensor lies
within 5 % of a/sqrt(3) at 1 sigma; the accepted band, 25 %, is > 5 sigma.
Mistakes it catches: torch.randn / rand (bound, mean), xavier_normal_ (bound),
nn.init defaults or `* 0.01` scaling (spread), all-zero or constant (spread).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from grader.checks.common import names, result
from grader.harvest import ProbeReply
from grader.lab_api import ModelSpec, ParamSpec
from grader.result import CheckResult, Status

STD_BAND = (0.75, 1.25)
MEAN_SIGMAS = 6.0
BOUND_SLACK = 1e-6  # float32 rounding of a value drawn right at the bound


def xavier_bound(shape: tuple[int, ...]) -> float:
    # torch: fan_in = size(1), fan_out = size(0) for 2-D; the sum is what matters.
    fan_in, fan_out = shape[1], shape[0]
    return math.sqrt(6.0 / (fan_in + fan_out))


def xavier_problem(samples: list[np.ndarray]) -> tuple[str, dict[str, Any]]:
    """'' if the pooled samples look Xavier-uniform, else a short reason; plus the stats."""
    shape = samples[0].shape
    if len(shape) != 2:
        return "not_2d", {"shape": list(shape)}
    values = np.concatenate([s.ravel() for s in samples])
    bound = xavier_bound(shape)
    expected_std = bound / math.sqrt(3.0)
    stats = {
        "n": int(values.size),
        "bound": bound,
        "max_abs": float(np.max(np.abs(values))),
        "std": float(values.std()),
        "expected_std": expected_std,
        "mean": float(values.mean()),
    }
    if stats["max_abs"] > bound * (1 + BOUND_SLACK) + 1e-9:
        return "exceeds_bound", stats
    lo, hi = STD_BAND
    if not lo * expected_std <= stats["std"] <= hi * expected_std:
        return "degenerate" if stats["std"] < 1e-12 else "spread", stats
    if abs(stats["mean"]) > MEAN_SIGMAS * expected_std / math.sqrt(values.size):
        return "mean", stats
    return "", stats


def _samples(reply: ProbeReply, path: str) -> list[np.ndarray]:
    found = []
    k = 0
    while f"init/{k}/{path}" in reply.arrays:
        found.append(reply.arrays[f"init/{k}/{path}"])
        k += 1
    return [s for s in found if s.shape == found[0].shape] if found else []


def _judge(p: ParamSpec, samples: list[np.ndarray]) -> tuple[str, dict[str, Any]]:
    if not p.is_bias:
        return xavier_problem(samples)
    # Biases start at zero, whatever their shape: a (1, H) bias that the template's `dim() > 1` rule
    # Xavier-initialises does not (the reference's biases are 1-D, so the rule skips them).
    max_abs = float(max(np.max(np.abs(s)) if s.size else 0.0 for s in samples))
    if max_abs == 0.0:
        return "", {"max_abs": 0.0}
    return "bias_not_zero", {"max_abs": max_abs}


def check_init(spec: ModelSpec, reply: ProbeReply) -> CheckResult:
    check_id = f"{spec.prefix}.init"
    step = reply.steps.get("init", {})
    if not step.get("ok"):
        return result(check_id, Status.ERROR, "init.probe_error", cls=spec.class_name,
                      error=str(step.get("error", "no report")))
    problems: dict[str, list[str]] = {}
    stats: dict[str, Any] = {}
    judged = 0
    for p in spec.params:
        if p.fixed_layout:
            continue  # nn.Linear's own init, written by the lab, not the student
        samples = _samples(reply, p.path)
        if not samples:
            continue  # missing parameters are the params check's business
        judged += 1
        problem, stats[p.path] = _judge(p, samples)
        if problem:
            problems.setdefault(problem, []).append(p.path)
    details = {"stats": stats, "problems": problems, "instances": len(_samples(reply, spec.params[0].path))}
    if judged == 0:
        return result(check_id, Status.SKIPPED, "init.nothing", details=details, cls=spec.class_name)
    if problems:
        return result(
            check_id, Status.FAILED, "init.bad", details=details,
            exceeds_bound=names(problems.get("exceeds_bound", [])),
            spread=names(problems.get("spread", []) + problems.get("mean", []) + problems.get("not_2d", [])),
            degenerate=names(problems.get("degenerate", [])),
            bias_not_zero=names(problems.get("bias_not_zero", [])),
        )
    return result(check_id, Status.PASSED, "init.ok", details=details, count=judged)
