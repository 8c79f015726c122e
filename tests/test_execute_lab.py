"""The lab's own cells, mirrored in a mini notebook, run headless on a tiny synthetic dataset."""
from __future__ import annotations

import csv
from pathlib import Path

import nbformat
import numpy as np
import pytest
import soundfile

from grader.devices import resolve_device
from grader.hosting.limits import ExecutionLimits
from grader.hosting.records import ExecutionResult
from grader.hosting.session import KernelSession
from grader.hosting.workdir import prepare_workdir

pytestmark = pytest.mark.kernel  # the mini lab runs in a real kernel

FIXTURES = Path(__file__).parent / "notebooks" / "exec"
MINI_LAB = FIXTURES / "mini_lab_runs_with_npu_remapped_and_epochs_capped.ipynb"
CLASSES = {"cat": 300.0, "dog": 600.0, "bird": 1200.0}


def write_dataset(root: Path, per_class: dict[str, int], sr: int = 8000) -> None:
    """Tones of three pitches and varied lengths, in the lab's layout."""
    rng = np.random.default_rng(0)
    for split, count in per_class.items():
        (root / split).mkdir(parents=True)
        rows = []
        for k in range(count * len(CLASSES)):
            label = list(CLASSES)[k % len(CLASSES)]
            t = np.arange(int(sr * rng.uniform(0.2, 0.4))) / sr
            y = 0.5 * np.sin(2 * np.pi * CLASSES[label] * t) + 0.01 * rng.standard_normal(t.size)
            name = f"{k:03d}.wav"
            soundfile.write(root / split / name, y.astype(np.float32), sr)
            rows.append((name, label))
        with (root / f"{split}.csv").open("w", newline="") as fh:
            csv.writer(fh).writerows([("filename", "class"), *rows])


@pytest.fixture(scope="module")
def lab_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[ExecutionResult, dict[str, str]]:
    base = tmp_path_factory.mktemp("lab")
    write_dataset(base / "dataset", {"train": 4, "test": 2})
    workdir = prepare_workdir(MINI_LAB, base / "dataset", parent=base / "runs")
    nb = nbformat.read(workdir / MINI_LAB.name, as_version=4)
    np.save(workdir / "probe_in.npy", np.zeros((5, 2, 13), dtype=np.float32))
    limits = ExecutionLimits(cell_timeout_s=120, notebook_timeout_s=240, epoch_cap=2)
    with KernelSession(workdir, resolve_device("cpu"), limits) as session:
        result = session.run_notebook(nb)
        probe = session.run_code(
            "import json, numpy as np, torch\n"
            "x = torch.from_numpy(np.load('probe_in.npy'))\n"
            "with torch.no_grad():\n"
            "    np.save('probe_out.npy', model(x).numpy())\n"
            "print(json.dumps({'shape': list(model(x).shape), 'device': str(next(model.parameters()).device)}))",
            30,
        )
    return result, {"stdout": probe.stdout, "ok": str(probe.ok), "workdir": str(workdir)}


def cell_text(result: ExecutionResult, index: int) -> str:
    return "".join(o.get("text", "") for o in result.notebook.cells[index].outputs)


def test_every_cell_of_the_mini_lab_runs(lab_run: tuple[ExecutionResult, dict[str, str]]) -> None:
    result, _ = lab_run
    assert [(c.index, c.status, c.error_name) for c in result.cells if c.status != "ok"] == []
    assert not result.kernel_died and not result.timed_out
    assert result.npu_remapped and result.device.kind == "cpu"
    assert [e.command for e in result.shell_escapes] == [
        "!pip install librosa==0.11.0 cffi==1.17.1",
        "!unzip -q -n data.zip",
    ]


def test_training_is_capped_to_two_epochs_and_the_per_epoch_division_works(
    lab_run: tuple[ExecutionResult, dict[str, str]],
) -> None:
    result, _ = lab_run
    training = next(c for c in result.cells if "for epoch in range(num_epochs)" in c.source)
    text = cell_text(result, training.index)
    assert "epochs run: 2" in text and "s/epoch" in text


def test_the_loss_curve_is_kept_once_after_clear_output(lab_run: tuple[ExecutionResult, dict[str, str]]) -> None:
    result, _ = lab_run
    training = next(c for c in result.cells if "for epoch in range(num_epochs)" in c.source)
    outputs = result.notebook.cells[training.index].outputs
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1  # clear_output(wait=True) left only the last epoch's plot


def test_evaluation_with_npu_calls_runs(lab_run: tuple[ExecutionResult, dict[str, str]]) -> None:
    result, _ = lab_run
    assert "Test Accuracy:" in cell_text(result, result.cells[-1].index)


def test_a_probe_reads_and_writes_files_in_the_workdir(lab_run: tuple[ExecutionResult, dict[str, str]]) -> None:
    _, probe = lab_run
    assert probe["ok"] == "True"
    assert probe["stdout"] == '{"shape": [2, 3], "device": "cpu"}\n'
    assert np.load(Path(probe["workdir"]) / "probe_out.npy").shape == (2, 3)
