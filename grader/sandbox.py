"""How the student's kernel process is isolated, and which protections were active.

Layers, from outside in:
- bubblewrap (`bwrap`): a new mount namespace built from an allowlist. The
  kernel sees the system's libraries, the Python installation and the virtual
  environment read-only, its own working folder read-write, its run folder
  (kernelspec, startup file, the kernel-side shims, the IPC sockets), and a
  private /tmp. It does not see the user's home, the grader's source tree
  (with the reference equations), the rubrics, other submissions, the results
  store, or other kernels' connection files, because none of them is mounted.
- `--unshare-net`: no network at all, not even loopback to the host; the
  kernel therefore talks to the grader over IPC (Unix sockets) in its run folder.
- `--unshare-user --uid/--gid`, `--cap-drop ALL`, `--unshare-pid/ipc/uts`,
  `--die-with-parent`, `--new-session`.
- rlimits, a scrubbed environment and an output cap are applied by
  grader/hosting/launch.py and grader/hosting/session.py whether or not bwrap exists.
- a process-count limit against fork bombs (`PidsCgroup`, grader/pids_cgroup.py). RLIMIT_NPROC is not
  enough: the kernel never checks it for processes whose real uid is root, and
  a root grader's sandboxed kernel *is* root outside its user namespace
  (bwrap maps the inner uid to the caller's; measured here: 60 forks under
  `ulimit -u 20`). So a root grader puts each kernel in a pids cgroup of its
  own (pids.max, v1 or v2, when /sys/fs/cgroup lets us create one); a non-root
  grader relies on RLIMIT_NPROC, which does apply to it. When neither works,
  `Protections.process_limit` is False.
- /tmp and /dev/shm inside the sandbox are host folders (a tmpfs would be RAM
  that RLIMIT_DATA does not see, and bwrap cannot limit its inodes), counted
  with the work folder by the kernel's disk and file budget (grader/hosting/budgets.py).

When bwrap or user namespaces are unavailable (not Linux, bwrap missing, a
container that forbids namespaces), grading still works with the remaining
layers, and `Protections` says which ones were active so reports can show it;
`--require-sandbox` refuses to grade instead.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from grader.errors import SandboxUnavailableError
from grader.hosting.limits import SandboxMode
from grader.messages import Msg, render
from grader.pids_cgroup import PidsCgroup

BWRAP = "bwrap"
# Read-only system paths a Python kernel needs; each is bound only if it exists.
_SYSTEM_RO = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# Not the whole /etc: it holds secrets (shadow, ssh keys) and the host's config.
_ETC_RO = (
    "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/localtime",
    "/etc/fonts", "/etc/mime.types", "/etc/nsswitch.conf", "/etc/passwd", "/etc/group",
)
# Accelerator runtimes (CUDA, Huawei CANN) and their device files, when present.
_ACCEL_RO = ("/usr/local/cuda", "/usr/local/Ascend", "/usr/local/dcmi", "/usr/local/sbin/npu-smi")
_ACCEL_DEV_PREFIXES = ("nvidia", "davinci", "devmm_svm", "hisi_hdc")
_INNER_UID = 1000
_PROBE_TIMEOUT_S = 20
# The sandbox's /tmp and /dev/shm are folders of the host's (make_scratch_dir), not tmpfs mounts: bwrap can
# size a tmpfs but not limit its inodes, and a million empty files there grew the host kernel's unreclaimable
# memory (Slab) by 1.25 GB (measured). On the host they are counted by the kernel's disk and file budget.
SCRATCH_FOLDERS = ("tmp", "shm")
# The socket folder's parent may be this long: "/<parent>/gk-XXXXXXXX/k-<port>-shell" stays under the 107
# bytes a Unix socket path may hold.
_IPC_PARENT_MAX_CHARS = 60


@dataclass(frozen=True)
class Protections:
    """What protected the grader from one kernel; reported in the JSON and the HTML report."""

    filesystem: bool      # allowlist mounts: grader, reference, rubrics, other submissions, home invisible
    network: bool         # no network namespace shared with the host
    user_namespace: bool  # unprivileged uid, no capabilities
    pid_namespace: bool   # cannot see or signal the grader's processes
    rlimits: bool         # data segment, CPU time, file size, open files
    scrubbed_env: bool    # none of the grader's environment variables
    output_cap: bool      # outputs kept per cell are capped
    unavailable: str = "" # why the bwrap layers are missing, when they are
    process_limit: bool = False  # a fork bomb is bounded: a pids cgroup, or RLIMIT_NPROC for a non-root grader

    @property
    def complete(self) -> bool:
        return all((self.filesystem, self.network, self.user_namespace, self.pid_namespace,
                    self.rlimits, self.scrubbed_env, self.output_cap, self.process_limit))

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def base_protections(sandboxed: bool, reason: str = "") -> Protections:
    posix = os.name == "posix"
    return Protections(filesystem=sandboxed, network=sandboxed, user_namespace=sandboxed,
                       pid_namespace=sandboxed, rlimits=posix, scrubbed_env=True, output_cap=True,
                       unavailable="" if sandboxed else reason, process_limit=process_limit_available())


def nproc_rlimit_effective() -> bool:
    """RLIMIT_NPROC binds processes whose real uid is not root (outside every user namespace)."""
    return os.name == "posix" and hasattr(os, "getuid") and os.getuid() != 0


@functools.cache
def process_limit_available() -> bool:
    """Whether a kernel's process count can be bounded here (tried once per process)."""
    if nproc_rlimit_effective():
        return True
    probe = PidsCgroup.create(8)
    if probe is None:
        return False
    probe.remove()
    return True


