"""Attacks on the grader's own process (issue 12): the grader runs outside the sandbox and reads, writes,
counts and removes what the kernel touched. One attack per way that went wrong before; each must end in a
verdict (never exit 3), within a bounded time, with nothing written on the host (the `canary` folder and
the attacks' nonce, see advkit.escaped), no grader folder or process left (the `contained` fixture) and the
grader's memory well under 1 GiB. The batch test at the end grades them beside an honest student.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import attacks
import pytest
from advkit import Checked, assert_graded, cell, check_in_process, health, reference, require_sandbox, with_cells, write

from grader.paths import PROJECT_ROOT

pytestmark = pytest.mark.kernel  # every attack is graded in a real (sandboxed) kernel

MODEL_CHECKS = ("rnn.forward", "rnn.grad", "lstm.forward", "lstm.grad")
# Each attack is graded well within this (a hang guard: the quick rubric's limits end a stuck one sooner).
WALL_S = 200
GRADER_RSS_LIMIT_KB = 1024 * 1024


@pytest.fixture(autouse=True)
def _sandbox_is_active() -> None:
    require_sandbox()


@pytest.fixture
def canary(contained) -> Path:
    """A host folder outside everything the kernel can see; it must stay empty."""
    folder = contained.parent / f"host-canary-{attacks.NONCE}"
    folder.mkdir()
    return folder


def _canary_untouched(folder: Path) -> None:
    assert list(folder.iterdir()) == [], f"written on the host: {sorted(os.listdir(folder))[:10]}"


class _PeakRss:
    """The test process's (the grader's) peak resident memory while a block runs."""

    def __enter__(self) -> _PeakRss:
        self.peak = health()["rss_kb"]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, health()["rss_kb"])
            time.sleep(0.02)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _grade(nb, folder: Path, name: str, rubric: Path) -> Checked:
    path = write(nb, folder, name)
    began = time.monotonic()
    with _PeakRss() as rss:
        checked = check_in_process(path, rubric)
    assert time.monotonic() - began < WALL_S
    assert rss.peak < GRADER_RSS_LIMIT_KB, f"grader RSS {rss.peak // 1024} MiB"
    assert_graded(checked)
    return checked


def _socket_folder_locked() -> bool:
    """Whether this grader locks the kernel's socket folder (sandbox.lock_socket_folder: root only)."""
    return os.geteuid() == 0


def _last_cell(checked: Checked) -> dict:
    """The record of the notebook's last cell (where with_cells(..., at="end") put the attack)."""
    return cell(checked, len(reference().cells))


def test_a_cache_link_left_by_a_dead_kernel_is_never_written_through(contained, canary, quick_rubric):
    checked = _grade(with_cells(reference(), attacks.cache_link_then_die(str(canary)), at="end"),
                     contained.parent, "attack_cache_link_then_die", quick_rubric)
    _canary_untouched(canary)
    assert checked.result["kernel_died"] and checked.result["fallback_kernel"]
    assert all(checked.statuses[c] == "passed" for c in MODEL_CHECKS), checked.statuses  # graded in a fresh folder


def test_folders_swapped_for_links_by_a_forked_process_lead_nowhere(contained, canary, quick_rubric):
    checked = _grade(with_cells(reference(), attacks.folder_swapper(str(canary)), at="end"),
                     contained.parent, "attack_folder_swapper", quick_rubric)
    _canary_untouched(canary)
    assert checked.statuses["notebook.runs"] == "passed"


def test_probe_replies_turned_into_fed_fifos_are_refused_at_once(contained, quick_rubric):
    checked = _grade(with_cells(reference(), attacks.FIFO_REPLIES, at="end"), contained.parent,
                     "attack_fifo_replies", quick_rubric)
    # The manifests were FIFOs: nothing usable came back, so no model check or training passed.
    assert not any(checked.statuses[c] == "passed" for c in (*MODEL_CHECKS, "lstm.train")), checked.statuses


