"""The grader side of the student's kernel: everything that starts it, talks to it, watches it and stops it.

Nothing here runs in the student's process (grader/inkernel/ does), except the
preexec function launch.py hands to Popen between fork and exec.

- limits.py        ExecutionLimits: time, memory, output, disk, processes (a rubric's [limits] sets them)
- launch.py        kernelspec, scrubbed environment, startup file, rlimits; copies grader/inkernel/ for the kernel
- workdir.py       the private work folder: the notebook and the dataset, the held-out split left out
- session.py       KernelSession: start, run the notebook cell by cell, run the grader's code, stop
- client.py        the Jupyter client: a cap per message and per cell, the cut-channel monitor
- watchdog.py      the thread that kills the kernel at a deadline or when a budget trips
- budgets.py       disk, file and shared-memory budgets, measured from outside the kernel
- process_usage.py what /proc says the kernel's processes hold (deleted open files, shared memory)
- streams.py       stream outputs as a terminal shows them, in linear time
- records.py       what running code produced: CellRecord, ExecutionResult, CodeResult
- numba_cache.py   the warm numba cache every kernel gets a private copy of

The isolation layers around the process (bubblewrap, the pids cgroup) are grader/sandbox.py and
grader/pids_cgroup.py.
"""
