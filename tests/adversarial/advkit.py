"""Shared pieces of the adversarial suite: notebooks built from the reference, a quick rubric,
and the "nothing left behind, nothing hurt" checks every attack ends with.

Every attack notebook is the reference (or the untouched template) plus attack cells, or with a
class replaced. Attacks that cheat are built on a deliberately BROKEN LSTM (tanh on the forget
gate): a forged pass would show up as points that notebook cannot earn.
"""
from __future__ import annotations

import importlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from proc_helpers import processes_mentioning

from grader.paths import PROJECT_ROOT, REFERENCE_NOTEBOOK, TEMPLATE_NOTEBOOK

# Points a notebook that is the reference with a tanh forget gate earns in TA grading (measured
# with the real grader): every check but lstm.forward (12), lstm.grad (8) and the hidden lstm.sizes
# (2, skipped behind the failing forward pass); lstm.train (14) may go either way: it still trains
# past the threshold on most seeds.
# The attacks are graded as the TA grades (`check --full`: live reference, fresh secret inputs,
# hidden checks too): that is the grade a cheat would be after.
BROKEN_LSTM_SCORE = 80  # 100 - lstm.forward 10 - lstm.grad 8 - lstm.sizes 2
BROKEN_LSTM_FAILS = {"lstm.forward", "lstm.grad", "lstm.sizes"}
ALL_CHECKS = 22
_FORGET_GATE = "f_t = torch.sigmoid(x_t @ self.W_xf + h_t @ self.W_hf + self.b_f)"
_IMPORTS_CELL = 7


def reference() -> nbformat.NotebookNode:
    return nbformat.read(REFERENCE_NOTEBOOK, as_version=4)


def class_cell(nb: nbformat.NotebookNode, name: str = "CustomLSTM") -> int:
    """The index of the code cell that defines `name` (found by content: the lab's cells move)."""
    return next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.startswith(f"class {name}("))


def broken_lstm() -> nbformat.NotebookNode:
    """The reference with tanh on the LSTM's forget gate: 78 points, honestly."""
    nb = reference()
    cell = nb.cells[class_cell(nb)]
    assert _FORGET_GATE in cell.source
    cell.source = cell.source.replace(_FORGET_GATE, _FORGET_GATE.replace("torch.sigmoid", "torch.tanh"))
    return nb


def template() -> nbformat.NotebookNode:
    return nbformat.read(TEMPLATE_NOTEBOOK, as_version=4)


def with_cells(nb: nbformat.NotebookNode, *sources: str, at: str = "after_imports") -> nbformat.NotebookNode:
    """nb with code cells inserted: after the imports cell, at the start, or at the end."""
    cells = [nbformat.v4.new_code_cell(s) for s in sources]
    if at == "start":
        nb.cells[0:0] = cells
    elif at == "end":
        nb.cells.extend(cells)
    else:
        index = _IMPORTS_CELL + 1 if nb.cells[_IMPORTS_CELL].source.startswith("import os") else 0
        nb.cells[index:index] = cells
    return nb


def write(nb: nbformat.NotebookNode, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.ipynb"
    path.write_text(nbformat.writes(nb), encoding="utf-8")
    return path


# -- running the grader ---------------------------------------------------------------------


@dataclass
class Checked:
    code: int
    result: dict | None
    stdout: str
    stderr: str

    @property
    def statuses(self) -> dict[str, str]:
        return {c["id"]: c["status"] for c in (self.result or {}).get("checks", [])}

    @property
    def not_passed(self) -> set[str]:
        return {i for i, s in self.statuses.items() if s != "passed"}

    @property
    def score(self) -> float:
        assert self.result is not None, self.stderr[-2000:]
        return self.result["score"]


def grader_env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp), "PYTHONDONTWRITEBYTECODE": "1"}


def check_in_process(notebook: Path, rubric: Path) -> Checked:
    """grader.pipeline.check_notebook in the test's own process, as its JSON result."""
    from grader.pipeline import CheckOptions, check_notebook
    from grader.report.json_report import report_to_json
    from grader.rubric import load_rubric

    report = check_notebook(notebook, CheckOptions(rubric=rubric, device="cpu", self_check=False), lang="en")
    result = json.loads(json.dumps(report_to_json(report, load_rubric(rubric), "en")))
    return Checked(0 if report.all_passed else 1, result, "", "")


