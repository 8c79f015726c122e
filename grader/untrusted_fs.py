"""Every grader-side read, write, count and removal in a folder the student's kernel can write.

The grader runs outside the sandbox (often as root); the kernel, or a process it
forked, can change anything in its work folder, its socket folder and its
scratch folders at any moment: swap a file for a symlink to a host path or for a
FIFO, nest folders thousands deep, fill them with a million files. So nothing
here takes a path string into such a folder. Each folder is held by a directory
file descriptor opened by the grader, every name is one component resolved
against it with O_NOFOLLOW (a symlink is refused, never followed), every open is
O_NONBLOCK and checked with fstat (a FIFO or a device is refused, never waited
on), every read is capped, and walks never recurse in Python and stop at a
deadline or a count.

The folders themselves are made by the grader (mkdtemp) before any kernel runs,
so the path up to and including them is trusted; everything below is not.

One module, a little over 400 lines, because it is the one channel: a second
place that opens kernel-writable paths would be a second set of rules to audit.
"""
from __future__ import annotations

import contextlib
import errno
import io
import itertools
import logging
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
# How long a removal may take before it gives up (and logs what it left).
REMOVE_DEADLINE_S = 120.0
_names = itertools.count()


class UnsafeFile(OSError):
    """A name in a kernel-writable folder is missing, a link, not a regular file or folder, or too big."""


def _one_component(name: str) -> str:
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise UnsafeFile(errno.EINVAL, f"not a plain name: {name!r}")
    return name


class UntrustedDir:
    """A folder in kernel-writable territory, held open by its file descriptor.

    `path` is where the folder was when it was opened: for messages and for the
    path the kernel is told, never for the grader's own access.
    """

    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.path = path

    @classmethod
    def open(cls, path: Path) -> UntrustedDir:
        """Open a folder the grader made; a symlink in its place is refused."""
        try:
            return cls(os.open(path, _DIR_FLAGS), Path(path))
        except OSError as exc:
            raise UnsafeFile(exc.errno, f"{path}: {exc.strerror}") from None

    def __enter__(self) -> UntrustedDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    # -- folders ------------------------------------------------------------------------------

    def make_dir(self, name: str, mode: int = 0o700, *, exist_ok: bool = False) -> UntrustedDir:
        """Create (or, with exist_ok, reuse) the folder `name` here and open it."""
        try:
            os.mkdir(_one_component(name), mode, dir_fd=self.fd)
        except FileExistsError:
            if not exist_ok:
                raise
        return self.child(name)

    def make_dirs(self, relative: str, mode: int = 0o700) -> UntrustedDir:
        """`a/b/c` created component by component, each one checked; returns the last one, open."""
        current: UntrustedDir = self
        for part in Path(relative).parts:
            nxt = current.make_dir(part, mode, exist_ok=True)
            if current is not self:
                current.close()
            current = nxt
        return current if current is not self else self.child(".")

    def child(self, name: str) -> UntrustedDir:
        """Open the existing folder `name`; a symlink, a file or a FIFO in its place is refused."""
        if name != ".":
            _one_component(name)
        try:
            return UntrustedDir(os.open(name, _DIR_FLAGS, dir_fd=self.fd), self.path / name)
        except OSError as exc:
            raise UnsafeFile(exc.errno, f"{name}: {exc.strerror}") from None

    def exists(self, name: str) -> bool:
        try:
            os.stat(_one_component(name), dir_fd=self.fd, follow_symlinks=False)
            return True
        except OSError:
            return False

    # -- files --------------------------------------------------------------------------------

    def read_bytes(self, name: str, max_bytes: int) -> bytes:
        """The bytes of the regular file `name`, at most max_bytes (more is refused, not cut)."""
        try:
            fd = os.open(_one_component(name), _READ_FLAGS, dir_fd=self.fd)
        except OSError as exc:
            raise UnsafeFile(exc.errno, f"{name}: {exc.strerror}") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise UnsafeFile(errno.EINVAL, f"{name}: not a regular file")
            if info.st_size > max_bytes:
                raise UnsafeFile(errno.EFBIG, f"{name}: {info.st_size} bytes, more than the {max_bytes} allowed")
            chunks, size = [], 0
            while size <= max_bytes:
                chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        finally:
            os.close(fd)
        if size > max_bytes:
            raise UnsafeFile(errno.EFBIG, f"{name}: grew past {max_bytes} bytes while being read")
        return b"".join(chunks)

    def read_npy(self, name: str, max_bytes: int) -> np.ndarray:
        """A .npy array without pickles, from at most max_bytes."""
        raw = self.read_bytes(name, max_bytes)
        try:
            arr = np.load(io.BytesIO(raw), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise UnsafeFile(errno.EINVAL, f"{name}: not a .npy array ({exc})") from None
        if not isinstance(arr, np.ndarray):
            raise UnsafeFile(errno.EINVAL, f"{name}: not a .npy array")
        return arr

    def write_bytes(self, name: str, data: bytes, mode: int = 0o600) -> None:
        """Create `name` (it must not exist: a planted link or FIFO makes this fail, never write through)."""
        fd = os.open(_one_component(name), _WRITE_FLAGS, mode, dir_fd=self.fd)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)

    def save_npy(self, name: str, arr: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, arr, allow_pickle=False)
        self.write_bytes(name, buffer.getvalue())

    def copy_tree_from(self, source: Path, *, max_entries: int = 10_000) -> int:
        """Copy a trusted folder of the grader's (a warm cache) in here; returns the files copied.

        Each folder and file is created here with the checks above, so a link the
        kernel planted where a cache folder goes is refused instead of written through.
        """
        copied = 0
        stack: list[tuple[Path, UntrustedDir]] = [(Path(source), self)]
        try:
            while stack and copied < max_entries:
                src, dest = stack[-1]
                stack.pop()
                try:
                    for entry in os.scandir(src):
                        if entry.is_dir(follow_symlinks=False):
                            stack.append((Path(entry.path), dest.make_dir(entry.name, exist_ok=True)))
                        elif entry.is_file(follow_symlinks=False) and copied < max_entries:
                            try:
                                with open(entry.path, "rb") as fh:
                                    data = fh.read()
                            except FileNotFoundError:
                                # Gone since it was listed: numba in a parallel grader renames its temporary
                                # files into this shared cache. A cache missing one file only recompiles it.
                                continue
                            dest.write_bytes(entry.name, data)
                            copied += 1
                finally:
                    if dest is not self:
                        dest.close()
        finally:
            for _, dest in stack:
                if dest is not self:
                    dest.close()
        return copied


