"""A pids cgroup per kernel: the bound on how many tasks a root grader's kernel may run (a fork bomb stops here).

RLIMIT_NPROC does not bind processes whose real uid is root, and a root grader's sandboxed kernel is root
outside its user namespace; see grader/sandbox.py for where this layer sits among the others.
"""
from __future__ import annotations

import itertools
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

_CGROUP_ROOT = Path("/sys/fs/cgroup")
_CGROUP_PREFIX = "grader-kernel-"
_cgroup_counter = itertools.count()


class PidsCgroup:
    """A pids cgroup holding one kernel and everything it starts: at most `limit` tasks (threads count).

    The kernel joins it between fork and exec (`join`, from the preexec
    function), so nothing it forks escapes. `kill` SIGKILLs every member;
    `remove` kills and deletes the cgroup. Folders left by a grader that was
    killed are removed by the next one (their names carry the creator's pid).
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, limit: int) -> PidsCgroup | None:
        base = _pids_cgroup_base()
        if base is None:
            return None
        _remove_stale_cgroups(base)
        path = base / f"{_CGROUP_PREFIX}{os.getpid()}-{next(_cgroup_counter)}"
        try:
            path.mkdir()
        except OSError:
            return None
        try:
            (path / "pids.max").write_text(str(int(limit)), encoding="ascii")
        except OSError:
            _rmdir(path)
            return None
        return cls(path)

    def join_function(self) -> Callable[[], None]:
        """A function for the child between fork and exec: move itself into the cgroup."""
        procs = str(self.path / "cgroup.procs")

        def join() -> None:
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, str(os.getpid()).encode("ascii"))
            finally:
                os.close(fd)

        return join

    def members(self) -> list[int]:
        try:
            text = (self.path / "cgroup.procs").read_text(encoding="ascii")
        except OSError:
            return []
        return [int(x) for x in text.split()]

    def peak(self) -> int | None:
        try:
            return int((self.path / "pids.peak").read_text(encoding="ascii"))
        except (OSError, ValueError):
            return None

    def kill(self) -> None:
        """SIGKILL every task in the cgroup, including forks that are still appearing."""
        kill_file = self.path / "cgroup.kill"  # cgroup v2: atomic
        if kill_file.exists():
            try:
                kill_file.write_text("1", encoding="ascii")
            except OSError:
                pass
        for _ in range(50):  # v1: a fork bomb races us, but pids.max bounds it and each round kills all
            members = self.members()
            if not members:
                return
            for pid in members:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.02)

    def remove(self) -> None:
        self.kill()
        for _ in range(100):  # dying tasks leave the cgroup asynchronously
            if _rmdir(self.path) or not self.path.exists():
                return
            time.sleep(0.02)


def _rmdir(path: Path) -> bool:
    try:
        os.rmdir(path)
        return True
    except OSError:
        return False


def _pids_cgroup_base() -> Path | None:
    """Our own cgroup in a hierarchy with the pids controller, if we may create children in it."""
    try:
        lines = Path("/proc/self/cgroup").read_text(encoding="ascii").splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, rel = line.split(":", 2)
        if "pids" in controllers.split(","):  # v1
            base = _CGROUP_ROOT / "pids" / rel.lstrip("/")
            if os.access(base, os.W_OK):
                return base
    for line in lines:
        hierarchy, controllers, rel = line.split(":", 2)
        if hierarchy == "0" and controllers == "":  # v2: children get pids.max only if delegated to them
            for root in (_CGROUP_ROOT, _CGROUP_ROOT / "unified"):
                base = root / rel.lstrip("/")
                try:
                    enabled = (base / "cgroup.subtree_control").read_text(encoding="ascii").split()
                except OSError:
                    continue
                if "pids" in enabled and os.access(base, os.W_OK):
                    return base
    return None


def _remove_stale_cgroups(base: Path) -> None:
    try:
        entries = [e for e in os.listdir(base) if e.startswith(_CGROUP_PREFIX)]
    except OSError:
        return
    for name in entries:
        owner = name[len(_CGROUP_PREFIX):].split("-", 1)[0]
        if owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
            stale = PidsCgroup(base / name)
            stale.kill()
            _rmdir(stale.path)