def leaks(checked: Checked) -> list[str]:
    """Attack cells end with `raise SystemError('LEAKED ...')` when they got something they must not."""
    return [c["error_value"] for c in (checked.result or {}).get("cells", [])
            if "LEAKED" in (c.get("error_value") or "")]


def cell(checked: Checked, index: int) -> dict:
    """The record of the code cell at notebook index `index`."""
    return next(c for c in checked.result["cells"] if c["index"] == index)


ATTACK_INDEX = _IMPORTS_CELL + 1  # where with_cells(..., at="after_imports") puts the first attack cell


def check_subprocess(notebook: Path, tmp: Path, *extra: str, timeout: float = 240) -> Checked:
    """`python -m grader check NOTEBOOK --full --format json` in a child process (attacks that could harm us)."""
    tmp.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "grader", "check", str(notebook), "--full", "--format", "json", "--lang", "en", *extra],
        cwd=tmp, env=grader_env(tmp), capture_output=True, text=True, timeout=timeout,
    )
    try:
        result = json.loads(done.stdout)
    except ValueError:
        result = None
    return Checked(done.returncode, result, done.stdout, done.stderr)


def assert_graded(checked: Checked) -> None:
    """A clear verdict: exit 0/1 and a JSON result with every check graded."""
    assert checked.code in (0, 1), (checked.code, checked.stderr[-3000:])
    assert checked.result is not None and len(checked.result["checks"]) == ALL_CHECKS
    assert 0 <= checked.score <= checked.result["max_score"] == 100
    for check in checked.result["checks"]:
        assert check["status"] in ("passed", "failed", "skipped", "error"), check
        assert 0 <= check["score"] <= check["max_score"]
        if check["status"] != "passed":
            assert check["score"] == 0, check


def assert_broken_lstm_score(checked: Checked, extra_fails: set[str] = frozenset()) -> None:
    """Exactly what a tanh forget gate earns (less what the attack itself broke), never more."""
    assert_graded(checked)
    # lstm.train may go either way: with the wrong gate the grader's training reaches the threshold
    # on most seeds, not all. Whatever happened, the score is exactly what passed.
    expected = BROKEN_LSTM_FAILS | set(extra_fails)
    assert expected <= checked.not_passed <= expected | {"lstm.train"}, checked.not_passed
    lost = sum(c["max_score"] for c in checked.result["checks"] if c["id"] in checked.not_passed - BROKEN_LSTM_FAILS)
    assert checked.score == BROKEN_LSTM_SCORE - lost


# -- nothing left behind -------------------------------------------------------------------

# Names the grader gives its own folders in kernel-writable places and temporary space: none may survive a test.
GRADER_FOLDER_PREFIXES = ("gk-", "grader-kernel-", "grader-run-", "grader-scratch-", "grader-workers-",
                          ".grader-probe-", "grader-train-")
# Where an escaped write would land (a folder, how deep to look): searched for NONCE only, so what other
# programs on a busy machine write meanwhile never fails a test.
_ESCAPE_ROOTS = ((PROJECT_ROOT, 3), (Path.home(), 3), (Path("/tmp"), 2), (Path("/work"), 2), (Path("/"), 1))
_MARKER_READ_BYTES = 4096
_MARKED_SUFFIXES = (".json", ".npy", ".txt", ".nbi", ".csv", ".html", ".sqlite", ".xml")


def _walk(folder: Path, depth: int, limit: int = 200_000):
    """Entries under folder to `depth`, links not followed, at most `limit` (a test's own walk is bounded too)."""
    stack = [(folder, depth)]
    seen = 0
    while stack and seen < limit:
        current, left = stack.pop()
        try:
            with os.scandir(current) as it:
                for entry in it:
                    seen += 1
                    yield entry
                    if left > 1 and entry.is_dir(follow_symlinks=False) and entry.name not in (".git", ".venv", "proc", "sys"):
                        stack.append((Path(entry.path), left - 1))
        except OSError:
            continue


