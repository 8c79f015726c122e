"""The model checks (rnn.* and lstm.*): probe the student's classes, judge here.

Per class, two probe calls into the kernel:
1. inspect: build `Cls(13, 32, 3)`; report parameters, module tree, initial
   values of a few fresh instances;
2. run: write the oracle's weights in the student's layout, run forward and
   backward on its inputs; return logits and gradients.
Everything else (reference answer, comparison, diagnosis) happens here; the
expected answers come from the oracle (live reference or golden vectors).

`*.sizes` (hidden in the course rubric, TA grading only): the same probes at
other sizes than the lab's 13-32-3, so a class that hard-codes 32 somewhere
fails. Only the live oracle can answer at other sizes; the golden vectors are
made for the lab's sizes alone, so a self-check never runs it.
"""
from __future__ import annotations

import logging
from typing import Any

from grader.checks.builtin import check_no_builtin
from grader.checks.common import result, transport_key
from grader.checks.device import run_device_check, skipped_device
from grader.checks.equivalence import RunView, check_forward, check_grad, run_request, view_run
from grader.checks.initialization import check_init
from grader.checks.params import check_params
from grader.harvest import KernelRunner, ProbeReply, call_probe
from grader.lab_api import CHECK_NAMES, LAB_SIZES, MODELS, ModelSpec, Sizes
from grader.oracle import Oracle
from grader.oracle.probe_data import ProbeData, new_seed
from grader.result import CheckResult, Status

log = logging.getLogger(__name__)

INIT_REPEATS = 3
# For *.sizes: all three differ from each other and from the probe's batch (4) and
# sequence length (6), so a transposed or permuted tensor cannot pass by coincidence.
OTHER_SIZES = Sizes(input=9, hidden=5, output=2)
# What *.sizes judges again at OTHER_SIZES (init is about the lab's own sizes only),
# and what must already pass at the lab's sizes for that to mean anything.
_SIZES_PARTS = ("defined", "params", "forward", "grad")
_SIZES_NEEDS = ("defined", "params", "forward")


def run_model_checks(
    runner: KernelRunner,
    class_sources: dict[str, str],
    oracle: Oracle,
    *,
    rng_seed: int | None = None,
    sizes: Sizes = LAB_SIZES,
    other_sizes: bool = False,
    notebook_hits: dict[str, list[str]] | None = None,
    probe_timeout_s: float,
) -> list[CheckResult]:
    """All rnn.* and lstm.* results, in the order of lab_api.CHECK_NAMES per class (+ `sizes` last).

    `runner`: a kernel session after the notebook ran; `class_sources`: the
    classes' source from the static notebook extraction (for the no_builtin
    scan); `oracle`: where the expected answers come from; `rng_seed`: fixes
    the live oracle's random data (tests), None draws it from `secrets`, fresh
    for this run; `other_sizes`: also run `*.sizes` (live oracle only); `probe_timeout_s`:
    the rubric's limit on one probe call (building the class, or its forward passes).
    """
    seed = new_seed() if rng_seed is None else rng_seed
    results: list[CheckResult] = []
    for i, spec in enumerate(MODELS):
        source = class_sources.get(spec.class_name)
        elsewhere = (notebook_hits or {}).get(spec.prefix, [])
        try:
            lab = check_model(runner, oracle, spec, source, seed + i, sizes, elsewhere=elsewhere,
                              timeout_s=probe_timeout_s)
        except Exception as exc:  # a reply shaped to break a check costs that class, not the run
            log.warning("the model checks of %s stopped on the kernel's reply", spec.class_name, exc_info=True)
            lab = _all(spec, Status.ERROR, "kernel.no_result", reason=f"{type(exc).__name__}: {exc}"[:300])
        results.extend(lab)
        if other_sizes:
            try:
                results.append(check_other_sizes(runner, oracle, spec, source, seed + 100 + i, lab,
                                                 timeout_s=probe_timeout_s))
            except Exception as exc:  # as above
                log.warning("%s.sizes stopped on the kernel's reply", spec.prefix, exc_info=True)
                results.append(result(f"{spec.prefix}.sizes", Status.ERROR, "kernel.no_result",
                                      reason=f"{type(exc).__name__}: {exc}"[:300]))
    return results


def check_other_sizes(runner: KernelRunner, oracle: Oracle, spec: ModelSpec, source: str | None, seed: int,
                      lab: list[CheckResult], *, timeout_s: float) -> CheckResult:
    """`*.sizes`: what holds at the lab's sizes holds at OTHER_SIZES too.

    Needs a working forward pass at the lab's sizes (else there is nothing to
    generalise: skipped). Of grad, only what passed at the lab's sizes is
    judged again, so one mistake (say a detached hidden state) costs one check.
    """
    check_id = f"{spec.prefix}.sizes"
    shown = ", ".join(map(str, OTHER_SIZES.as_args()))
    passed_here = {r.id.split(".")[1] for r in lab if r.status is Status.PASSED}
    needed = [f"{spec.prefix}.{part}" for part in _SIZES_NEEDS if part not in passed_here]
    if needed:
        return result(check_id, Status.SKIPPED, "sizes.needs_lab_sizes", names=", ".join(needed))
    judged = [part for part in _SIZES_PARTS if part in passed_here]
    others = check_model(runner, oracle, spec, source, seed, OTHER_SIZES, timeout_s=timeout_s)
    bad = [r for r in others if r.id.split(".")[1] in judged and r.status is not Status.PASSED]
    if not bad:
        return result(check_id, Status.PASSED, "sizes.ok",
                      details={"sizes": list(OTHER_SIZES.as_args()), "judged": judged},
                      call=f"{spec.class_name}({shown})")
    first = bad[0]
    details = {"sizes": list(OTHER_SIZES.as_args()), "judged": judged, "failing": [r.id.split(".")[1] for r in bad],
               "first": {"id": first.id, "status": first.status.value, "details": first.details}}
    status = Status.ERROR if first.status is Status.ERROR else Status.FAILED
    return result(check_id, status, "sizes.failed", first.diagnosis, details, call=f"{spec.class_name}({shown})",
                  part=first.id.split(".")[1], reason=first.message or "-")


