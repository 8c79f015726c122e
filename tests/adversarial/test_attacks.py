"""The adversarial suite (issue 6): one notebook per attack, graded by the real grader with real,
sandboxed kernels. Each test asserts a clear verdict, no unearned points, the rest of the run (or
batch) unaffected, nothing left outside the test's temporary folder (the `contained` fixture), and
the grader's process still healthy (same fixture; and it grades again right after).

Run it alone with `pytest tests/adversarial`; docs/security.md describes the threat model.
"""
from __future__ import annotations

import io
import json
import secrets
import sqlite3
import threading
import time

import attacks
import pytest
from advkit import (
    ATTACK_INDEX,
    BROKEN_LSTM_SCORE,
    Checked,
    assert_broken_lstm_score,
    assert_graded,
    broken_lstm,
    cell,
    check_in_process,
    check_subprocess,
    health,
    leaks,
    reference,
    require_sandbox,
    template,
    with_cells,
    write,
)

from grader import sandbox
from grader.rubric import load_rubric

pytestmark = pytest.mark.kernel  # every attack is graded in a real (sandboxed) kernel


@pytest.fixture(autouse=True)
def _sandbox_is_active() -> None:
    require_sandbox()


def assert_template_score(checked: Checked) -> None:
    """The untouched template earns nothing; an attack on it must not change that."""
    assert_graded(checked)
    assert checked.score == 0 and checked.statuses["notebook.runs"] == "failed"
    assert checked.result["protections"]["filesystem"] and checked.result["protections"]["network"]


# -- time, death, processes, memory, disk, output --------------------------------------------


@pytest.mark.parametrize(("attack", "source", "status", "error"), [
    ("attack_infinite_loop", attacks.INFINITE_LOOP, "timeout", "KeyboardInterrupt"),
    ("attack_swallow_keyboard_interrupt", attacks.SWALLOW_KEYBOARD_INTERRUPT, "timeout", "KernelKilled"),
    ("attack_os_exit", attacks.OS_EXIT, "error", "KernelDied"),
    ("attack_sigkill_self", attacks.SIGKILL_SELF, "error", "KernelDied"),
    ("attack_memory_bomb", attacks.MEMORY_BOMB, "error", "MemoryError"),
])
def test_process_attacks_get_a_verdict_and_nothing_else(contained, quick_rubric, attack, source, status, error):
    path = write(with_cells(template(), source, at="start"), contained.parent, attack)
    checked = check_in_process(path, quick_rubric)
    assert_template_score(checked)
    first = cell(checked, 0)
    assert (first["status"], first["error_name"]) == (status, error), first
    limit = load_rubric(quick_rubric).limits.cell_timeout_s
    assert first["duration_s"] < limit + 5 + 5  # the cell limit, the kill grace, a margin
    if error.startswith("Kernel"):
        assert checked.result["kernel_died"] and checked.result["fallback_kernel"]


def test_attack_fork_bomb_is_bounded_by_the_process_limit(contained, quick_rubric):
    if not sandbox.process_limit_available():
        # Fail, never skip: CI must prove this layer; running the bomb unbounded is not an option.
        pytest.fail("no process-count limit on this machine (root without a writable pids cgroup): "
                    "a fork bomb would be unbounded; see docs/security.md")
    path = write(with_cells(template(), attacks.FORK_BOMB, at="start"), contained.parent, "attack_fork_bomb")
    began = time.monotonic()
    checked = check_in_process(path, quick_rubric)
    assert_template_score(checked)
    assert checked.result["protections"]["process_limit"] is True
    first = cell(checked, 0)
    assert first["status"] == "ok", first  # fork failed at the limit; the kernel lived on
    assert time.monotonic() - began < 90


def test_attack_disk_filler_is_stopped_at_the_budget(contained, quick_rubric, monkeypatch):
    import grader.pipeline as pipeline

    plain = pipeline.execution_limits

    def small_disk(*args, **kwargs):  # the default budget (2 GiB) works the same, only slower
        from dataclasses import replace
        return replace(plain(*args, **kwargs), disk_bytes=300 * 2**20)

    monkeypatch.setattr(pipeline, "execution_limits", small_disk)
    path = write(with_cells(template(), attacks.DISK_FILLER, at="start"), contained.parent, "attack_disk_filler")
    checked = check_in_process(path, quick_rubric)
    assert_template_score(checked)
    first = cell(checked, 0)
    assert (first["status"], first["error_name"]) == ("error", "DiskLimit"), first
    assert "MiB" in first["message"]
    assert not list(contained.rglob("*.bin"))  # the work folder is gone with its filler


