"""Findings of an adversarial review of the grader's trusted side (after issue 12's first fixes): one test per
confirmed attack, each of which worked when it was found (the docstrings say what was measured) and is closed
now. Written like test_grader_side.py; attack cells are inline (they need values only the test knows).
"""
from __future__ import annotations

import os
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path

import attacks
import pytest
from advkit import Checked, assert_graded, cell, check_in_process, reference, require_sandbox, with_cells, write

WALL_S = 200


@pytest.fixture(autouse=True)
def _sandbox_is_active() -> None:
    require_sandbox()


def _grade(nb, folder: Path, name: str, rubric: Path) -> Checked:
    path = write(nb, folder, name)
    began = time.monotonic()
    checked = check_in_process(path, rubric)  # an exception here is the grader's exit 3
    assert time.monotonic() - began < WALL_S
    assert_graded(checked)
    return checked


def _last_cell(checked: Checked) -> dict:
    return cell(checked, len(reference().cells))


# -- 1. the kernel is host root (bwrap maps its uid to the grader's): set-uid root files, opened folders ------

SETUID_ROOT_SHELL = f"""\
import os, shutil, json, glob, time
from ipykernel import get_connection_file
sockets = os.path.dirname(json.load(open(get_connection_file()))["ip"])
for folder in (os.getcwd(), sockets):
    try:
        target = os.path.join(folder, "sh-{attacks.NONCE}")
        shutil.copy("/bin/sh", target)
        os.chmod(target, 0o6755)   # set-uid + set-gid: the file is owned by the host's root
        os.chmod(folder, 0o755)    # the grader's 0700 folder, opened to every local user
    except OSError as exc:
        print("refused", folder, exc)
time.sleep(3)                      # long enough for a local user (here: the test's watcher) to run it
print("planted")"""


class _SetuidWatcher:
    """Looks, while a grading runs, for set-uid/set-gid files and for grader folders opened to others."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.setuid: set[str] = set()
        self.opened: set[str] = set()
        self.ran_as_nobody: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for top in os.scandir(self.root):
                if not top.name.startswith(("grader-run-", "gk-")):
                    continue
                try:
                    info = os.stat(top.path, follow_symlinks=False)
                    if info.st_mode & 0o077:
                        self.opened.add(f"{top.name} {oct(info.st_mode)}")
                    for entry in os.scandir(top.path):
                        st = entry.stat(follow_symlinks=False)
                        if stat.S_ISREG(st.st_mode) and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
                            self.setuid.add(f"{entry.path} uid={st.st_uid} {oct(st.st_mode)}")
                            if not self.ran_as_nobody:
                                done = subprocess.run(["su", "nobody", "-s", "/bin/sh", "-c", f"{entry.path} -p -c id"],
                                                      capture_output=True, text=True, timeout=10)
                                self.ran_as_nobody.append(done.stdout.strip())
                except OSError:
                    continue
            time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.mark.kernel
def test_the_kernel_cannot_plant_a_setuid_root_file_or_open_the_graders_folders(contained, quick_rubric):
    """Found: inside bwrap the kernel's uid 1000 maps to the grader's uid 0, so its files are owned by the host's
    root and it owns the grader's work and socket folders (it can chmod them). It copied /bin/sh into its work
    folder as a set-uid/set-gid root file and made the folder 0755: on a host whose /tmp is not nosuid, any local
    user ran it with euid 0 (measured: `uid=65534(nobody) ... euid=0(root)`, read /etc/shadow)."""
    watcher = _SetuidWatcher(contained)
    try:
        _grade(with_cells(reference(), SETUID_ROOT_SHELL, at="end"), contained.parent, "attack_setuid_root",
               quick_rubric)
    finally:
        watcher.stop()
    assert watcher.setuid == set(), (watcher.setuid, watcher.ran_as_nobody)
    assert watcher.opened == set(), watcher.opened


# -- 2. iopub / shell messages the kernel forges crash the grader's nbclient loop ---------------------------

DISPLAY_NON_STRING = """\
from IPython.display import publish_display_data
publish_display_data({"text/plain": 5})
print("after")"""

FORGED_REPLY_FIELDS = """\
k = get_ipython().kernel
_real = k.do_execute
async def do_execute(*args, **kwargs):
    await _real(*args, **kwargs)
    return {"status": "error", "ename": 5, "evalue": {"not": "a string"}, "traceback": [1, 2],
            "execution_count": 1}
