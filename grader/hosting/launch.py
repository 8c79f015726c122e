"""Grader side: how the student's kernel process is started.

A kernelspec of our own (generated per kernel, never the notebook's), a
scrubbed environment, an IPython startup file, and resource limits applied in
the child between fork and exec. Nothing here runs in the student's process
except the preexec function.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import resource
import shutil
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager

from grader.inkernel import INKERNEL_DIR
from grader.threads import THREAD_ENV

# The package that runs in the student's process: the kernel gets a copy of it, never the grader's tree.
FAKES_DIR = INKERNEL_DIR / "fakes"

KERNEL_NAME = "grader-python"
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
# Passed through from the grader's environment when set: the libraries of a
# CUDA or CANN (Ascend) installation are found through them. Everything else
# (tokens, the grader's own settings) stays out of the student's process.
PASSTHROUGH = ("PATH", "LANG", "LC_ALL", "LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES", "CUDA_HOME")
NPU_PASSTHROUGH_PREFIXES = ("ASCEND_", "TOOLCHAIN_HOME")
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ProcessLimits:
    """rlimits of the kernel process; None leaves a limit as inherited."""

    data_bytes: int | None  # RLIMIT_DATA: what a memory bomb allocates, not address space a driver reserves
    file_size_bytes: int | None
    open_files: int | None
    processes: int | None
    cpu_seconds: int | None = None


def kernel_argv() -> list[str]:
    """The kernel's command line; history is off (no sqlite file)."""
    return [
        sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
        "--HistoryManager.enabled=False",
        "--IPKernelApp.quiet=True",
    ]


def write_kernelspec(run_dir: Path, argv: list[str], *, interrupt_by_message: bool) -> KernelSpecManager:
    """A kernelspec folder in run_dir and a manager that sees only it.

    Unsandboxed, interrupts are signals: the launcher puts the kernel in its own
    session, so SIGINT reaches the whole group. In the sandbox the kernel is in
    another pid namespace behind bwrap, so interrupts go as control messages.
    """
    spec_dir = run_dir / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": argv,
        "display_name": "grader (student code)",
        "language": "python",
        "interrupt_mode": "message" if interrupt_by_message else "signal",
        "env": {},
        "metadata": {"debugger": False},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
    return KernelSpecManager(kernel_dirs=[str(run_dir / "kernels")], ensure_native_kernel=False)


# What the kernel imports of the grader: the shims and the fake torch_npu, nothing else.
_KERNEL_SIDE = ("__init__.py", "startup.py", "shell_shims.py", "transforms.py", "feature_memo.py", "batch_cap.py",
                "lazy_dynamo.py")


