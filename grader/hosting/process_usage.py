"""What a kernel's processes hold that no folder shows: files deleted but kept open, shared memory.

Read from /proc for the kernel's processes (its pids cgroup, or its process group), for the disk and memory
budgets of grader/hosting/budgets.py. Everything read is capped: the student names its processes and opens its files.
"""
from __future__ import annotations

import os
import stat

# At most this many open files are looked at per budget check (1,024 per process, 256 processes at most).
_MAX_OPEN_FILES_SEEN = 20_000


def unlinked_open_bytes(pids: list[int]) -> int:
    """Disk (or RAM, for a memfd) held by files the processes keep open after deleting them.

    Such a file is in no folder, so walking folders never sees it: 640 MiB held that way passed a 300 MiB
    budget (measured). stat() of /proc/<pid>/fd/<n> reads the open file's inode without opening it.
    """
    total = seen = 0
    for pid in pids:
        try:
            with os.scandir(f"/proc/{int(pid)}/fd") as it:
                for entry in it:
                    seen += 1
                    if seen > _MAX_OPEN_FILES_SEEN:
                        return total
                    try:
                        info = os.stat(entry.path)
                    except OSError:
                        continue
                    if stat.S_ISREG(info.st_mode) and info.st_nlink == 0:
                        total += getattr(info, "st_blocks", 0) * 512 or info.st_size
        except OSError:
            continue
    return total


def shared_memory_bytes(pids: list[int]) -> int:
    """Shared memory resident in the processes (RssShmem of /proc/<pid>/status; shared pages count per process)."""
    total = 0
    for pid in pids[:4096]:
        try:
            with open(f"/proc/{int(pid)}/status", "rb") as fh:
                status = fh.read(8192)
        except OSError:
            continue
        # At a line's start: the first line is the process's name, which the student chooses.
        at = status.find(b"\nRssShmem:")
        if at >= 0:
            digits = status[at + 10:at + 40].split(b"kB", 1)[0].strip()
            if digits.isdigit():
                total += int(digits) * 1024
    return total


def process_group_members(pgid: int, limit: int = 4096) -> list[int]:
    """Processes whose process group is `pgid` (read from /proc, at most `limit` looked at)."""
    members = []
    try:
        names = [n for n in os.listdir("/proc") if n.isdigit()][:limit * 8]
    except OSError:
        return []
    for name in names:
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                fields = fh.read(1024).rsplit(b")", 1)[-1].split()
        except OSError:
            continue
        if len(fields) > 2 and fields[2] == str(pgid).encode():
            members.append(int(name))
            if len(members) >= limit:
                break
    return members