@functools.cache
def bwrap_unavailable() -> str:
    """Why the bwrap sandbox cannot be used here ("" when it can); tried once per process."""
    if not sys.platform.startswith("linux"):
        return f"bubblewrap needs Linux (this is {sys.platform})"
    path = shutil.which(BWRAP)
    if path is None:
        return "bubblewrap (bwrap) is not installed"
    with tempfile.TemporaryDirectory(prefix="grader-sandbox-probe-") as tmp:
        probe = wrap_command([sys.executable, "-c", "pass"], workdir=Path(tmp) / "work", run_dir=Path(tmp) / "run",
                             ipc=Path(tmp) / "ipc", scratch=Path(tmp) / "scratch", accelerator=False)
        try:
            done = subprocess.run(probe, capture_output=True, timeout=_PROBE_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bwrap could not start: {exc}"
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return "bwrap failed: " + (detail[-1] if detail else f"exit code {done.returncode}")
    return ""


def _namespace_args() -> list[str]:
    return [
        "--unshare-user", "--uid", str(_INNER_UID), "--gid", str(_INNER_UID),
        "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        "--hostname", "grader-sandbox",
        "--die-with-parent", "--new-session", "--cap-drop", "ALL",
    ]


def _python_roots() -> list[str]:
    """The Python installation and the environment the kernel imports from (never the grader's tree)."""
    roots = {sys.base_prefix, sys.prefix, sys.exec_prefix, sys.base_exec_prefix}
    for name in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(name)
        if path:
            roots.add(path)
    return sorted(r for r in roots if r and os.path.isdir(r))


def _ro_binds(paths: list[str] | tuple[str, ...]) -> list[str]:
    args: list[str] = []
    for path in paths:
        if os.path.lexists(path):
            args += ["--ro-bind", path, path] if not os.path.islink(path) else ["--symlink", os.readlink(path), path]
    return args


def _accelerator_args() -> list[str]:
    args = _ro_binds([p for p in _ACCEL_RO if os.path.exists(p)])
    for extra in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep):
        if extra and os.path.isdir(extra) and not _inside_home(extra):
            args += ["--ro-bind", extra, extra]
    try:
        devices = [d for d in os.listdir("/dev") if d.startswith(_ACCEL_DEV_PREFIXES)]
    except OSError:
        devices = []
    for name in sorted(devices):
        args += ["--dev-bind", f"/dev/{name}", f"/dev/{name}"]
    return args


def _inside_home(path: str) -> bool:
    home = os.path.expanduser("~")
    return home not in ("", "/") and os.path.realpath(path).startswith(os.path.realpath(home) + os.sep)


def make_ipc_dir() -> Path:
    """A folder for the kernel's Unix sockets, with a short path.

    A socket path may hold at most 107 bytes; under a nested TMPDIR (pytest's,
    a batch worker's) the run folder's path alone came close, and the kernel
    failed to start with "File name too long". So the sockets live in a
    short-named folder directly in /tmp, whatever TMPDIR says.
    """
    # A batch worker's own temporary folder is short and removed with the worker, even when it is killed;
    # a long one (pytest's) would not leave room for the socket names.
    base = tempfile.gettempdir()
    if len(base) > _IPC_PARENT_MAX_CHARS:
        base = "/tmp" if os.path.isdir("/tmp") else base
    _remove_stale_ipc_dirs(Path(base))
    # The sockets go in gk-<pid>-XXXX/s: the kernel owns the folder bound into its sandbox and could open it to
    # everyone; gk-<pid>-XXXX stays 0700 and unseen (remove the parent when done). The pid names the grader
    # process, so a later grader can remove what one killed with SIGKILL left behind.
    folder = Path(tempfile.mkdtemp(prefix=f"{_IPC_PREFIX}{os.getpid()}-", dir=base)) / "s"
    folder.mkdir(mode=0o700)
    return folder