def copy_kernel_side(run_dir: Path) -> Path:
    """A copy of the kernel-side modules in run_dir; the folder to put on the kernel's sys.path.

    The kernel gets a copy instead of the grader's tree, which holds the golden
    vectors and, in a source checkout, sits beside the reference (reference/),
    and which the sandbox hides.
    """
    root = run_dir / "kernel_side"
    package = root / "grader" / "inkernel"
    package.mkdir(parents=True)
    (root / "grader" / "__init__.py").write_text("", encoding="utf-8")
    for name in _KERNEL_SIDE:
        shutil.copy2(INKERNEL_DIR / name, package / name)
    # `from grader import selfcheck` in a submitted notebook finds the stand-in: check cells cost nothing
    shutil.copy2(INKERNEL_DIR / "selfcheck_stub.py", root / "grader" / "selfcheck.py")
    shutil.copytree(FAKES_DIR, package / "fakes", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def write_startup(ipython_dir: Path, config: dict[str, object], kernel_side: Path) -> Path:
    """The IPython startup file that installs grader.inkernel.startup in the kernel.

    It runs in the student's namespace, so it keeps to one function it deletes.
    """
    startup_dir = ipython_dir / "profile_default" / "startup"
    startup_dir.mkdir(parents=True)
    project_root = str(kernel_side)
    path = startup_dir / "00-grader.py"
    path.write_text(
        "def __grader_boot():\n"
        "    import sys\n"
        f"    sys.path.insert(0, {project_root!r})\n"
        "    try:\n"
        "        import grader.inkernel.startup as boot\n"
        "    finally:\n"
        f"        sys.path.remove({project_root!r})\n"
        f"    boot.FAILED = boot.install(get_ipython(), {config!r})\n"
        "__grader_boot()\n"
        "del __grader_boot\n",
        encoding="utf-8",
    )
    return path


def startup_config(device: str, remap_npu: bool, epoch_cap: int, kernel_side: Path,
                   output_chars: int = 0, batch_cap: int = 0, feature_pack: str | None = None) -> dict[str, object]:
    return {
        "feature_pack": feature_pack,
        "device": device,
        "remap_npu": remap_npu,
        "epoch_cap": epoch_cap,
        "batch_cap": batch_cap,
        "output_chars": output_chars,
        "fakes_dir": str(kernel_side / "grader" / "inkernel" / "fakes"),
    }


def kernel_env(workdir: Path, ipython_dir: Path, device: str, npu: bool) -> dict[str, str]:
    """The kernel's whole environment: nothing of the grader's beyond PASSTHROUGH."""
    env = {key: os.environ[key] for key in PASSTHROUGH if key in os.environ}
    if npu:
        env.update({k: v for k, v in os.environ.items() if k.startswith(NPU_PASSTHROUGH_PREFIXES)})
        if "PYTHONPATH" in os.environ:  # CANN's set_env.sh puts its python packages there
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    env.setdefault("PATH", os.defpath)
    env.setdefault("LANG", "C.UTF-8")
    cache = workdir / ".cache"
    env.update(THREAD_ENV)
    env.update(
        {
            "HOME": str(workdir),
            "TMPDIR": str(workdir / ".tmp"),
            "XDG_CACHE_HOME": str(cache),
            # numba (librosa) needs a writable cache: without one, first MFCC took 20 s.
            "NUMBA_CACHE_DIR": str(cache / "numba"),
            "MPLCONFIGDIR": str(cache / "matplotlib"),
            "MPLBACKEND": INLINE_BACKEND,
            "IPYTHONDIR": str(ipython_dir),
            "JUPYTER_PLATFORM_DIRS": "1",
            "PYTHONNOUSERSITE": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "GRADER_TORCH_DEVICE": device,
        }
    )
    return env


# The folders kernel_env points into the work folder; made by prepare_kernel_folders.
KERNEL_FOLDERS = (".tmp", ".cache/numba", ".cache/matplotlib")
# Where the grader's feature pack (grader/data/kernel_features.py) goes in the work folder.
FEATURE_PACK_FOLDER = ".cache/grader-features"


def load_prctl() -> Callable[..., int] | None:
    """libc's prctl on Linux, else None. Resolved in the parent: a child between fork and exec only calls it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl
    except (OSError, AttributeError):
        return None


def user_task_count(uid: int | None = None) -> int:
    """Tasks (threads included) the user runs now: what RLIMIT_NPROC counts besides the kernel."""
    uid = os.getuid() if uid is None else uid
    count = 0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status", encoding="ascii", errors="replace") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                count += int(fields.get("Threads", "1"))
        except (OSError, KeyError, ValueError):
            continue
    return count


def make_preexec(limits: ProcessLimits, join_cgroup: Callable[[], None] | None = None) -> Callable[[], None]:
    """The function Popen runs in the child before exec: rlimits, no core dumps, die with us.

    JPY_PARENT_PID is unset (the kernel would poll its parent, which breaks in
    a pid namespace), so the kernel instead gets SIGKILL when the grader dies.
    `join_cgroup` moves the child into its pids cgroup before it can fork.

    RLIMIT_NPROC counts every task of the real uid, not just the kernel's, and
    binds only a non-root uid; so it is set only for a non-root grader, as
    `processes` on top of what the user already runs (a root grader uses the
    pids cgroup instead: grader/sandbox.py).
    """
    prctl = load_prctl()
    settings: list[tuple[int, int]] = [(resource.RLIMIT_CORE, 0)]
    if limits.data_bytes:
        settings.append((resource.RLIMIT_DATA, limits.data_bytes))
    if limits.file_size_bytes:
        settings.append((resource.RLIMIT_FSIZE, limits.file_size_bytes))
    if limits.open_files:
        settings.append((resource.RLIMIT_NOFILE, limits.open_files))
    if limits.processes and os.getuid() != 0:
        settings.append((resource.RLIMIT_NPROC, limits.processes + user_task_count()))
    if limits.cpu_seconds:
        settings.append((resource.RLIMIT_CPU, limits.cpu_seconds))

    def preexec() -> None:
        if join_cgroup is not None:
            join_cgroup()
        for which, value in settings:
            _, hard = resource.getrlimit(which)
            capped = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(which, (capped, capped))
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)

    return preexec
