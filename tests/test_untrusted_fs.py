"""The grader's one channel into folders the kernel can write: links refused, FIFOs never waited on, reads capped,
removal and counting that finish whatever the kernel built (grader/untrusted_fs.py)."""
from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from grader.untrusted_fs import UnsafeFile, UntrustedDir, remove_child, remove_tree, usage


@pytest.fixture()
def host(tmp_path: Path) -> Path:
    """A folder standing for the host: nothing may ever be written, read or removed here through a link."""
    folder = tmp_path / "host"
    folder.mkdir()
    (folder / "secret.txt").write_text("host data")
    return folder


@pytest.fixture()
def kernel(tmp_path: Path) -> Path:
    folder = tmp_path / "kernel"
    folder.mkdir()
    return folder


def _host_untouched(host: Path) -> None:
    assert sorted(p.name for p in host.iterdir()) == ["secret.txt"]
    assert (host / "secret.txt").read_text() == "host data"


def test_reads_refuse_links_fifos_and_oversize_without_blocking(kernel: Path, host: Path) -> None:
    (kernel / "link").symlink_to(host / "secret.txt")
    os.mkfifo(kernel / "fifo")
    (kernel / "big").write_bytes(b"x" * 1001)
    (kernel / "ok").write_bytes(b"fine")
    with UntrustedDir.open(kernel) as folder:
        for name in ("link", "fifo", "big", "absent", "../host/secret.txt"):
            with pytest.raises(UnsafeFile):
                folder.read_bytes(name, 1000)
        assert folder.read_bytes("ok", 1000) == b"fine"


def test_a_fifo_fed_forever_is_refused_not_read(kernel: Path) -> None:
    os.mkfifo(kernel / "flood")
    stop = threading.Event()

    def feed() -> None:  # a writer that would keep a blocking reader busy forever
        try:
            fd = os.open(kernel / "flood", os.O_WRONLY)
        except OSError:
            return
        try:
            while not stop.is_set():
                os.write(fd, b"x" * 65536)
        except OSError:
            pass
        finally:
            os.close(fd)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    with UntrustedDir.open(kernel) as folder, pytest.raises(UnsafeFile, match="regular"):
        folder.read_bytes("flood", 2**20)
    stop.set()
    os.open(kernel / "flood", os.O_RDONLY | os.O_NONBLOCK)  # lets a writer still in open() go


def test_writes_never_go_through_a_planted_link_or_fifo(kernel: Path, host: Path) -> None:
    (kernel / "train_x.npy").symlink_to(host / "planted.npy")
    os.mkfifo(kernel / "request.json")
    with UntrustedDir.open(kernel) as folder:
        with pytest.raises(OSError):
            folder.save_npy("train_x.npy", np.zeros(3))
        with pytest.raises(OSError):
            folder.write_bytes("request.json", b"{}")
    _host_untouched(host)


def test_a_folder_swapped_for_a_link_is_refused(kernel: Path, host: Path) -> None:
    (kernel / ".cache").symlink_to(host)
    with UntrustedDir.open(kernel) as folder:
        with pytest.raises(OSError):
            folder.make_dirs(".cache/numba")
        with pytest.raises(UnsafeFile):
            folder.child(".cache")
    _host_untouched(host)
    with pytest.raises(UnsafeFile):
        UntrustedDir.open(kernel / ".cache")


def test_copying_a_cache_refuses_a_planted_link(tmp_path: Path, kernel: Path, host: Path) -> None:
    source = tmp_path / "warm"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "a.nbi").write_bytes(b"cache")
    (source / "b.nbc").write_bytes(b"cache")
    (kernel / "sub").symlink_to(host)
    with UntrustedDir.open(kernel) as folder, pytest.raises(OSError):
        folder.copy_tree_from(source)
    _host_untouched(host)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    with UntrustedDir.open(fresh) as folder:
        assert folder.copy_tree_from(source) == 2
    assert (fresh / "sub" / "a.nbi").read_bytes() == b"cache"


def _deep(root: Path, depth: int) -> None:
    # Built relative to a descriptor: a path 3,000 levels long is longer than PATH_MAX.
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):
        os.mkdir("d", dir_fd=fd)
        nxt = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nxt
    with open(os.open("leaf", os.O_WRONLY | os.O_CREAT, dir_fd=fd), "w") as fh:
        fh.write("x")
    os.close(fd)


