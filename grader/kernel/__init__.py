"""Code that runs inside the student's kernel, and how that kernel is launched.

Modules here (except launch.py) are imported by the kernel's startup file, in
the student's process: they must not import the rest of the grader, and they
must never raise into the student's session (a failing shim is worse than none).

- transforms.py   IPython AST transformers: npu -> grading device, epoch cap
- shell_shims.py  `!cmd`, `%pip`, `%%bash`, ... are skipped instead of run
- startup.py      installs the above, pins torch to one thread
- fakes/          a stand-in torch_npu package, put on sys.path without an NPU
- launch.py       grader side: kernelspec, environment, rlimits of the kernel
"""
from __future__ import annotations

from pathlib import Path

KERNEL_DIR = Path(__file__).resolve().parent
FAKES_DIR = KERNEL_DIR / "fakes"
