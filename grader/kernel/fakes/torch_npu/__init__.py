"""A stand-in for Huawei's torch_npu, for machines without an NPU.

`import torch_npu` succeeds, `torch.npu` exists and reports no device, and
`.npu()` moves to the grading device (GRADER_TORCH_DEVICE, set by the grader).
Device strings 'npu'/'npu:N' in cell code are rewritten by the kernel's AST
transformer; renaming privateuse1 to 'npu' keeps `torch.device('npu')` valid
even where the rewrite does not reach (code run through exec()).
"""
from __future__ import annotations

import os

import torch

from torch_npu import npu

__version__ = "0.0.0+grader.fake"
GRADING_DEVICE = os.environ.get("GRADER_TORCH_DEVICE", "cpu")


def _to_grading_device(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003 - mirrors Tensor.npu
    return self.to(GRADING_DEVICE)


def _register() -> None:
    try:
        torch.utils.rename_privateuse1_backend("npu")
    except Exception:  # already renamed (the module was reloaded): nothing to do
        pass
    try:
        torch._register_device_module("npu", npu)
    except Exception:
        pass
    torch.Tensor.npu = _to_grading_device
    torch.nn.Module.npu = _to_grading_device


_register()