def test_removal_of_a_3000_deep_tree_with_links_and_fifos(kernel: Path, host: Path) -> None:
    _deep(kernel, 3000)
    (kernel / "to_host").symlink_to(host)
    (kernel / "to_file").symlink_to(host / "secret.txt")
    os.mkfifo(kernel / "fifo")
    locked = kernel / "locked"
    (locked / "inner").mkdir(parents=True)
    (locked / "inner" / "f").write_text("x")
    os.chmod(locked / "inner", 0)
    os.chmod(locked, 0o500)
    assert remove_tree(kernel)
    assert not kernel.exists()
    _host_untouched(host)


def test_removal_of_many_files_and_a_link_in_place_of_the_folder(kernel: Path, host: Path, tmp_path: Path) -> None:
    with UntrustedDir.open(kernel) as folder:
        for i in range(20_000):
            folder.write_bytes(f"f{i}", b"")
    assert remove_tree(kernel) and not kernel.exists()
    swapped = tmp_path / "swapped"
    swapped.symlink_to(host)
    assert remove_tree(swapped) and not swapped.exists()
    _host_untouched(host)


def test_removal_stops_at_its_deadline_and_says_so(kernel: Path, caplog: pytest.LogCaptureFixture) -> None:
    for i in range(2000):
        (kernel / f"f{i}").write_bytes(b"")
    assert remove_tree(kernel, deadline_s=0) is False
    assert "gave up" in caplog.text


def test_remove_child_of_a_held_folder(kernel: Path) -> None:
    (kernel / "probe" / "out").mkdir(parents=True)
    with UntrustedDir.open(kernel) as folder:
        assert remove_child(folder, "probe")
        assert remove_child(folder, "absent")
    assert list(kernel.iterdir()) == []


def test_usage_counts_without_following_links_and_flags_deep_trees(kernel: Path, host: Path) -> None:
    (host / "big").write_bytes(b"x" * 100_000)
    (kernel / "to_host").symlink_to(host)
    (kernel / "own").write_bytes(b"y" * 10_000)
    found = usage(kernel, max_entries=1000)
    assert found.entries == 2 and 10_000 <= found.bytes < 100_000 and not found.too_deep
    _deep(kernel, 100)
    deep = usage(kernel, max_entries=10_000, max_depth=64)
    assert deep.too_deep
    assert usage(kernel, max_entries=10, max_depth=1000).entries == 10


def test_socket_folders_of_a_grader_that_is_gone_are_removed_by_the_next(tmp_path: Path, monkeypatch) -> None:
    import subprocess
    import sys
    import tempfile

    from grader import sandbox

    short = Path(tempfile.mkdtemp(prefix="gkt-", dir="/tmp"))  # short enough to hold socket folders itself
    tmp_path = short
    monkeypatch.setattr(tempfile, "tempdir", str(short))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"gk-{gone.stdout.strip()}-abcd" / "s"
    stale.mkdir(parents=True)
    (stale / "k-1").write_text("")
    alive = tmp_path / f"gk-{os.getpid()}-efgh"
    alive.mkdir()
    unowned = tmp_path / "gk-oldstyle"
    unowned.mkdir()
    fresh = sandbox.make_ipc_dir()
    assert not stale.parent.exists() and alive.exists() and unowned.exists()
    assert fresh.parent.name.startswith(f"gk-{os.getpid()}-") and fresh.parent.stat().st_mode & 0o777 == 0o700
    assert remove_tree(short)


def test_a_cache_file_that_vanishes_while_copied_is_skipped_not_fatal(tmp_path, monkeypatch):
    """numba in a parallel grader renames its temporary files into the shared warm cache: a file listed a
    moment ago can be gone when it is opened. The kernel's copy then lacks it (numba recompiles it); the
    grading must go on. (Once, on a cold CI machine, it stopped a check with exit 3.)"""
    import builtins

    import grader.untrusted_fs as ufs

    source = tmp_path / "warm"
    source.mkdir()
    (source / "kept.nbi").write_bytes(b"index")
    (source / "gone.tmp").write_bytes(b"temporary")
    real_open = builtins.open

    def vanishing(path, *args, **kwargs):
        if str(path).endswith("gone.tmp"):
            raise FileNotFoundError(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(ufs, "open", vanishing, raising=False)
    (tmp_path / "kernel").mkdir()
    with ufs.UntrustedDir.open(tmp_path / "kernel") as folder:
        assert folder.copy_tree_from(source) == 1
    assert sorted(p.name for p in (tmp_path / "kernel").iterdir()) == ["kept.nbi"]
