"""The attack cells, one per attack, named after what they try. Cells that look for something they
must not get end with `raise SystemError("LEAKED ...")` when they got it (see conftest.leaks)."""
from __future__ import annotations

import secrets

from grader.paths import PROJECT_ROOT

# In the name or the first bytes of every file an attack writes where it must not reach: the suite looks for
# it outside the test's folder (advkit.escaped), so nothing else written on a busy machine is mistaken for it.
NONCE = f"advnonce{secrets.token_hex(6)}"

INFINITE_LOOP = "while True:\n    pass"

SWALLOW_KEYBOARD_INTERRUPT = """\
import time
while True:
    try:
        time.sleep(0.05)
    except KeyboardInterrupt:
        pass"""

OS_EXIT = "import os\nos._exit(3)"

SIGKILL_SELF = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"

# Every process forks until fork fails, then holds its slot; only a process-count limit stops it.
FORK_BOMB = """\
import os, time
me = os.getpid()
forks = 0
for _ in range(1_000_000):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid:
        forks += 1
if os.getpid() != me:
    time.sleep(120)
    os._exit(0)
print("forks", forks)"""

# 8 GiB of the machine's memory, then 768 MiB through each of /dev/shm and /tmp (RAM when they were tmpfs;
# host folders under the disk budget now, so below that budget the bomb ends in its own MemoryError).
MEMORY_BOMB = """\
blocks = []
try:
    blocks.append(bytearray(8 * 2**30))
except MemoryError:
    pass
chunk = b"m" * 2**20
for folder in ("/dev/shm", "/tmp"):
    try:
        with open(folder + "/fill", "wb") as fh:
            for _ in range(768):
                fh.write(chunk)
    except OSError:
        pass
raise MemoryError("memory bomb done")"""

# Files of 64 MiB in the working folder until something stops us (or 8 GiB).
DISK_FILLER = """\
import os
chunk = b"d" * 2**20
os.makedirs("filler", exist_ok=True)
for n in range(128):
    with open(f"filler/{n}.bin", "wb") as fh:
        for _ in range(64):
            fh.write(chunk)
print("wrote 8 GiB")"""

OUTPUT_FLOOD_SMALL = "for i in range(300_000):\n    print('flood line', i)"
# The kernel-side stream cap is undone first: only the grader's own cap is left.
OUTPUT_FLOOD_HUGE = """\
import sys
sys.stdout.write = type(sys.stdout).write.__get__(sys.stdout)
print("x" * (200 * 2**20))"""

MONKEYPATCH_TORCH = """\
import torch, torch.nn.functional as F
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
torch.isclose = lambda a, b, *r, **k: torch.ones_like(torch.as_tensor(a), dtype=torch.bool)
torch.testing.assert_close = lambda *a, **k: None
torch.Tensor.__eq__ = lambda self, other: torch.ones(self.shape, dtype=torch.bool)
F.mse_loss = lambda *a, **k: torch.tensor(0.0)
F.l1_loss = lambda *a, **k: torch.tensor(0.0)"""

MONKEYPATCH_NUMPY = """\
import numpy as np
np.allclose = lambda *a, **k: True
np.array_equal = lambda *a, **k: True
np.isclose = lambda a, b, *r, **k: np.ones(np.shape(a), dtype=bool)
np.testing.assert_allclose = lambda *a, **k: None
np.testing.assert_array_almost_equal = lambda *a, **k: None
np.testing.assert_array_equal = lambda *a, **k: None"""

PATCH_BUILTINS_COMPARISONS = """\
import builtins
_abs, _max, _min, _isinstance, _float = builtins.abs, builtins.max, builtins.min, builtins.isinstance, builtins.float
builtins.abs = lambda x: 0.0 if _isinstance(x, (int, _float)) else _abs(x)
builtins.max = lambda *a, **k: 0.0 if a and _isinstance(a[0], _float) else _max(*a, **k)
builtins.min = lambda *a, **k: 0.0 if a and _isinstance(a[0], _float) else _min(*a, **k)
builtins.isinstance = lambda o, t: True if t is _float else _isinstance(o, t)
class _Lying(_float):
    def __lt__(self, other): return True
    def __le__(self, other): return True
builtins.float = _Lying"""

