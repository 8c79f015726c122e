"""Real kernels running the fixture notebooks of tests/notebooks/exec/, named by their expected outcome."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from grader.devices import resolve_device
from grader.hosting.limits import ExecutionLimits
from grader.hosting.records import ExecutionResult
from grader.hosting.session import KernelSession

pytestmark = pytest.mark.kernel  # KernelSession's limits, each in a real kernel

FIXTURES = Path(__file__).parent / "notebooks" / "exec"
FAST = ExecutionLimits(cell_timeout_s=3, notebook_timeout_s=60, epoch_cap=2, kill_grace_s=1.5, output_bytes_per_cell=50_000)


def run(name: str, tmp_path: Path, limits: ExecutionLimits = FAST) -> ExecutionResult:
    nb = nbformat.read(FIXTURES / name, as_version=4)
    with KernelSession(tmp_path, resolve_device("cpu"), limits) as session:
        return session.run_notebook(nb)


def outputs_text(result: ExecutionResult, cell_index: int) -> str:
    cell = result.notebook.cells[cell_index]
    return "".join(o.get("text", "") for o in cell.outputs)


def statuses(result: ExecutionResult) -> list[str]:
    return [c.status for c in result.cells]


def test_an_error_does_not_stop_later_cells(tmp_path: Path) -> None:
    result = run("error_then_later_cells_run.ipynb", tmp_path)
    assert statuses(result) == ["ok", "error", "ok"]
    failed = result.cells[1]
    assert (failed.index, failed.error_name) == (2, "NameError")
    assert "undefined_name" in (failed.traceback or "") and "\x1b[" not in (failed.traceback or "")
    assert "still running 1" in outputs_text(result, 3)
    assert not result.kernel_died


def test_while_true_is_interrupted_and_later_cells_run(tmp_path: Path) -> None:
    result = run("hangs_while_true_interrupted_later_cells_run.ipynb", tmp_path)
    assert statuses(result) == ["timeout", "ok"]
    assert result.cells[0].message is not None and result.cells[0].message.key == "exec.cell_timeout"
    assert "after the loop" in outputs_text(result, 2)
    assert not result.kernel_died


def test_a_loop_swallowing_keyboardinterrupt_is_killed_by_the_watchdog(tmp_path: Path) -> None:
    result = run("hangs_swallowing_keyboardinterrupt_killed_by_watchdog.ipynb", tmp_path)
    assert statuses(result) == ["timeout", "not_run"]
    assert result.kernel_died and result.killed_by_watchdog
    assert result.cells[0].message is not None and result.cells[0].message.key == "exec.cell_killed"
    assert result.cells[0].duration_s < FAST.cell_timeout_s + FAST.kill_grace_s + 4


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("dies_os_exit_later_cells_not_run.ipynb", ["ok", "error", "not_run"]),
        ("dies_killing_own_kernel_later_cells_not_run.ipynb", ["error", "not_run"]),
    ],
)
def test_a_dying_kernel_is_recorded(name: str, expected: list[str], tmp_path: Path) -> None:
    result = run(name, tmp_path)
    assert statuses(result) == expected
    assert result.kernel_died and not result.killed_by_watchdog
    dead = next(c for c in result.cells if c.status == "error")
    assert dead.error_name == "KernelDied" and dead.message is not None


def test_a_memory_bomb_is_a_memoryerror(tmp_path: Path) -> None:
    # 6 GiB would fit in this machine's memory: only the kernel's RLIMIT_DATA stops it.
    result = run("memory_bomb_becomes_memoryerror.ipynb", tmp_path)
    assert statuses(result) == ["error", "error", "ok"]
    assert [c.error_name for c in result.cells[:2]] == ["MemoryError", "MemoryError"]
    assert "still alive" in outputs_text(result, 3)


def test_an_output_flood_is_capped(tmp_path: Path) -> None:
    result = run("output_flood_capped.ipynb", tmp_path)
    assert statuses(result) == ["ok", "ok"]
    flood = outputs_text(result, 1)
    assert flood.startswith("flood line 0\n") and len(flood) <= FAST.output_bytes_per_cell + 100
    assert result.cells[0].output_truncated and not result.cells[1].output_truncated


def test_the_kernel_sees_a_scrubbed_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADER_TEST_SECRET", "hunter2")
    result = run("env_has_no_grader_secrets.ipynb", tmp_path)
    assert statuses(result) == ["ok", "ok", "ok"]
    assert outputs_text(result, 1) == "None\nTrue 1 False\n"
    assert outputs_text(result, 2) == "1\n"  # one torch thread
    assert outputs_text(result, 3) == "True module://matplotlib_inline.backend_inline\n"


def test_the_epoch_cap_touches_only_epoch_loops(tmp_path: Path) -> None:
    result = run("epoch_cap_only_touches_epoch_loops.ipynb", tmp_path)
    assert outputs_text(result, 1) == (
        "{'epoch': 2, 'i_in_num_epochs': 2, 'plain_50': 50, 'nested_plain': 21, 'fn_epochs': 10}\n"
    )


def test_the_batch_cap_touches_only_loader_passes_inside_epoch_loops(tmp_path: Path) -> None:
    limits = ExecutionLimits(cell_timeout_s=30, notebook_timeout_s=60, epoch_cap=2, batch_cap=3, kill_grace_s=1.5)
    result = run("batch_cap_only_touches_loader_passes_in_epoch_loops.ipynb", tmp_path, limits)
    assert statuses(result) == ["ok", "ok", "error", "ok"]
    # However the batches are walked inside an epoch loop, three of the ten; len(loader) stays the dataset's.
    assert outputs_text(result, 1) == (
        "{'for': [3, 3], 'enumerate': [3, 3], 'tqdm': [3, 3], 'helper': [3, 3], 'len_iter': [3, 3], "
        "'plain_range': [10, 10], 'len_loader': [10, 10], 'after_loop': 10}\n"
    )
    assert outputs_text(result, 2) == "2 10\n"  # a loop left by `break` caps nothing after it
    assert outputs_text(result, 4) == "10\n"    # nor one left by an exception


def test_without_a_batch_cap_epoch_loops_walk_every_batch(tmp_path: Path) -> None:
    result = run("batch_cap_only_touches_loader_passes_in_epoch_loops.ipynb", tmp_path,
                 ExecutionLimits(cell_timeout_s=30, notebook_timeout_s=60, epoch_cap=2, kill_grace_s=1.5))
    assert "'for': [10, 10]" in outputs_text(result, 1) and "'helper': [10, 10]" in outputs_text(result, 1)


def test_optimizers_step_without_importing_dynamo_and_compile_still_works(tmp_path: Path) -> None:
    import importlib.util

    limits = ExecutionLimits(cell_timeout_s=60, notebook_timeout_s=120, epoch_cap=2, kill_grace_s=1.5)
    result = run("optimizers_step_without_importing_dynamo_compile_still_works.ipynb", tmp_path, limits)
    assert statuses(result) == ["ok", "ok"]
    # The same steps in this process, with the real torch._dynamo: the stand-in changes no number.
    spec = importlib.util.spec_from_file_location("exec_fixtures", FIXTURES / "make_fixtures.py")
    assert spec is not None and spec.loader is not None
    fixtures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixtures)
    here: dict[str, object] = {}
    exec(fixtures.OPTIMIZER_STEPS, here)
    assert outputs_text(result, 1) == f"{here['loss'].item():.6f} _StandIn\n"  # type: ignore[attr-defined]
    # torch.compile imports the real module, and the optimizers keep working with it
    assert outputs_text(result, 2) == "[3.0, 3.0] module\nstepped after compiling\n"


def test_shell_escapes_are_skipped_and_listed(tmp_path: Path) -> None:
    result = run("shell_escapes_skipped_rest_of_cell_runs.ipynb", tmp_path)
    assert set(statuses(result)) == {"ok"}
    assert outputs_text(result, 1) == "after pip\n"
    assert outputs_text(result, 3) == "after escapes []\n"
    assert outputs_text(result, 6) == "[]\n"  # no *_ran.txt: none of the shells ran
    commands = [(e.cell_index, e.command.splitlines()[0]) for e in result.shell_escapes]
    assert commands == [
        (1, "%pip install numpy==1.0"),
        (2, "%%bash"),
        (3, "files = !ls"),
        (3, "!!ls"),
        (3, "%conda install x"),
        (3, "%system touch system_ran.txt"),
        (4, "%%sh"),
        (5, "%%script bash"),
        (6, "!touch bang_ran.txt"),
    ]


def test_npu_spellings_run_on_the_grading_device(tmp_path: Path) -> None:
    result = run("npu_spellings_run_on_grading_device.ipynb", tmp_path)
    assert statuses(result) == ["ok", "ok"]
    assert outputs_text(result, 1) == str(["cpu"] * 9 + ["False", "0"]) + "\n"
    assert result.npu_remapped


def test_probe_code_runs_after_the_notebook_and_never_hangs(tmp_path: Path) -> None:
    nb = nbformat.read(FIXTURES / "error_then_later_cells_run.ipynb", as_version=4)
    with KernelSession(tmp_path, resolve_device("cpu"), FAST) as session:
        session.run_notebook(nb)
        assert session.startup_failures() == []
        probe = session.run_code("import json\nn = sum(1 for epoch in range(5))\nprint(json.dumps({'x': x, 'n': n}))", 10)
        assert probe.ok and probe.stdout == '{"x": 1, "n": 5}\n'  # the epoch cap does not apply
        failing = session.run_code("raise ValueError('bad probe')", 10)
        assert (failing.ok, failing.error_name, failing.error_value) == (False, "ValueError", "bad probe")
        swallow = "import time\nwhile True:\n    try:\n        time.sleep(0.05)\n    except KeyboardInterrupt:\n        pass"
        hung = session.run_code(swallow, 1)
        assert hung.timed_out and hung.kernel_died and not session.alive()
        assert session.run_code("print(1)", 5).kernel_died
    # A fresh kernel on the same workdir runs arbitrary code (the fallback after a death).
    with KernelSession(tmp_path, resolve_device("cpu"), FAST) as fresh:
        assert fresh.alive()
        again = fresh.run_code("import os\nprint(os.path.basename(os.getcwd()))", 10)
        assert again.stdout == f"{tmp_path.name}\n"


def test_the_notebook_budget_stops_the_run(tmp_path: Path) -> None:
    limits = ExecutionLimits(cell_timeout_s=30, notebook_timeout_s=2, epoch_cap=2, kill_grace_s=1.5)
    result = run("hangs_while_true_interrupted_later_cells_run.ipynb", tmp_path, limits)
    assert statuses(result) == ["timeout", "not_run"]
    assert result.timed_out and not result.kernel_died
    assert result.cells[0].message is not None and result.cells[0].message.key == "exec.notebook_budget"
    assert result.cells[1].message is not None and result.cells[1].message.key == "exec.not_run_budget"


def test_a_kernel_logs_last_lines_are_kept_for_a_start_failure(tmp_path: Path) -> None:
    from grader.hosting.session import log_tail

    log = tmp_path / "kernel.log"
    log.write_bytes(b"x" * 5000 + b"\n" + b"\n".join(f"line {i}".encode() for i in range(30)) + b"\n\n")
    tail = log_tail(log)
    assert tail == [f"line {i}" for i in range(15, 30)]
    assert log_tail(tmp_path / "missing.log") == []