def test_attack_output_flood_keeps_the_grader_small(contained, quick_rubric):
    """Many small prints and one 200 MB print with the kernel's own cap undone: the grader's RSS
    stays flat (before the grader-side message cap it rose by ~600 MB), the verdict is clear."""
    nb = with_cells(template(), attacks.OUTPUT_FLOOD_SMALL, attacks.OUTPUT_FLOOD_HUGE, at="start")
    path = write(nb, contained.parent, "attack_output_flood")
    peak = [health()["rss_kb"]]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], health()["rss_kb"])
            time.sleep(0.02)

    base = health()["rss_kb"]
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        checked = check_in_process(path, quick_rubric)
    finally:
        stop.set()
        sampler.join()
    assert_template_score(checked)
    small, huge = cell(checked, 0), cell(checked, 1)
    assert small["status"] == "ok" and small["output_truncated"]
    assert (huge["status"], huge["error_name"]) == ("error", "OutputFlood"), huge
    assert peak[0] - base < 150 * 1024, f"RSS grew by {(peak[0] - base) // 1024} MiB"


# -- cheating: patched libraries, forged results -----------------------------------------------


@pytest.mark.parametrize(("attack", "source"), [
    ("attack_monkeypatch_torch", attacks.MONKEYPATCH_TORCH),
    ("attack_monkeypatch_numpy", attacks.MONKEYPATCH_NUMPY),
    ("attack_patch_builtins_comparisons", attacks.PATCH_BUILTINS_COMPARISONS),
])
def test_patched_comparisons_earn_nothing(contained, quick_rubric, attack, source):
    path = write(with_cells(broken_lstm(), source), contained.parent, attack)
    checked = check_in_process(path, quick_rubric)
    assert_graded(checked)
    assert cell(checked, ATTACK_INDEX)["status"] == "ok"
    # the broken forget gate stays failed whatever the kernel's torch/numpy/builtins say
    assert {"lstm.forward", "lstm.grad"} <= checked.not_passed
    assert checked.score <= BROKEN_LSTM_SCORE
    if attack != "attack_patch_builtins_comparisons":  # lying builtins may also break honest parts
        assert_broken_lstm_score(checked)


def test_attack_forge_results_file(contained, quick_rubric):
    path = write(with_cells(broken_lstm(), attacks.FORGE_RESULTS_FILE), contained.parent, "attack_forge_results_file")
    checked = check_subprocess(path, contained, "--rubric", str(quick_rubric))
    assert_broken_lstm_score(checked)  # stdout is the grader's JSON alone, not the fake one
    assert "Score: 100/100" not in checked.stdout + checked.stderr
    assert cell(checked, ATTACK_INDEX)["status"] == "ok"
    forged = [p for p in contained.parent.rglob("*") if p.name in ("results.json", "grades.sqlite", "report.html")]
    assert forged == []


# -- reading what must stay hidden; the network ------------------------------------------------


def test_attack_read_reference(contained, quick_rubric):
    path = write(with_cells(template(), attacks.read_reference(), at="start"), contained.parent, "attack_read_reference")
    checked = check_in_process(path, quick_rubric)
    assert_template_score(checked)
    assert leaks(checked) == [] and cell(checked, 0)["status"] == "ok", cell(checked, 0)


def test_attack_read_environment(contained, quick_rubric, monkeypatch):
    secret = "grader-secret-" + secrets.token_hex(8)
    monkeypatch.setenv("GRADER_ADVERSARIAL_SECRET", secret)
    path = write(with_cells(template(), attacks.read_environment(secret), at="start"), contained.parent,
                 "attack_read_environment")
    checked = check_in_process(path, quick_rubric)
    assert_template_score(checked)
    assert leaks(checked) == [] and cell(checked, 0)["status"] == "ok", cell(checked, 0)