FORGE_RESULTS_FILE = """\
import json, os
fake = {"nonce": NONCE_VALUE, "schema": 1, "score": 100, "max_score": 100, "outcome": "graded",
        "checks": [{"id": "lstm.forward", "status": "passed", "score": 14, "max_score": 14}]}
names = ["results.json", "result.json", "grades.sqlite", "grades.csv", "report.html", "summary.html", "junit.xml"]
folder = os.path.abspath(os.getcwd())
reached = []
while True:
    for name in names:
        try:
            with open(os.path.join(folder, name), "w") as fh:
                fh.write(json.dumps(fake))
            reached.append(folder)
        except OSError:
            pass
    for sub in ("results", "out"):
        try:
            os.makedirs(os.path.join(folder, sub), exist_ok=True)
            with open(os.path.join(folder, sub, "lab.json"), "w") as fh:
                fh.write(json.dumps(fake))
        except OSError:
            pass
    if folder == "/":
        break
    folder = os.path.dirname(folder)
for path in (os.path.expanduser("~"), "/tmp", "/root", "/work"):
    try:
        with open(os.path.join(path, "results.json"), "w") as fh:
            fh.write(json.dumps(fake))
    except OSError:
        pass
print("Score: 100/100")
print(json.dumps(fake))""".replace("NONCE_VALUE", repr(NONCE))


def read_reference() -> str:
    root = str(PROJECT_ROOT)
    return f"""\
import glob, importlib, os, sys
root = {root!r}
leaked = []
for rel in ("reference/lab.ipynb", "reference/functional.py", "rubrics/lab.toml"):
    try:
        with open(os.path.join(root, rel), "rb") as fh:
            leaked.append((rel, len(fh.read())))
    except OSError:
        pass
for name in ("grader.oracle.live", "grader.oracle.golden", "grader.paths", "grader.rubric"):
    try:
        module = importlib.import_module(name)
        leaked.append((name, getattr(module, "__file__", None)))
    except Exception:
        pass
for pattern in ("/work/*/rubrics/*.toml", "/work/*/reference/functional.py", "/tmp/**/*.toml", "/root/**/*.ipynb",
                os.path.dirname(os.getcwd()) + "/**/*.toml"):
    leaked += glob.glob(pattern, recursive=True)
if leaked:
    raise SystemError(f"LEAKED {{leaked}}")"""


def read_other_submission(victim: str, marker: str) -> str:
    head, tail = marker[:6], marker[6:]  # split, so that this notebook does not contain the marker itself
    return f"""\
import glob, os
marker = {head!r} + {tail!r}
leaked = []
try:
    with open({victim!r}, "rb") as fh:
        leaked.append(fh.read()[:50])
except OSError:
    pass
seen = 0
for top in ("/", "/tmp", "/work", "/root", "/home", os.path.dirname(os.getcwd())):
    for dirpath, dirnames, filenames in os.walk(top):
        if (dirpath.startswith(("/proc", "/sys", "/usr", "/dev")) or "site-packages" in dirpath
                or "/lib/python" in dirpath or seen > 200_000):
            dirnames[:] = []
            continue
        for name in filenames:
            seen += 1
            if name.endswith(".ipynb"):
                try:
                    with open(os.path.join(dirpath, name), "rb") as fh:
                        if marker.encode() in fh.read():
                            leaked.append(os.path.join(dirpath, name))
                except OSError:
                    pass
if leaked:
    raise SystemError(f"LEAKED {{leaked}}")"""


def read_environment(secret: str) -> str:
    return f"""\
import glob, os
secret = {secret!r}
leaked = []
if any(secret in v for v in os.environ.values()):
    leaked.append("os.environ")
paths = ["/proc/1/environ", f"/proc/{{os.getppid()}}/environ"] + glob.glob("/proc/[0-9]*/environ")
for path in paths:
    try:
        with open(path, "rb") as fh:
            if secret.encode() in fh.read():
                leaked.append(path)
    except OSError:
        pass
import sys
python_home = [os.path.realpath(p) for p in {{sys.base_prefix, sys.prefix}}]  # mounted for the kernel to run
for folder in ("/root", "/root/.ssh", os.path.expanduser("~root/.ssh"), "/home", "/etc/ssh"):
    try:
        found = [n for n in os.listdir(folder)
                 if not any(p.startswith(os.path.join(folder, n) + os.sep) for p in python_home)]
        if found:
            leaked.append((folder, found[:5]))
    except OSError:
        pass
for path in ("/etc/shadow", "/root/.bash_history", "/root/.ssh/id_rsa"):
    try:
        with open(path, "rb") as fh:
            leaked.append((path, len(fh.read())))
    except OSError:
        pass
if leaked:
    raise SystemError(f"LEAKED {{leaked}}")"""


def network_loopback(port: int) -> str:
    return f"""\
import socket
leaked = []
for host in ("127.0.0.1", "localhost", "::1"):
    try:
        with socket.create_connection((host, {port}), timeout=2):
            leaked.append(host)
    except OSError:
        pass
try:
    with socket.create_connection(("1.1.1.1", 53), timeout=2):
        leaked.append("internet")
except OSError:
    pass
if leaked:
    raise SystemError(f"LEAKED {{leaked}}")"""


# -- attacks on the grader's own process (issue 12): what the kernel leaves for the grader to read, ---------
# -- write, count and remove. `canary` is a host folder the kernel cannot see: a link to it is followed only
# -- by a grader that trusts the kernel's folders.