def escaped(nonce: str, inside: Path) -> list[str]:
    """Files outside the test's folder `inside` that carry the attacks' nonce in their name or first bytes."""
    found = []
    mine = str(inside)
    for root, depth in _ESCAPE_ROOTS:
        for entry in _walk(root, depth):
            if entry.path == mine or entry.path.startswith(mine + os.sep):
                continue
            if nonce in entry.name:
                found.append(entry.path)
            elif entry.is_file(follow_symlinks=False) and entry.name.endswith(_MARKED_SUFFIXES):
                try:
                    with open(entry.path, "rb") as fh:
                        if nonce.encode() in fh.read(_MARKER_READ_BYTES):
                            found.append(entry.path)
                except OSError:
                    continue
    return sorted(set(found))


def grader_leftovers(root: Path) -> list[str]:
    return sorted(e.path for e in _walk(root, 6) if e.name.startswith(GRADER_FOLDER_PREFIXES))


def _our_cgroups() -> set[str]:
    base = Path("/sys/fs/cgroup")
    mine = f"grader-kernel-{os.getpid()}-"
    return {e.path for e in _walk(base, 3, limit=20_000) if e.name.startswith(mine)} if base.is_dir() else set()


def require_sandbox() -> None:
    """Fail, never skip: the suite proves the sandbox, and CI must run it with the sandbox active."""
    from grader import sandbox

    reason = sandbox.bwrap_unavailable()
    if reason:
        pytest.fail(f"the adversarial suite needs the kernel sandbox, which is not available here: {reason} "
                    "(make setup installs bubblewrap)")


def children() -> set[int]:
    """Our child processes, less multiprocessing's resource tracker (one per process, started by the
    first spawned batch worker and meant to live as long as we do)."""
    me = str(os.getpid())
    kids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[1] == me and b"resource_tracker" not in cmdline:
            kids.add(int(entry.name))
    return kids


def health() -> dict[str, int]:
    status = Path("/proc/self/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_kb": int(fields["VmRSS"].split()[0]),
        "threads": int(fields["Threads"]),
        "fds": len(os.listdir("/proc/self/fd")),
    }


@pytest.fixture
def contained(monkeypatch):
    """Runs an attack inside a folder of its own; afterwards: no grader folder left in it, nothing carrying the
    attacks' nonce anywhere outside it, no process of ours left, the test process as healthy as before.

    The folder is short and directly in /tmp, so the kernels' socket folders (which need short paths) land in
    it too, and everything the grader makes is found there: nothing else on a busy machine is compared.
    Yields the grader's TMPDIR (`work`); `work.parent` is the test's own folder for notebooks and outputs.
    """
    import attacks

    root = Path(tempfile.mkdtemp(prefix="adv-", dir="/tmp"))
    work = root / "t"
    work.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(work))
    monkeypatch.setenv("TMPDIR", str(work))
    monkeypatch.chdir(root)
    for name in ("torch", "grader.pipeline", "grader.checks.model", "grader.checks.training"):
        importlib.import_module(name)  # loaded before measuring: the first grading would load them
    kids, vitals = children(), health()
    try:
        yield work
        deadline = time.monotonic() + 30
        while processes_mentioning(str(root)) and time.monotonic() < deadline:
            time.sleep(0.2)  # kernels die by PDEATHSIG, asynchronously
        assert processes_mentioning(str(root)) == []
        assert grader_leftovers(root) == []
        assert escaped(attacks.NONCE, root) == [], "written outside the test's folder"
        assert _our_cgroups() == set()
        deadline = time.monotonic() + 10
        while not children() <= kids and time.monotonic() < deadline:
            time.sleep(0.2)
        assert children() <= kids, [(p, Path(f"/proc/{p}/cmdline").read_bytes()[:200]) for p in children() - kids]
        after = health()
        assert after["threads"] <= vitals["threads"] + 4, (vitals, after)
        assert after["fds"] <= vitals["fds"] + 16, (vitals, after)
        assert after["rss_kb"] <= vitals["rss_kb"] + 400 * 1024, (vitals, after)
    finally:
        from grader.untrusted_fs import remove_tree
        remove_tree(root)


class LoopbackServer:
    """A TCP server on 127.0.0.1 in the test's process that records every connection it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections: list[tuple] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, addr = self.sock.accept()
            except OSError:
                continue
            self.connections.append(addr)
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def loopback_server():
    server = LoopbackServer()
    yield server
    server.close()