class HasWorkdir(Protocol):
    workdir: Path


@contextlib.contextmanager
def held_workdir(runner: HasWorkdir) -> Iterator[UntrustedDir]:
    """A runner's work folder as a descriptor: the one a KernelSession opened before its kernel ran, else a new one."""
    held = getattr(runner, "workdir_dir", None)
    if held is not None:
        yield held
        return
    with UntrustedDir.open(Path(runner.workdir)) as folder:
        yield folder


# --- counting ---------------------------------------------------------------------------------


@dataclass
class Usage:
    """What a kernel-writable folder holds: bytes on disk, entries, and whether the walk stopped early."""

    bytes: int = 0
    entries: int = 0
    too_deep: bool = False

    def __iadd__(self, other: Usage) -> Usage:
        self.bytes += other.bytes
        self.entries += other.entries
        self.too_deep = self.too_deep or other.too_deep
        return self


def usage(path: Path, *, max_entries: int, max_depth: int = 64) -> Usage:
    """Bytes and entries under `path`, links not followed, at most max_entries counted.

    The walk holds one descriptor per level, so it stops at max_depth and says so
    (`too_deep`): a folder tree deeper than that is itself over any sane budget.
    """
    result = Usage()
    try:
        root = UntrustedDir.open(path)
    except UnsafeFile:
        return result
    stack: list[tuple[UntrustedDir, Iterator[os.DirEntry[str]]]] = []
    try:
        stack.append((root, _scan(root)))
        while stack and result.entries < max_entries:
            folder, it = stack[-1]
            entry = next(it, None)
            if entry is None:
                stack.pop()
                folder.close()
                continue
            result.entries += 1
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            result.bytes += getattr(info, "st_blocks", 0) * 512 or info.st_size
            if stat.S_ISDIR(info.st_mode):
                if len(stack) >= max_depth:
                    result.too_deep = True
                    continue
                try:
                    sub = folder.child(entry.name)
                except UnsafeFile:
                    continue
                stack.append((sub, _scan(sub)))
    finally:
        for folder, _ in stack:
            folder.close()
    return result