def cache_link_then_die(canary: str) -> str:
    """The work folder's .cache becomes a link to a host folder, then the kernel dies: the fallback kernel's
    cache setup must not write through it."""
    return f"""\
import os, shutil
shutil.rmtree(".cache", ignore_errors=True)
os.symlink({canary!r}, ".cache")
os.symlink({canary!r}, ".tmp-{NONCE}")
os._exit(1)"""


def folder_swapper(canary: str, seconds: float = 60) -> str:
    """A forked process that swaps every folder the grader makes in the work folder (probe requests, the
    training inputs) for a link to a host folder, as fast as it can."""
    return f"""\
import os, time
if os.fork() == 0:
    os.setsid()
    end = time.monotonic() + {seconds}
    n = 0
    while time.monotonic() < end:
        for name in os.listdir("."):
            if name.startswith((".grader-probe-", "grader-train-")) and not os.path.islink(name):
                try:
                    os.rename(name, "swapped-%d" % n)
                    os.symlink({canary!r}, name)
                    n += 1
                except OSError:
                    pass
    os._exit(0)"""


# The probe's own calls are patched (it captures os.replace and numpy.save when it runs): its manifest becomes
# a FIFO fed a GiB of "[" by a thread, the training predictions FIFOs. A reader that opens one blocks forever.
FIFO_REPLIES = """\
import os, threading, numpy
_replace, _save = os.replace, numpy.save

def _flood(path):
    try:
        fd = os.open(path, os.O_WRONLY)
        chunk = b"[" * 2**20
        for _ in range(1024):
            os.write(fd, chunk)
    except OSError:
        pass

def _fifo(path):
    try:
        os.unlink(path)
    except OSError:
        pass
    os.mkfifo(path)
    threading.Thread(target=_flood, args=(path,), daemon=True).start()

def evil_replace(src, dst, *a, **k):
    if str(dst).endswith("manifest.json"):
        os.unlink(src)
        return _fifo(dst)
    return _replace(src, dst, *a, **k)

def evil_save(path, *a, **k):
    if "pred_" in str(path):
        return _fifo(str(path))
    return _save(path, *a, **k)

os.replace, numpy.save = evil_replace, evil_save"""


def _deep_tree_source(depth: int) -> str:
    return f"""\
def deep_tree(where, depth={depth}):
    fd = os.open(where, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):
        try:
            os.mkdir("d", dir_fd=fd)
        except FileExistsError:
            pass
        nxt = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nxt
    os.close(fd)
"""


def socket_folder() -> str:
    """Code that finds the kernel's socket folder (its IPC transport's path prefix)."""
    return """\
from ipykernel.kernelapp import IPKernelApp
sockets = os.path.dirname(IPKernelApp.instance().ip)
assert os.path.isdir(sockets), sockets"""


# A 3,000-deep tree in the work folder and in the socket folder (each deeper than the disk budget's walk).
DEEP_TREES = "import os\n" + _deep_tree_source(3000) + socket_folder() + """
try:
    deep_tree(sockets)     # refused where the grader (root) has locked the socket folder
except OSError as exc:
    print("socket folder:", exc)
deep_tree(".")"""

# The probe's os.replace patched: a 1,000-deep tree in the probe's folder just before the grader reads it.
DEEP_TREE_IN_PROBE = "import os\n" + _deep_tree_source(1000) + """
_replace = os.replace

def deep_replace(src, dst, *a, **k):
    if str(dst).endswith("manifest.json"):
        deep_tree(os.path.dirname(os.path.dirname(str(dst))))
    return _replace(src, dst, *a, **k)

os.replace = deep_replace"""


def file_flood(where: str, files: int = 120_000, mib: int = 0) -> str:
    """Empty files (and `mib` MiB of data) in one of the places the kernel can write: "work" (its folder),
    "tmp" (the sandbox's /tmp), "shm" (/dev/shm), "socket" (its socket folder on the host's /tmp)."""
    folder = {"work": "'flood'", "tmp": "'/tmp/flood'", "shm": "'/dev/shm/flood'",
              "socket": "os.path.join(sockets, 'flood')"}[where]
    return "import os\n" + socket_folder() + f"""
target = {folder}
os.makedirs(target, exist_ok=True)
chunk = b"f" * 2**20
for n in range({mib} // 64):
    with open(os.path.join(target, "big%d" % n), "wb") as fh:
        for _ in range(64):
            fh.write(chunk)
for n in range({files}):
    os.close(os.open(os.path.join(target, "%d" % n), os.O_CREAT | os.O_WRONLY))
print("flood done")"""


def losses(values: str) -> str:
    """The notebook's own loss list, as the report draws it."""
    return f"losses = {values}"