@pytest.mark.parametrize(("attack", "source"), [
    ("attack_deep_trees", attacks.DEEP_TREES),
    ("attack_deep_tree_in_probe", attacks.DEEP_TREE_IN_PROBE),
])
def test_deep_trees_in_every_kernel_folder_are_counted_and_removed(contained, quick_rubric, attack, source):
    checked = _grade(with_cells(reference(), source, at="end"), contained.parent, attack, quick_rubric)
    if attack == "attack_deep_trees":  # too deep for the budget's walk: the kernel is stopped, the classes graded
        assert checked.result["fallback_kernel"]
        assert all(checked.statuses[c] == "passed" for c in MODEL_CHECKS), checked.statuses


@pytest.mark.parametrize("where", ["socket", "tmp", "shm", "work"])
def test_file_floods_are_counted_wherever_the_kernel_can_write(contained, quick_rubric, where, monkeypatch):
    """Empty files past the file budget in the socket folder on the host, the sandbox's /tmp and /dev/shm
    (host folders, so no inode-less tmpfs), or the work folder: the kernel is stopped, a fallback kernel in a
    fresh folder grades the classes. The budget is 100,000 entries; 5,000 here, so that the flood outruns the
    quick rubric's 6 s cell limit on a slow machine (the same code path, fewer files)."""
    import grader.hosting.budgets as budgets

    monkeypatch.setattr(budgets, "MAX_ENTRIES", 5_000)
    checked = _grade(with_cells(reference(), attacks.file_flood(where, files=40_000), at="end"), contained.parent,
                     f"attack_file_flood_{where}", quick_rubric)
    flood = _last_cell(checked)
    if where == "socket" and _socket_folder_locked():
        # A root grader locks the socket folder once the kernel's sockets exist: nothing can be written there.
        assert (flood["status"], flood["error_name"]) == ("error", "PermissionError"), flood
        return
    assert (flood["status"], flood["error_name"]) == ("error", "DiskLimit"), flood
    assert checked.result["fallback_kernel"]
    assert all(checked.statuses[c] == "passed" for c in MODEL_CHECKS), checked.statuses


@pytest.mark.parametrize("where", ["socket", "tmp", "shm"])
def test_gigabytes_in_kernel_folders_count_against_the_disk_budget(contained, quick_rubric, monkeypatch, where):
    """640 MiB in the socket folder, or in the sandbox's /tmp or /dev/shm (RAM when they were tmpfs; host folders
    now), under a 300 MiB budget: the kernel is stopped (a root grader's locked socket folder refuses it first)."""
    import grader.pipeline as pipeline

    plain = pipeline.execution_limits

    def small_disk(*args, **kwargs):  # the default budget (2 GiB) works the same, only slower
        from dataclasses import replace
        return replace(plain(*args, **kwargs), disk_bytes=300 * 2**20)

    monkeypatch.setattr(pipeline, "execution_limits", small_disk)
    checked = _grade(with_cells(reference(), attacks.file_flood(where, files=0, mib=640), at="end"),
                     contained.parent, f"attack_{where}_bytes", quick_rubric)
    flood = _last_cell(checked)
    expected = "PermissionError" if where == "socket" and _socket_folder_locked() else "DiskLimit"
    assert (flood["status"], flood["error_name"]) == ("error", expected), flood


# -- a batch: every grader-side attack beside an honest student, and the class's outputs complete ------------


_CURVES = {
    "overflow": "[1.7e308, -1.7e308]",
    "below_resolution": "[1.0, 1.0 + 4 * 2**-52]",
    "endless_ticks": "[1e16, 1e16 + 2]",
}