def _scan(folder: UntrustedDir) -> Iterator[os.DirEntry[str]]:
    try:
        with os.scandir(folder.fd) as it:
            yield from it
    except OSError:
        return


# --- removing -----------------------------------------------------------------------------------


def remove_tree(path: Path, *, deadline_s: float = REMOVE_DEADLINE_S) -> bool:
    """Remove a folder the kernel could write, whatever it holds; True when it is gone.

    Never recurses and never follows a link: every sub-folder's content is moved
    up into the top folder (a rename, so the tree flattens as it goes) and the
    emptied folder removed, with two descriptors open at any time. A deep tree,
    a million files, links and FIFOs all cost one system call or two per entry.
    Past the deadline it stops and logs what it left; it never raises.
    """
    path = Path(path)
    try:
        parent = os.open(path.parent, _DIR_FLAGS)
    except OSError:
        return not os.path.lexists(path)
    try:
        return _remove_in(parent, path.name, time.monotonic() + deadline_s, str(path))
    except OSError as exc:
        log.warning("grader: could not remove %s: %s", path, exc)
        return False
    finally:
        os.close(parent)


def remove_child(parent: UntrustedDir, name: str, *, deadline_s: float = REMOVE_DEADLINE_S) -> bool:
    """remove_tree for the entry `name` of a held folder."""
    try:
        return _remove_in(parent.fd, _one_component(name), time.monotonic() + deadline_s, str(parent.path / name))
    except OSError as exc:
        log.warning("grader: could not remove %s: %s", parent.path / name, exc)
        return False


def _remove_in(parent: int, name: str, deadline: float, label: str) -> bool:
    try:
        top = os.open(name, _DIR_FLAGS, dir_fd=parent)
    except FileNotFoundError:
        return True
    except OSError as exc:
        if exc.errno in (errno.ENOTDIR, errno.ELOOP):  # a link or a file where the folder was
            os.unlink(name, dir_fd=parent)
            return True
        raise
    try:
        try:
            os.fchmod(top, 0o700)  # the kernel may have made its folder read-only
        except OSError:
            pass
        if not _empty(top, deadline):
            log.warning("grader: gave up removing %s after the %.0f s limit; what is left stays", label,
                        REMOVE_DEADLINE_S)
            return False
    finally:
        os.close(top)
    os.rmdir(name, dir_fd=parent)
    return True


def _empty(top: int, deadline: float) -> bool:
    """Empty the folder `top`; False if the deadline came first."""
    while True:
        with os.scandir(top) as it:
            batch = list(itertools.islice(it, 4096))
        if not batch:
            return True
        for entry in batch:
            if time.monotonic() > deadline:
                return False
            try:
                if entry.is_dir(follow_symlinks=False):
                    _hoist_and_remove(top, entry.name)
                else:
                    os.unlink(entry.name, dir_fd=top)
            except FileNotFoundError:
                continue
            except IsADirectoryError:  # was a file when listed, a folder now
                _hoist_and_remove(top, entry.name)


def _hoist_and_remove(top: int, name: str) -> None:
    """Move the folder's entries up into `top`, then remove the (now empty) folder."""
    try:
        sub = os.open(name, _DIR_FLAGS, dir_fd=top)
    except OSError as exc:
        if exc.errno in (errno.ENOTDIR, errno.ELOOP):
            os.unlink(name, dir_fd=top)
            return
        if exc.errno == errno.EACCES:  # a folder the kernel made unreadable; it is ours to fix
            _make_searchable(top, name)
            sub = os.open(name, _DIR_FLAGS, dir_fd=top)
        else:
            raise
    try:
        try:
            os.fchmod(sub, 0o700)  # a folder the kernel made read-only would refuse the moves below
        except OSError:
            pass
        while True:
            with os.scandir(sub) as it:
                batch = list(itertools.islice(it, 4096))
            if not batch:
                break
            for entry in batch:
                os.rename(entry.name, f".grader-rm-{os.getpid()}-{next(_names)}", src_dir_fd=sub, dst_dir_fd=top)
    finally:
        os.close(sub)
    os.rmdir(name, dir_fd=top)


def _make_searchable(parent: int, name: str) -> None:
    # O_PATH + /proc/self/fd: chmod reaches the folder itself even if it was swapped for a link
    # meanwhile (chmod of a link fails), never a host path a link points to.
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            os.chmod(f"/proc/self/fd/{fd}", 0o700)
    finally:
        os.close(fd)