k.do_execute = do_execute"""


@pytest.mark.parametrize(("name", "source"), [
    ("display_non_string", DISPLAY_NON_STRING),
    ("forged_reply_fields", FORGED_REPLY_FIELDS),
])
@pytest.mark.kernel
def test_malformed_kernel_messages_are_a_verdict_not_exit_3(contained, quick_rubric, name, source):
    """Found: a display_data whose text/plain is a number (public IPython API) makes nbformat's validation raise
    inside nbclient's iopub task; nbclient re-raises it from execute_cell and KernelSession._execute catches only
    DeadKernelError, so `grader check` exits 3. Execute_reply fields of the wrong types (a patched
    do_execute: `ename` 5, `evalue` a dict) do the same: TypeError in _execute slicing evalue."""
    _grade(with_cells(reference(), source, at="end"), contained.parent, f"attack_{name}", quick_rubric)


# -- 3. a socket file swapped for a link: the grader's zmq reconnects through it to a host socket -------------

def ipc_link_to(host_socket: str) -> str:
    return f"""\
import os, json, socket, time
from ipykernel import get_connection_file
info = json.load(open(get_connection_file()))
paths = {{"%s-%d" % (info["ip"], info[p]) for p in ("control_port", "stdin_port", "hb_port")}}
for path in paths:
    os.symlink({host_socket!r}, path + ".new")
    os.rename(path + ".new", path)             # the socket file is now a link to a host socket
cut = 0
for fd in os.listdir("/proc/self/fd"):
    try:
        if not os.readlink("/proc/self/fd/" + fd).startswith("socket:"):
            continue
        sock = socket.socket(fileno=os.dup(int(fd)))
        if sock.family == socket.AF_UNIX and sock.getpeername() == "" and sock.getsockname() in paths:
            sock.shutdown(socket.SHUT_RDWR)   # an accepted connection of the grader's: cut, so it reconnects
            cut += 1
        sock.detach()
    except OSError:
        pass
time.sleep(3)
print("cut", cut)"""


@pytest.mark.kernel
def test_socket_files_swapped_for_links_never_connect_the_grader_to_a_host_socket(contained, quick_rubric):
    """Found: the kernel's socket folder is kernel-writable and the grader's zmq client connects by path. The
    kernel replaced its control/stdin/heartbeat socket files by symlinks to a host Unix socket it cannot see
    and cut the connections (those channels are not monitored); libzmq reconnected every 100 ms through the
    links, so the grader (root) connected to and wrote its ZMTP greeting into the host socket."""
    host_path = contained.parent / f"host-{attacks.NONCE}.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(host_path))
    server.listen(64)
    server.settimeout(0.2)
    got: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            conn.settimeout(0.5)
            try:
                got.append(conn.recv(64))
            except OSError:
                got.append(b"")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        _grade(with_cells(reference(), ipc_link_to(str(host_path)), at="end"), contained.parent,
               "attack_ipc_link", quick_rubric)
    finally:
        stop.set()
        thread.join(2)
        server.close()
        host_path.unlink()
    assert got == [], f"the grader connected {len(got)} times to a host socket, sending e.g. {got[:1]}"


# -- 4. deleted-but-open files: disk the budget never sees ------------------------------------------------------

UNLINKED_FILES = """\
import os
held = []
chunk = b"u" * 2**20
for n in range(10):
    fd = os.open("/tmp/hidden-%d" % n, os.O_CREAT | os.O_WRONLY)
    os.unlink("/tmp/hidden-%d" % n)            # gone from every folder the grader counts, still on the disk
    for _ in range(64):
        os.write(fd, chunk)
    held.append(fd)
