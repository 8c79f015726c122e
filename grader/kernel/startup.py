"""Prepare the student's kernel before the first cell; run from the IPython startup file.

Every step is independent and failure-tolerant: a broken shim must not stop
the student's notebook from running.
"""
from __future__ import annotations

import sys
from typing import Any

from grader.kernel import shell_shims, transforms


def _one_torch_thread() -> None:
    # Two intra-op threads made the lab's per-step loops 10-100x slower here.
    import torch

    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass


def _fake_npu(fakes_dir: str) -> None:
    sys.path.insert(0, fakes_dir)
    # A real torch_npu imported before now (it cannot have been) would win; make sure.
    sys.modules.pop("torch_npu", None)


def install(shell: Any, config: dict[str, Any]) -> list[str]:
    """Apply `config`; return the names of the steps that failed (for the grader's own log)."""
    steps = [("threads", _one_torch_thread), ("shell", lambda: shell_shims.install(shell))]
    if config.get("remap_npu"):
        device = config["device"]
        steps.append(("fake_npu", lambda: _fake_npu(config["fakes_dir"])))
        steps.append(("npu_ast", lambda: shell.ast_transformers.append(transforms.npu_transformer(device))))
    cap = int(config.get("epoch_cap") or 0)
    if cap > 0:
        steps.append(("epoch_cap", lambda: shell.ast_transformers.append(transforms.epoch_cap_transformer(cap))))
    failed = []
    for name, step in steps:
        try:
            step()
        except Exception:  # noqa: BLE001 - keep going; the grader notices missing effects
            failed.append(name)
    return failed
