"""One torch thread per grading process.

Measured on the lab's 2-core machines: two intra-op threads made the lab's
small per-time-step recurrent loops 10 to 100 times slower than one.
"""
from __future__ import annotations

import os
import sys

THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    # numba (librosa's MFCC) starts its own pool otherwise
    "NUMBA_NUM_THREADS": "1",
}


def limit_env_threads(env: dict[str, str] | None = None) -> dict[str, str]:
    """Set the thread variables in `env` (default: this process's environment)."""
    target = os.environ if env is None else env
    target.update(THREAD_ENV)
    return target  # type: ignore[return-value]


def limit_torch_threads() -> None:
    """Pin torch (if it is importable) to one intra-op and one inter-op thread."""
    limit_env_threads()
    import torch

    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        # Only settable before the first parallel work; harmless when already fixed.
        pass


def limit_threads_without_importing_torch() -> None:
    """The thread variables now; torch pinned only if something already imported it.

    Importing torch costs the grader ~0.7 s before it can start the kernel; a self-check never needs torch in the
    grader's process, and where it does (the live reference), torch reads OMP_NUM_THREADS=1 when it is imported.
    """
    limit_env_threads()
    if "torch" in sys.modules:
        limit_torch_threads()
