"""The limits of one student kernel: time, memory, output, disk, processes.

The time limits and the epoch cap come from the rubric's [limits] table alone (`ExecutionLimits.from_rubric`):
a course sets them in one place. The rest (memory, output, disk, processes) are the grader's own, here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from grader.rubric import Limits

SandboxMode = Literal["auto", "require", "off"]

GIB = 2**30
MIB = 2**20
# RLIMIT_DATA, not RLIMIT_AS: measured on an H100 machine, a CUDA build of torch
# reserves 16 GiB of address space as soon as CUDA initialises (PROT_NONE, which
# RLIMIT_DATA does not count), and under a 4 GiB RLIMIT_AS that failed ("out of
# memory") even with --device cpu, so the lab's kernel died there. Its data
# segment stayed under 0.8 GiB; a 6 GiB numpy or torch allocation is still refused
# (MemoryError / RuntimeError) under a 4 GiB RLIMIT_DATA.
DEFAULT_MEMORY_BYTES = 4 * GIB
# Devices whose memory limit has been measured: NPU drivers (CANN) are untested here.
MEMORY_LIMITED_DEVICES = ("cpu", "cuda")

@dataclass(frozen=True)
class ExecutionLimits:
    """Time, memory and output limits of one kernel.

    epoch_cap: epoch loops run at most this many iterations (0 = no cap; else >= 2,
    since the lab divides by the last epoch index). memory_bytes: RLIMIT_DATA of
    the kernel on cpu and cuda (not yet on npu, unmeasured). kill_grace_s: how long after an interrupt the
    watchdog waits before killing the kernel's process group.
    """

    # The three a course sets ([limits] of its rubric: `from_rubric`); no default here, so none differs from it.
    cell_timeout_s: float
    notebook_timeout_s: float
    epoch_cap: int
    batch_cap: int = 0  # DataLoader passes inside a capped epoch loop: at most this many batches (0 = no cap)
    memory_bytes: int = DEFAULT_MEMORY_BYTES
    output_bytes_per_cell: int = 2 * MIB
    file_size_bytes: int = 1 * GIB
    open_files: int = 1024
    # Tasks (threads count) of the kernel and all it starts: a fork bomb stops here (pids cgroup, or
    # RLIMIT_NPROC for a non-root grader; see grader/sandbox.py). The lab's kernel runs ~20.
    processes: int | None = 256
    # What the kernel may add to its work folder (the dataset copy not counted): RLIMIT_FSIZE bounds one
    # file, this bounds them all; the watchdog measures every half second and stops the kernel past it.
    disk_bytes: int = 2 * GIB
    # One message from the kernel (one zmq frame): bigger ones are dropped by libzmq before they are
    # allocated here. See client.CappedKernelClient.
    message_bytes: int = 16 * MIB
    kill_grace_s: float = 5.0
    startup_timeout_s: float = 60.0
    # A backstop behind the wall-clock limits: CPU seconds over the kernel's whole life.
    cpu_time_s: float | None = 1800.0
    sandbox: SandboxMode = "auto"

    @classmethod
    def from_rubric(cls, limits: Limits, sandbox: SandboxMode = "auto") -> ExecutionLimits:
        return cls(cell_timeout_s=limits.cell_timeout_s, notebook_timeout_s=limits.notebook_timeout_s,
                   epoch_cap=limits.epoch_cap, batch_cap=limits.batch_cap, sandbox=sandbox)

    def __post_init__(self) -> None:
        if self.epoch_cap == 1 or self.epoch_cap < 0:
            raise ValueError("epoch_cap must be 0 (no cap) or at least 2 (the lab divides by the last epoch)")
        if self.batch_cap == 1 or self.batch_cap < 0:
            raise ValueError("batch_cap must be 0 (no cap) or at least 2 (a loop may divide by the last batch index)")
        if self.cell_timeout_s <= 0 or self.notebook_timeout_s <= 0:
            raise ValueError("timeouts must be positive")
