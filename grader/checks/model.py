"""The model checks (rnn.* and lstm.*): probe the student's classes, judge here.

Per class, two probe calls into the kernel:
1. inspect: build `Cls(13, 32, 3)`; report parameters, module tree, initial
   values of a few fresh instances;
2. run: write fresh random weights in the student's layout, run forward and
   backward on fresh random inputs; return logits and gradients.
Everything else (reference answer, comparison, diagnosis) happens here.
"""
from __future__ import annotations

from grader.checks.builtin import check_no_builtin
from grader.checks.common import result
from grader.checks.equivalence import check_forward, check_grad, draw_data, new_seed, run_request, view_run
from grader.checks.initialization import check_init
from grader.checks.params import check_params
from grader.harvest import KERNEL_DIED, TIMED_OUT, KernelRunner, ProbeReply, call_probe
from grader.lab_api import CHECK_NAMES, LAB_SIZES, MODELS, ModelSpec, Sizes
from grader.result import CheckResult, Status

INSPECT_TIMEOUT_S = 60.0  # builds the class 4 times; the lab's constructors take milliseconds
RUN_TIMEOUT_S = 60.0  # a few forward passes of 6 steps, in up to two dtypes
INIT_REPEATS = 3


def run_model_checks(
    runner: KernelRunner,
    class_sources: dict[str, str],
    *,
    rng_seed: int | None = None,
    sizes: Sizes = LAB_SIZES,
) -> list[CheckResult]:
    """All rnn.* and lstm.* results, in the order of lab_api.CHECK_NAMES per class.

    `runner`: a kernel session after the notebook ran; `class_sources`: the
    classes' source from the static notebook extraction (for the no_builtin
    scan); `rng_seed`: fixes the random data (tests); None draws it from
    `secrets`, fresh for this run.
    """
    seed = new_seed() if rng_seed is None else rng_seed
    results: list[CheckResult] = []
    for i, spec in enumerate(MODELS):
        results.extend(check_model(runner, spec, class_sources.get(spec.class_name), seed + i, sizes))
    return results


def _all(spec: ModelSpec, status: Status, key: str, **params: object) -> list[CheckResult]:
    return [result(f"{spec.prefix}.{n}", status, key, cls=spec.class_name, **params) for n in CHECK_NAMES]


def _transport_failure(spec: ModelSpec, reply: ProbeReply) -> list[CheckResult]:
    key = {KERNEL_DIED: "kernel.died", TIMED_OUT: "kernel.timeout"}.get(reply.failure, "kernel.no_result")
    return _all(spec, Status.ERROR, key, reason=reply.reason or reply.failure)


def check_model(
    runner: KernelRunner, spec: ModelSpec, source: str | None, seed: int, sizes: Sizes = LAB_SIZES
) -> list[CheckResult]:
    request = {
        "mode": "inspect",
        "class_name": spec.class_name,
        "sizes": list(sizes.as_args()),
        "params": list(spec.param_paths),
        "linear_readout": spec.linear_readout,
        "init_repeats": INIT_REPEATS,
    }
    inspect = call_probe(runner, request, {}, timeout_s=INSPECT_TIMEOUT_S)
    if not inspect.ok:
        return _transport_failure(spec, inspect)

    defined = _check_defined(spec, sizes, inspect)
    if not defined.passed:
        skipped = [result(f"{spec.prefix}.{n}", Status.SKIPPED, "skipped.not_defined", cls=spec.class_name)
                   for n in CHECK_NAMES[1:]]
        return [defined, *skipped]

    params = check_params(spec, sizes, inspect)
    init = check_init(spec, inspect)
    no_builtin = check_no_builtin(spec, inspect, source)

    unusable = [p for p in spec.param_paths if p not in params.layouts]
    if unusable:
        # Weights we cannot place cannot be set, so the equations cannot be judged.
        forward = result(f"{spec.prefix}.forward", Status.SKIPPED, "skipped.params", names=", ".join(unusable))
        grad = result(f"{spec.prefix}.grad", Status.SKIPPED, "skipped.params", names=", ".join(unusable))
        return [defined, params.result, init, forward, grad, no_builtin]

    data = draw_data(spec, sizes, seed)
    run_req, arrays = run_request(spec, sizes, data, params.layouts, _device_of(runner))
    run = call_probe(runner, run_req, arrays, timeout_s=RUN_TIMEOUT_S)
    if not run.ok:
        failed = _transport_failure(spec, run)
        return [defined, params.result, init, failed[3], failed[4], no_builtin]
    view = view_run(run)
    forward = check_forward(spec, data, view)
    grad = check_grad(spec, data, view, params.layouts, params.untrained, sizes)
    return [defined, params.result, init, forward.result, grad, no_builtin]


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
