"""What a kernel's processes hold that no folder shows (grader/hosting/process_usage.py)."""
from __future__ import annotations

import os
from pathlib import Path


def test_files_deleted_but_held_open_are_counted(tmp_path: Path) -> None:
    from grader.hosting.process_usage import unlinked_open_bytes

    before = unlinked_open_bytes([os.getpid()])
    fd = os.open(tmp_path / "hidden", os.O_CREAT | os.O_WRONLY)
    try:
        os.unlink(tmp_path / "hidden")
        os.write(fd, b"x" * 2**20)
        os.fsync(fd)
        assert unlinked_open_bytes([os.getpid()]) - before >= 2**20
    finally:
        os.close(fd)
    assert unlinked_open_bytes([os.getpid(), 2**22 + 7]) == before  # a pid that is gone counts nothing


def test_shared_memory_is_read_from_its_own_line_not_from_a_process_name() -> None:
    import ctypes

    from grader.hosting.process_usage import shared_memory_bytes

    libc = ctypes.CDLL(None)
    with open("/proc/self/comm") as fh:
        before = fh.read().strip()
    libc.prctl(15, b"RssShmem: 99999", 0, 0, 0)  # PR_SET_NAME: what a student's process can call itself
    try:
        assert shared_memory_bytes([os.getpid()]) < 90_000 * 1024
    finally:
        libc.prctl(15, before.encode(), 0, 0, 0)
