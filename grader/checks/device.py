"""`*.device`: the forward pass keeps every tensor on the model's device.

A hidden state made with `torch.zeros(batch, hidden)` lives on the CPU. On the
CPU nothing is wrong; on the NPU (or CUDA) the student's own notebook crashes
the first time it meets the model's weights. Grading runs on CPUs, so the probe
(grader/inkernel/probe.py, mode `device`) moves the class's parameters and the
inputs to PyTorch's `meta` device, a device every build of torch has, with no
memory behind it, and runs the forward pass there. Every device the code names
(`device=...`, `.to(device)`, `.to(x.device)`, the notebook's `device`) is sent
to `meta` as well; a tensor created with no device stays on the CPU and the
first operation that mixes it with the rest raises. The probe reports that
operation's line and the line that created the CPU tensor.

Verdicts: passed (the forward pass ran on meta and its output is there),
failed (devices were mixed, or the output came back on another device), error
(the forward pass could not run on meta for another reason, for example
`.item()` on a tensor, which has no value there), skipped (the forward pass
does not run on the CPU either: the forward check reports that).
"""
from __future__ import annotations

import re
from typing import Any

from grader.checks.common import result, transport_key
from grader.harvest import KernelRunner, ProbeReply, call_probe
from grader.lab_api import ModelSpec, Sizes
from grader.messages import Msg
from grader.oracle.probe_data import ProbeData
from grader.result import CheckResult, Status
from grader.safe_text import safe_line

MAX_SITES = 3
MAX_CODE_CHARS = 200
MAX_ERROR_CHARS = 300
_DEVICE_TYPE = re.compile(r"[a-z_]{1,20}")
_STAND_IN = "meta"


def device_request(spec: ModelSpec, sizes: Sizes, data: ProbeData, dtype: str) -> dict[str, Any]:
    """The probe request: build the class, move it and the plain call's input to `meta`, run forward."""
    return {
        "mode": "device",
        "class_name": spec.class_name,
        "sizes": list(sizes.as_args()),
        "dtype": dtype if dtype in ("float64", "float32") else "float32",
        "args": [list(data.x.shape)],
    }


def run_device_check(runner: KernelRunner, spec: ModelSpec, sizes: Sizes, data: ProbeData, dtype: str, *,
                     timeout_s: float) -> CheckResult:
    reply = call_probe(runner, device_request(spec, sizes, data, dtype), {}, timeout_s=timeout_s)
    return check_device(spec, reply)


def skipped_device(spec: ModelSpec) -> CheckResult:
    """The forward pass fails on the grading device already: nothing to learn on another one."""
    return result(f"{spec.prefix}.device", Status.SKIPPED, "device.needs_forward", cls=spec.class_name)


def check_device(spec: ModelSpec, reply: ProbeReply) -> CheckResult:
    check_id = f"{spec.prefix}.device"
    if not reply.ok:
        return result(check_id, Status.ERROR, transport_key(reply), cls=spec.class_name,
                      reason=reply.reason or str(reply.failure))
    step = reply.steps.get("device")
    if not isinstance(step, dict) or not isinstance(step.get("ok"), bool):
        return result(check_id, Status.ERROR, "kernel.no_result", cls=spec.class_name, reason="no device report")
    if step["ok"]:
        return _ran(spec, step)
    return _did_not_run(spec, step)


def _ran(spec: ModelSpec, step: dict[str, Any]) -> CheckResult:
    check_id = f"{spec.prefix}.device"
    found = _device_type(step.get("output_device"))
    details: dict[str, Any] = {"stand_in": _STAND_IN, "output_device": found or "-"}
    if found == _STAND_IN and step.get("built") is True:
        return result(check_id, Status.PASSED, "device.ok", details=details, cls=spec.class_name)
    details["created_at"] = _sites(step.get("created"))
    return result(check_id, Status.FAILED, "device.output", _diagnosis(details["created_at"], False), details,
                  cls=spec.class_name, found=found or "-")


def _did_not_run(spec: ModelSpec, step: dict[str, Any]) -> CheckResult:
    check_id = f"{spec.prefix}.device"
    raw = step.get("error")
    # Cut before cleaning: a cut after it could split a control character's visible marker.
    error = safe_line(raw[:MAX_ERROR_CHARS]) if isinstance(raw, str) and raw else "-"
    at = _site(step.get("at"))
    details: dict[str, Any] = {"stand_in": _STAND_IN, "error": error}
    if at is not None:
        details["failed_at"] = at
    if step.get("mixed") is not True or step.get("built") is not True:
        return result(check_id, Status.ERROR, "device.not_run", details=details, cls=spec.class_name, error=error)
    created = _sites(step.get("created"))
    details["devices"] = [d for d in map(_device_type, _list(step.get("devices"))[:4]) if d]
    details["created_at"] = created
    diagnosis = _diagnosis(created, step.get("attribute") is True)
    where, key = (created[0], "device.mixed") if created else (at, "device.mixed_at")
    if where is None:
        return result(check_id, Status.FAILED, "device.mixed_unplaced", diagnosis, details, cls=spec.class_name)
    return result(check_id, Status.FAILED, key, diagnosis, details, cls=spec.class_name, line=where["line"],
                  code=where["code"] or "-")


def _diagnosis(created: list[dict[str, Any]], attribute: bool) -> Msg:
    """Made in forward without a device; a plain attribute model.to() does not move; or not known which."""
    if created:
        return Msg("checks.diag.device_created_on_cpu", {})
    return Msg("checks.diag.device_not_moved" if attribute else "checks.diag.device_on_cpu", {})


def _site(value: Any) -> dict[str, Any] | None:
    """A `{"line": n, "code": text}` from the kernel, validated; None when it is not one."""
    if not isinstance(value, dict):
        return None
    line, code = value.get("line"), value.get("code")
    if not isinstance(line, int) or isinstance(line, bool) or not 0 < line < 10**7 or not isinstance(code, str):
        return None
    return {"line": line, "code": safe_line(code[:MAX_CODE_CHARS])}  # cut first: a cut marker would mislead


def _sites(value: Any) -> list[dict[str, Any]]:
    return [s for s in map(_site, _list(value)[:MAX_SITES]) if s is not None]


def _device_type(value: Any) -> str | None:
    return value if isinstance(value, str) and _DEVICE_TYPE.fullmatch(value) else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