def _all(spec: ModelSpec, status: Status, key: str, **params: Any) -> list[CheckResult]:
    return [result(f"{spec.prefix}.{n}", status, key, cls=spec.class_name, **params) for n in CHECK_NAMES]


def _transport_failure(spec: ModelSpec, reply: ProbeReply) -> list[CheckResult]:
    return _all(spec, Status.ERROR, transport_key(reply), reason=reply.reason or reply.failure)


def check_model(
    runner: KernelRunner, oracle: Oracle, spec: ModelSpec, source: str | None, seed: int, sizes: Sizes = LAB_SIZES,
    *, elsewhere: list[str] | None = None, timeout_s: float,
) -> list[CheckResult]:
    request = {
        "mode": "inspect",
        "class_name": spec.class_name,
        "sizes": list(sizes.as_args()),
        "params": list(spec.param_paths),
        "linear_readout": spec.linear_readout,
        "init_repeats": INIT_REPEATS,
    }
    inspect = call_probe(runner, request, {}, timeout_s=timeout_s)
    if not inspect.ok:
        return _transport_failure(spec, inspect)

    defined = _check_defined(spec, sizes, inspect)
    if not defined.passed:
        skipped = [result(f"{spec.prefix}.{n}", Status.SKIPPED, "skipped.not_defined", cls=spec.class_name)
                   for n in CHECK_NAMES[1:]]
        return [defined, *skipped]

    params = check_params(spec, sizes, inspect)
    init = check_init(spec, inspect)
    no_builtin = check_no_builtin(spec, inspect, source, elsewhere=elsewhere)

    unusable = [p for p in spec.param_paths if p not in params.layouts]
    if unusable:
        # Weights we cannot place cannot be set, so the equations cannot be judged.
        forward = result(f"{spec.prefix}.forward", Status.SKIPPED, "skipped.params", names=", ".join(unusable))
        grad = result(f"{spec.prefix}.grad", Status.SKIPPED, "skipped.params", names=", ".join(unusable))
        device = result(f"{spec.prefix}.device", Status.SKIPPED, "skipped.params", names=", ".join(unusable))
        return [defined, params.result, init, forward, grad, no_builtin, device]

    data = oracle.probe_data(spec, sizes, seed)
    run_req, arrays = run_request(spec, sizes, data, params.layouts, _device_of(runner))
    run = call_probe(runner, run_req, arrays, timeout_s=timeout_s)
    if not run.ok:
        failed = {r.id: r for r in _transport_failure(spec, run)}
        return [defined, params.result, init, failed[f"{spec.prefix}.forward"], failed[f"{spec.prefix}.grad"],
                no_builtin, failed[f"{spec.prefix}.device"]]
    # Judged again with what the watched forward pass ran (the probe's `observed` step).
    no_builtin = check_no_builtin(spec, inspect, source, elsewhere=elsewhere, observed=run.steps.get("observed"))
    view = view_run(run)
    forward_outcome = check_forward(oracle, spec, data, view)
    grad = check_grad(oracle, spec, data, view, params.layouts, params.untrained, sizes)
    device = _device(runner, spec, sizes, data, view, timeout_s)
    return [defined, params.result, init, forward_outcome.result, grad, no_builtin, device]


def _device(runner: KernelRunner, spec: ModelSpec, sizes: Sizes, data: ProbeData, view: RunView | None,
            timeout_s: float) -> CheckResult:
    """`*.device`, in the dtype the forward pass worked in; only when it worked on the grading device."""
    if view is None or not view.attempt.get("ok"):
        return skipped_device(spec)
    return run_device_check(runner, spec, sizes, data, str(view.attempt.get("dtype", "")), timeout_s=timeout_s)


def _device_of(runner: KernelRunner) -> str:
    """The kernel's grading device (KernelSession.device.torch_device), else cpu.

    Students write `.to(device)` with the notebook's global `device`, which the
    kernel points at the grading device; running the probe there too keeps
    such code working.
    """
    device = getattr(getattr(runner, "device", None), "torch_device", None)
    return device if isinstance(device, str) and device else "cpu"


def _check_defined(spec: ModelSpec, sizes: Sizes, reply: ProbeReply) -> CheckResult:
    check_id = f"{spec.prefix}.defined"
    info = reply.steps.get("construct", {})
    call = f"{spec.class_name}({', '.join(map(str, sizes.as_args()))})"
    if info.get("ok"):
        return result(check_id, Status.PASSED, "defined.ok", call=call)
    reason = info.get("reason", "")
    details = {k: v for k, v in info.items() if k != "ok"}
    if reason == "missing":
        return result(check_id, Status.FAILED, "defined.missing", details=details, cls=spec.class_name)
    if reason in ("not_class", "not_module"):
        return result(check_id, Status.FAILED, "defined.not_module", details=details, cls=spec.class_name,
                      found=str(info.get("found", "?")))
    if reason == "ctor_error":
        return result(check_id, Status.FAILED, "defined.ctor_error", details=details, call=call,
                      error=str(info.get("error", "")))
    return result(check_id, Status.ERROR, "kernel.no_result", details=details, cls=spec.class_name,
                  reason=str(info.get("error", "no report")))