def test_a_batch_of_grader_side_attacks_keeps_every_output_and_the_honest_100(contained, canary, quick_rubric):
    from grader.batch.run import GradeOptions, grade

    subs = contained.parent / "subs"
    write(reference(), subs, "honest")
    for name, values in _CURVES.items():
        write(with_cells(reference(), attacks.losses(values), at="end"), subs, f"curve_{name}")
    write(with_cells(reference(), attacks.cache_link_then_die(str(canary)), at="end"), subs, "cache_link")
    write(with_cells(reference(), attacks.FIFO_REPLIES, at="end"), subs, "fifo_replies")
    write(with_cells(reference(), attacks.DEEP_TREES, at="end"), subs, "deep_trees")
    out = contained.parent / "out"
    began = time.monotonic()
    summary = grade(GradeOptions(submissions=subs, out=out, jobs=2, lang="en", rubric=quick_rubric),
                    out=io.StringIO(), err=io.StringIO())
    assert time.monotonic() - began < 4 * WALL_S
    ids = {"honest", "cache_link", "fifo_replies", "deep_trees", *(f"curve_{n}" for n in _CURVES)}
    assert summary.outcomes == {"graded": len(ids)}
    _canary_untouched(canary)
    rows = _grades_csv(out / "grades.csv")
    assert set(rows) == ids
    assert float(rows["honest"]["total"]) == 100
    for name in _CURVES:  # the student's own curve is display only: full marks, and a report that renders
        assert float(rows[f"curve_{name}"]["total"]) == 100
    for student in ids:
        page = (out / "reports" / f"{student}.html").read_text(encoding="utf-8")
        assert "</html>" in page
        assert (out / "results" / f"{student}.json").is_file()
    assert (out / "summary.html").is_file() and (out / "junit.xml").is_file()
    # and `grader report` on the stored results renders them all again, in the other language
    again = subprocess.run([sys.executable, "-m", "grader", "report", str(out / "results"), "-o",
                            str(contained.parent / "again"), "--lang", "zh"],
                           cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
                           env={**os.environ, "TMPDIR": str(contained)})
    assert again.returncode in (0, 1), again.stderr[-2000:]
    assert {p.stem for p in (contained.parent / "again" / "reports").glob("*.html")} == ids


def _grades_csv(path: Path) -> dict[str, dict[str, str]]:
    import csv

    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {r["id"]: r for r in rows[1:]}  # the first data row holds the maximum points


def test_a_fallback_kernel_that_cannot_start_is_a_verdict_not_exit_3(contained, quick_rubric, monkeypatch):
    """The notebook's kernel dies and the fresh one fails to start (here: made to fail): the checks it would
    have run get an error verdict that says why, the rest of the result stands."""
    from grader.errors import InternalError
    from grader.hosting.session import KernelSession

    starts = []
    real_start = KernelSession.start

    def second_start_fails(self):
        starts.append(self)
        if len(starts) > 1:
            raise InternalError("made to fail by the test")
        return real_start(self)

    monkeypatch.setattr(KernelSession, "start", second_start_fails)
    checked = _grade(with_cells(reference(), attacks.OS_EXIT, at="end"), contained.parent,
                     "attack_kernel_death_no_fallback", quick_rubric)
    assert len(starts) == 2
    assert checked.statuses["notebook.runs"] == "failed" and checked.statuses["loop.train"] == "passed"
    lstm = next(c for c in checked.result["checks"] if c["id"] == "lstm.forward")
    assert lstm["status"] == "error" and "made to fail" in lstm["message"]


SHARED_MEMORY = """\
import mmap
block = mmap.mmap(-1, 3 * 2**30)      # shared and anonymous: RLIMIT_DATA does not count it
for at in range(0, len(block), 4096):
    block[at] = 1
print("touched")"""


def test_shared_memory_beyond_the_memory_limit_stops_the_kernel(contained, quick_rubric, monkeypatch):
    """A shared anonymous mapping is RAM the data limit never sees; the watchdog counts it (limit here 1 GiB)."""
    from dataclasses import replace

    import grader.pipeline as pipeline

    plain = pipeline.execution_limits
    monkeypatch.setattr(pipeline, "execution_limits", lambda *a, **k: replace(plain(*a, **k), memory_bytes=2**30))
    checked = _grade(with_cells(reference(), SHARED_MEMORY, at="end"), contained.parent, "attack_shared_memory",
                     quick_rubric)
    last = _last_cell(checked)
    assert (last["status"], last["error_name"]) == ("error", "MemoryLimit"), last
    assert all(checked.statuses[c] == "passed" for c in MODEL_CHECKS), checked.statuses
