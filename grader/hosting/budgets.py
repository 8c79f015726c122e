"""A kernel's disk, file and shared-memory budgets, measured from outside it.

RLIMIT_FSIZE bounds one file and RLIMIT_DATA private memory; what they miss is
measured here, every half second by the watchdog and once more at the end of
each notebook cell: the bytes and entries of every host folder the kernel can
write (walked without following links, nesting past 64 levels is a trip of its
own), files it deleted but keeps open, and shared memory (RLIMIT_DATA does not
count a MAP_SHARED block: 2 GiB were fully touched under a 1 GiB limit, measured).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from grader import untrusted_fs
from grader.hosting.process_usage import shared_memory_bytes, unlinked_open_bytes

log = logging.getLogger(__name__)

CHECK_EVERY_S = 0.5
# How many entries one look walks, and the most a kernel may create in its folders.
MAX_ENTRIES = 100_000
# Folders nested deeper than this stop the kernel: the walk holds a descriptor per level,
# and no lab needs more than a handful.
MAX_DEPTH = 64


@dataclass
class KernelBudgets:
    """The disk and shared-memory budgets of one kernel.

    folders: every host folder the kernel can write; pids: its processes now;
    extra_files: files of ours it writes into (its log), counted too.
    """

    disk_bytes: int
    memory_bytes: int
    folders: Callable[[], list[Path]]
    pids: Callable[[], list[int]]
    extra_files: Callable[[], list[Path]] = lambda: []
    _base: int = 0
    _disk_checked_at: float = 0.0
    _shmem_checked_at: float = 0.0

    def start(self) -> None:
        """What the folders hold before the kernel runs (the dataset copy, the numba cache) is not charged."""
        self._base = self.usage().bytes

    def usage(self) -> untrusted_fs.Usage:
        total = untrusted_fs.Usage()
        for folder in self.folders():
            total += untrusted_fs.usage(folder, max_entries=MAX_ENTRIES - total.entries, max_depth=MAX_DEPTH)
        return total

    def over_disk(self, throttled: bool = True) -> bool:
        """Whether the kernel's files grew past disk_bytes or MAX_ENTRIES, or nest too deep."""
        if throttled and time.monotonic() - self._disk_checked_at < CHECK_EVERY_S:
            return False
        self._disk_checked_at = time.monotonic()
        found = self.usage()
        if found.too_deep:
            return True
        used = found.bytes + unlinked_open_bytes(self.pids())
        for path in self.extra_files():
            try:
                used += path.stat().st_size
            except OSError:
                pass
        return used - self._base > self.disk_bytes or found.entries >= MAX_ENTRIES

    def over_shared_memory(self, throttled: bool = True) -> bool:
        """Whether the kernel's processes hold more shared memory than its memory limit."""
        if throttled and time.monotonic() - self._shmem_checked_at < CHECK_EVERY_S:
            return False
        self._shmem_checked_at = time.monotonic()
        return shared_memory_bytes(self.pids()) > self.memory_bytes

    def tripped_now(self) -> str | None:
        """Both checks at once, unthrottled (the end of a cell): the name of the one over its budget, if any."""
        for name, check in (("disk", self.over_disk), ("shmem", self.over_shared_memory)):
            try:
                hit = check(throttled=False)
            except Exception:  # as in the watchdog: a failing check must not fail the cell, but leaves a line
                log.exception("budget check %r failed at the end of a cell", name)
                hit = False
            if hit:
                return name
        return None
