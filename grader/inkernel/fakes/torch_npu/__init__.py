"""A stand-in for Huawei's torch_npu, for machines without an NPU.

`import torch_npu` succeeds, `torch.npu` exists and reports no device, and
`.npu()` moves to the grading device (GRADER_TORCH_DEVICE, set by the grader).
Device strings 'npu'/'npu:N' in cell code are rewritten by the kernel's AST
transformer; on a CPU grading device, renaming privateuse1 to 'npu' also keeps
`torch.device('npu')` valid where the rewrite does not reach (code run through
exec()). Not on CUDA: measured on an H100 with torch 2.11, once privateuse1 is
renamed every backward pass over CUDA tensors fails with "PyTorch is not linked
with support for npu devices" (autograd's stream handling then takes the
renamed backend, which has no device guard, for the accelerator), so the
reference scored 62/100 there.
"""
from __future__ import annotations

import os
import sys

import torch
from torch_npu import npu

__version__ = "0.0.0+grader.fake"
GRADING_DEVICE = os.environ.get("GRADER_TORCH_DEVICE", "cpu")


def _to_grading_device(self, *args, **kwargs):
    return self.to(GRADING_DEVICE)


def renames_privateuse1(grading_device: str) -> bool:
    return grading_device == "cpu" or grading_device.startswith("cpu:")


def _register() -> None:
    if renames_privateuse1(GRADING_DEVICE):
        try:
            torch.utils.rename_privateuse1_backend("npu")
        except Exception:  # already renamed (the module was reloaded): nothing to do
            pass
    try:
        torch._register_device_module("npu", npu)
    except Exception:
        # Not renamed, "npu" is no device type torch knows, so it refuses to register
        # the module: attach it the way that function would have.
        torch.npu = npu
        sys.modules["torch.npu"] = npu
    torch.Tensor.npu = _to_grading_device
    torch.nn.Module.npu = _to_grading_device


_register()