import time; time.sleep(2)                     # several watchdog ticks
print("hidden MiB", 64 * len(held))"""


@pytest.mark.kernel
def test_deleted_but_open_files_count_against_the_disk_budget(contained, quick_rubric, monkeypatch):
    """Found: the budget walks folders, so a file the kernel unlinks while keeping it open is invisible to it.
    640 MiB held that way under a 300 MiB budget: no DiskLimit (RLIMIT_FSIZE bounds one file at 1 GiB, and
    1,024 open files allow ~1 TiB of the host's disk)."""
    from dataclasses import replace

    import grader.pipeline as pipeline

    plain = pipeline.execution_limits
    monkeypatch.setattr(pipeline, "execution_limits",
                        lambda *a, **k: replace(plain(*a, **k), disk_bytes=300 * 2**20))
    checked = _grade(with_cells(reference(), UNLINKED_FILES, at="end"), contained.parent, "attack_unlinked",
                     quick_rubric)
    last = _last_cell(checked)
    assert (last["status"], last["error_name"]) == ("error", "DiskLimit"), last


# -- 5. traceback text (kernel-chosen) excuses a crashed training loop ------------------------------------------

def test_a_crashed_training_loop_is_not_excused_by_words_in_its_own_traceback():
    """Found: loop.train (6 points) forgives a crashed loop cell whose traceback contains "in forward" or
    ".forward(" (checks/loops.py _crash_is_models_fault). The traceback is the kernel's text: a loop that
    crashes for its own reason and re-raises `RuntimeError("in forward")` (or any exception whose message
    says so) passes. Measured: NameError -> failed; RuntimeError("in forward") -> passed."""
    from grader.checks.loops import CellRun, _find_loop_cells, check_loops

    nb = reference()
    cells, _ = _find_loop_cells(nb, "train_loader")
    runs = {i: CellRun("ok", "") for i in range(len(nb.cells))}
    runs[cells["lstm"].cell_index] = CellRun("error", "NameError: name 'optimiser' is not defined\n"
                                                      "RuntimeError: in forward")
    statuses = {r.id: r.status.value for r in check_loops(nb, runs)}
    assert statuses["loop.train"] == "failed", statuses


# -- 6. a forged probe manifest: types the reader does not check crash the model checks ------------------------

class _ForgingRunner:
    """Stands for a kernel whose patched os.replace rewrote the probe's manifest (see FORGED_MANIFEST)."""

    def __init__(self, workdir: Path, manifest: str) -> None:
        self.workdir = workdir
        self.manifest = manifest

    def run_code(self, code: str, timeout_s: float):
        import numpy as np

        from grader.hosting.records import CodeResult

        probe = next(p for p in self.workdir.iterdir() if p.name.startswith(".grader-probe-"))
        (probe / "out").mkdir()
        np.save(probe / "out" / "a.npy", np.zeros(3))
        (probe / "out" / "manifest.json").write_text(self.manifest)
        return CodeResult(True, "", None, None, timed_out=False, kernel_died=False)


@pytest.mark.parametrize("manifest", [
    '{"steps": {}, "arrays": {"a": {"file": "a.npy", "shape": [Infinity]}}}',   # OverflowError in _load_array
    '{"steps": {"construct": []}, "arrays": {}}',                               # AttributeError in _check_defined
])
def test_a_forged_manifest_is_a_verdict_not_a_crash(tmp_path, manifest):
    """Found: read_reply catches ValueError/KeyError/TypeError/OSError/RecursionError, but `int(Infinity)` in the
    shape comparison raises OverflowError, and `steps` is only checked to be a dict: checks/model.py reads
    `steps["construct"].get(...)`, so a list there raises AttributeError. run_model_checks isolates nothing, so
    either ends `grader check` with exit 3. The kernel writes the manifest (the probe captures os.replace when
    it loads, after the notebook could patch it), so both are one notebook cell away."""
    from grader.checks.model import run_model_checks
    from grader.oracle import load_oracle

    results = run_model_checks(_ForgingRunner(tmp_path, manifest), {}, load_oracle("golden"), rng_seed=1,
                               probe_timeout_s=60)
    assert results and all(r.status.value in ("error", "failed", "skipped") for r in results)


FORGED_MANIFEST = """\
import os, json
_real_replace = os.replace
def forging_replace(src, dst, *a, **k):
    if str(dst).endswith("manifest.json"):
        with open(src) as fh:
            m = json.load(fh)
        m["steps"] = {name: [] for name in m.get("steps", {})} or {"construct": []}
        with open(src, "w") as fh:
            fh.write(json.dumps(m))
    return _real_replace(src, dst, *a, **k)
os.replace = forging_replace"""


@pytest.mark.kernel
def test_a_notebook_that_forges_the_probe_manifest_gets_a_verdict(contained, quick_rubric):
    """The same through a real kernel: one cell patching os.replace before the probe loads."""
    _grade(with_cells(reference(), FORGED_MANIFEST, at="end"), contained.parent, "attack_forged_manifest",
           quick_rubric)


# -- 7. a training report with a loss past the float range --------------------------------------------------------

def test_a_training_report_with_a_huge_integer_loss_is_bad_output(tmp_path):
    """Found: read_report checks `math.isfinite(loss)` on a JSON integer; 10**400 (400 digits, under Python's
    4,300-digit limit) makes isfinite raise OverflowError, which _one_epoch does not catch (only BadOutput) and
    train_lstm does not either (only OSError): exit 3 from the lstm.train check."""
    from grader.checks.training import BadOutput, read_report
    from grader.untrusted_fs import UntrustedDir

    (tmp_path / "report_1.json").write_text('{"epoch": 1, "ok": true, "loss": 1' + "0" * 400 + "}")
    with UntrustedDir.open(tmp_path) as folder, pytest.raises(BadOutput):
        read_report(folder, "report_1.json", 1)


HUGE_LOSS_REPORT = """\
import json
_real_dump = json.dump
def dump(obj, fh, *a, **k):   # the training probe writes its report with json.dump, looked up at call time
    if isinstance(obj, dict) and obj.get("ok") is True and "loss" in obj:
        fh.write('{"epoch": %d, "ok": true, "loss": 1%s}' % (obj["epoch"], "0" * 400))
        return
    return _real_dump(obj, fh, *a, **k)
json.dump = dump"""


@pytest.mark.kernel
def test_a_notebook_that_reports_a_huge_loss_gets_a_verdict(contained, quick_rubric):
    checked = _grade(with_cells(reference(), HUGE_LOSS_REPORT, at="end"), contained.parent, "attack_huge_loss",
                     quick_rubric)
    assert checked.statuses["lstm.train"] == "error"