_IPC_PREFIX = "gk-"


def _remove_stale_ipc_dirs(base: Path) -> None:
    """Socket folders whose grader process is gone (killed before it could clean up)."""
    from grader.untrusted_fs import remove_tree

    try:
        names = [n for n in os.listdir(base) if n.startswith(_IPC_PREFIX)][:1000]
    except OSError:
        return
    for name in names:
        owner = name[len(_IPC_PREFIX):].split("-", 1)[0]
        if owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
            remove_tree(base / name, deadline_s=5)


# A uid no kernel is mapped to: the socket folder is handed to it once the kernel's sockets exist.
_NOBODY_UID = 65534


def lock_socket_folder(folder: Path) -> bool:
    """Make the kernel's socket folder unchangeable to the kernel, once its sockets are bound.

    The grader's zmq client reconnects by path; a kernel that replaced a socket file by a link to a host
    socket made the grader, as root, connect there (measured). The kernel's uid maps to the grader's, so it
    owns the folder and could chmod it back; owned by a uid not mapped into its sandbox, with mode 0755, it
    can neither add, remove nor rename an entry. Needs root (chown); True when done.
    """
    if os.geteuid() != 0:
        return False
    try:
        os.chown(folder, _NOBODY_UID, _NOBODY_UID, follow_symlinks=False)
        os.chmod(folder, 0o755)  # others: r-x. The parent stays 0700, so no local user reaches it either.
    except OSError:
        return False
    return True


def make_scratch_dir() -> Path:
    """The host folder behind the sandbox's /tmp and /dev/shm (one sub-folder each)."""
    folder = Path(tempfile.mkdtemp(prefix="grader-scratch-"))
    for name in SCRATCH_FOLDERS:
        (folder / name).mkdir(mode=0o777)
        os.chmod(folder / name, 0o1777)  # like /tmp: the kernel's unprivileged uid writes there
    return folder


def wrap_command(argv: list[str], *, workdir: Path, run_dir: Path, ipc: Path, scratch: Path,
                 accelerator: bool) -> list[str]:
    """`argv` run inside bwrap: allowlist mounts, no network, unprivileged, its own pid namespace.

    workdir (read-write), run_dir (read-only) and ipc (read-write, the kernel's
    sockets) keep their paths inside, so the connection file and the probes'
    paths match; scratch/tmp and scratch/shm become /tmp and /dev/shm.
    """
    path = shutil.which(BWRAP)
    assert path is not None, "call bwrap_unavailable() first"
    for folder in (ipc, workdir, run_dir, *(scratch / name for name in SCRATCH_FOLDERS)):
        folder.mkdir(parents=True, exist_ok=True)  # bwrap refuses to bind a source that does not exist
    args = [path, *_namespace_args()]
    # The private /tmp first: a virtual environment or checkout that lives under /tmp (a CI clone, say)
    # is bound on top of it below; mounted after them, /tmp would hide the Python the kernel runs.
    args += ["--dev", "/dev", "--proc", "/proc", "--bind", str(scratch / "tmp"), "/tmp",
             "--bind", str(scratch / "shm"), "/dev/shm"]
    args += _ro_binds(_SYSTEM_RO) + _ro_binds(_ETC_RO) + _ro_binds(_python_roots())
    if accelerator:  # after --dev, which would otherwise hide the device files
        args += _accelerator_args()
    args += ["--ro-bind", str(run_dir), str(run_dir), "--bind", str(ipc), str(ipc)]
    ipython = run_dir / "ipython"
    if ipython.is_dir():  # IPython falls back to a temp dir (skipping our startup file) if this is read-only
        args += ["--bind", str(ipython), str(ipython)]
    args += ["--bind", str(workdir), str(workdir), "--chdir", str(workdir)]
    # bwrap's root is a tmpfs (in RAM) holding the mount points: read-only, or it is unbounded scratch space
    args += ["--remount-ro", "/"]
    return [*args, "--", *argv]


def choose_protections(mode: SandboxMode, lang: str = "zh") -> Protections:
    """The protections a kernel gets: the bwrap layers when available (or required), else the rest.

    "require" raises SandboxUnavailableError instead of grading with less.
    """
    if mode == "off":
        return base_protections(False, "turned off")
    reason = bwrap_unavailable()
    protections = base_protections(not reason, reason)
    if mode == "require" and not protections.complete:
        if not reason:  # bwrap works, yet a layer outside it is missing: name it
            reason = ", ".join(name for name, value in protections.to_json().items() if value is False)
        raise SandboxUnavailableError(render(Msg("exec.sandbox_required", {"reason": reason}), lang))
    return protections
