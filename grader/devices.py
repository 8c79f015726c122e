"""Which device the student's kernel computes on: npu, cuda or cpu.

The lab is written for a Huawei NPU. The grader runs it wherever it is: on a
machine with a working torch_npu it uses the NPU as-is; elsewhere the kernel
gets a fake torch_npu and every 'npu' device is mapped to the device chosen here.
"""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from grader.errors import BadInputError
from grader.messages import DEFAULT_LANGUAGE, Msg, render

DeviceKind = Literal["npu", "cuda", "cpu"]

_REQUEST = re.compile(r"^(auto|cpu|cuda|npu)(?::(\d+))?$")

# Importing the real torch_npu can break `import torch` on a machine without
# CANN, so it is only ever probed in a throwaway interpreter.
_NPU_PROBE = (
    "import torch, torch_npu\n"
    "print(int(torch.npu.is_available()) * torch.npu.device_count())\n"
)
_NPU_PROBE_TIMEOUT_S = 120


@dataclass(frozen=True)
class DeviceChoice:
    """The grading device: its kind, the string torch understands, and why it was chosen."""

    kind: DeviceKind
    torch_device: str
    reason: Msg


def npu_device_count() -> int:
    """How many NPUs a real torch_npu reports (0 when torch_npu is absent or broken)."""
    if importlib.util.find_spec("torch_npu") is None:
        return 0
    try:
        done = subprocess.run(
            [sys.executable, "-c", _NPU_PROBE],
            capture_output=True,
            text=True,
            timeout=_NPU_PROBE_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired):
        return 0
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines or not lines[-1].isdigit():
        return 0
    return int(lines[-1])


def cuda_device_count() -> int:
    """How many CUDA devices torch sees (0 without a CUDA build or driver)."""
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def nvidia_device_nodes() -> bool:
    """Whether the NVIDIA driver made device nodes here (/dev/nvidia0, ...), without importing torch."""
    return any(Path("/dev").glob("nvidia[0-9]*"))


def resolve_device(requested: str, lang: str = DEFAULT_LANGUAGE) -> DeviceChoice:
    """Turn 'auto', 'cpu', 'cuda[:N]' or 'npu[:N]' into a DeviceChoice.

    'auto' prefers a real NPU, else the CPU (`_auto` says why not CUDA). Asking for a device
    that is not there raises BadInputError rather than quietly grading elsewhere.
    """
    match = _REQUEST.match(requested.strip().lower())
    if match is None:
        raise BadInputError(render(Msg("exec.device_unknown", {"device": requested}), lang))
    kind, index_text = match.group(1), match.group(2)
    index = int(index_text or 0)
    if kind == "auto":
        return _auto()
    if kind == "cpu":
        return DeviceChoice("cpu", "cpu", Msg("exec.device_requested", {"device": "cpu"}))
    count = npu_device_count() if kind == "npu" else cuda_device_count()
    if index >= count:
        key = "exec.device_no_npu" if kind == "npu" else "exec.device_no_cuda"
        raise BadInputError(render(Msg(key, {"device": requested, "count": count}), lang))
    device = f"{kind}:{index}"
    return DeviceChoice(kind, device, Msg("exec.device_requested", {"device": device}))  # type: ignore[arg-type]


def _auto() -> DeviceChoice:
    """A real NPU (the lab's own device: the notebook runs as students run it), else the CPU.

    Not CUDA: for the lab's small recurrent models the accelerator is the slow path. Measured on an H100
    machine, `grader check` took 44.8 s with --device cuda against 10.5 s on these 2-core CPUs (31 s of it
    running the notebook: every step of the per-time-step loops launches tiny kernels). `--device cuda` still
    uses it when asked.
    """
    if npu_device_count() > 0:
        return DeviceChoice("npu", "npu:0", Msg("exec.device_auto_npu"))
    # Asking torch costs an `import torch` (~0.7 s before the kernel can start); without an NVIDIA device node
    # there is nothing to ask about, and the answer only words the note.
    if nvidia_device_nodes() and cuda_device_count() > 0:
        return DeviceChoice("cpu", "cpu", Msg("exec.device_auto_cpu_not_cuda"))
    return DeviceChoice("cpu", "cpu", Msg("exec.device_auto_cpu"))