def test_attack_network_loopback(contained, quick_rubric, loopback_server):
    path = write(with_cells(template(), attacks.network_loopback(loopback_server.port), at="start"),
                 contained.parent, "attack_network_loopback")
    checked = check_in_process(path, quick_rubric)
    assert_template_score(checked)
    assert leaks(checked) == [] and cell(checked, 0)["status"] == "ok", cell(checked, 0)
    assert loopback_server.connections == []


# -- a batch: attackers beside an honest student ------------------------------------------------


def test_attacks_in_a_batch_leave_the_honest_submission_its_100(contained, quick_rubric, tmp_path):
    from grader.batch.run import GradeOptions, grade
    from grader.batch.store import STORE_NAME

    subs = tmp_path / "subs"
    marker = "victim-marker-" + secrets.token_hex(8)
    victim_nb = reference()
    victim_nb.cells[_first_code(victim_nb)].source += f"\n# {marker}"
    victim = write(victim_nb, subs, "honest")
    write(with_cells(template(), attacks.read_other_submission(str(victim), marker), at="start"), subs,
          "attack_read_other_submission")
    write(with_cells(template(), attacks.FORK_BOMB, attacks.SWALLOW_KEYBOARD_INTERRUPT, at="start"), subs,
          "attack_fork_bomb_in_batch")
    out = tmp_path / "out"
    summary = grade(GradeOptions(submissions=subs, out=out, jobs=2, lang="en", rubric=quick_rubric),
                    out=io.StringIO(), err=io.StringIO())
    assert summary.outcomes == {"graded": 3}
    conn = sqlite3.connect(out / STORE_NAME)
    scores = dict(conn.execute("SELECT id, score FROM submissions"))
    conn.close()
    assert scores == {"honest": 100, "attack_read_other_submission": 0, "attack_fork_bomb_in_batch": 0}
    reader = json.loads((out / "results" / "attack_read_other_submission.json").read_text())
    first = next(c for c in reader["cells"] if c["index"] == 0)
    assert first["status"] == "ok" and "LEAKED" not in (first["error_value"] or ""), json.dumps(first)


def _first_code(nb) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")


# -- everything at once (the "done when") ---------------------------------------------


def test_every_in_kernel_attack_at_once_with_grader_check(contained, quick_rubric, loopback_server, monkeypatch):
    """One notebook, every attack that runs in the kernel, on a broken LSTM, through `grader check`:
    0 points for what it faked (the broken LSTM's checks), nothing learnt, no trace left."""
    secret = "grader-secret-" + secrets.token_hex(8)
    monkeypatch.setenv("GRADER_ADVERSARIAL_SECRET", secret)
    nb = with_cells(
        broken_lstm(),
        attacks.MONKEYPATCH_TORCH, attacks.MONKEYPATCH_NUMPY, attacks.FORGE_RESULTS_FILE,
        attacks.read_reference(), attacks.read_environment(secret), attacks.network_loopback(loopback_server.port),
        attacks.OUTPUT_FLOOD_SMALL, attacks.INFINITE_LOOP, attacks.MEMORY_BOMB, attacks.FORK_BOMB,
        attacks.DISK_FILLER, attacks.SWALLOW_KEYBOARD_INTERRUPT,
    )
    nb.cells.append(nb.cells.pop(ATTACK_INDEX + 10))  # the disk filler kills the kernel: last
    nb.cells.append(nb.cells.pop(ATTACK_INDEX + 10))  # and the swallowed interrupt after it, never reached
    path = write(nb, contained.parent, "attack_everything")
    checked = check_subprocess(path, contained, "--rubric", str(quick_rubric), timeout=400)
    assert_graded(checked)
    assert {"lstm.forward", "lstm.grad", "notebook.runs"} <= checked.not_passed
    assert checked.score <= BROKEN_LSTM_SCORE - 4  # notebook.runs is lost too
    assert checked.result["kernel_died"] and checked.result["fallback_kernel"]
    assert leaks(checked) == []
    assert loopback_server.connections == []
    assert "Score: 100/100" not in checked.stdout
    # and the grader grades the reference right after, in this process
    assert check_in_process(write(reference(), contained.parent, "reference_after"), quick_rubric).score == 100
