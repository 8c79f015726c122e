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
  grader/kernel/launch.py and grader/execute.py whether or not bwrap exists.

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


@dataclass(frozen=True)
class Protections:
    """What protected the grader from one kernel; reported in the JSON and the HTML report."""

    filesystem: bool      # allowlist mounts: grader, reference, rubrics, other submissions, home invisible
    network: bool         # no network namespace shared with the host
    user_namespace: bool  # unprivileged uid, no capabilities
    pid_namespace: bool   # cannot see or signal the grader's processes
    rlimits: bool         # address space, CPU time, file size, open files
    scrubbed_env: bool    # none of the grader's environment variables
    output_cap: bool      # outputs kept per cell are capped
    unavailable: str = "" # why the bwrap layers are missing, when they are

    @property
    def complete(self) -> bool:
        return all((self.filesystem, self.network, self.user_namespace, self.pid_namespace,
                    self.rlimits, self.scrubbed_env, self.output_cap))

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def base_protections(sandboxed: bool, reason: str = "") -> Protections:
    posix = os.name == "posix"
    return Protections(filesystem=sandboxed, network=sandboxed, user_namespace=sandboxed,
                       pid_namespace=sandboxed, rlimits=posix, scrubbed_env=True, output_cap=True,
                       unavailable="" if sandboxed else reason)


@functools.lru_cache(maxsize=None)
def bwrap_unavailable() -> str:
    """Why the bwrap sandbox cannot be used here ("" when it can); tried once per process."""
    if not sys.platform.startswith("linux"):
        return f"bubblewrap needs Linux (this is {sys.platform})"
    path = shutil.which(BWRAP)
    if path is None:
        return "bubblewrap (bwrap) is not installed"
    with tempfile.TemporaryDirectory(prefix="grader-sandbox-probe-") as tmp:
        probe = wrap_command([sys.executable, "-c", "pass"], workdir=Path(tmp) / "work", run_dir=Path(tmp) / "run",
                             ipc=Path(tmp) / "ipc", accelerator=False)
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
    base = "/tmp" if os.path.isdir("/tmp") else None
    return Path(tempfile.mkdtemp(prefix="gk-", dir=base))


def wrap_command(argv: list[str], *, workdir: Path, run_dir: Path, ipc: Path, accelerator: bool) -> list[str]:
    """`argv` run inside bwrap: allowlist mounts, no network, unprivileged, its own pid namespace.

    workdir (read-write), run_dir (read-only) and ipc (read-write, the kernel's
    sockets) keep their paths inside, so the connection file and the probes'
    paths match.
    """
    path = shutil.which(BWRAP)
    assert path is not None, "call bwrap_unavailable() first"
    for folder in (ipc, workdir, run_dir):  # bwrap refuses to bind a source that does not exist
        folder.mkdir(parents=True, exist_ok=True)
    args = [path, *_namespace_args()]
    args += _ro_binds(_SYSTEM_RO) + _ro_binds(_ETC_RO) + _ro_binds(_python_roots())
    args += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/dev/shm"]
    if accelerator:  # after --dev, which would otherwise hide the device files
        args += _accelerator_args()
    args += ["--ro-bind", str(run_dir), str(run_dir), "--bind", str(ipc), str(ipc)]
    ipython = run_dir / "ipython"
    if ipython.is_dir():  # IPython falls back to a temp dir (skipping our startup file) if this is read-only
        args += ["--bind", str(ipython), str(ipython)]
    args += ["--bind", str(workdir), str(workdir), "--chdir", str(workdir)]
    return args + ["--", *argv]
