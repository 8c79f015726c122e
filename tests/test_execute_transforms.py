"""The kernel-side pieces that need no kernel: AST transforms, the shell-escape scan, devices, limits."""
from __future__ import annotations

import ast
import os

import nbformat
import pytest

from grader.devices import resolve_device
from grader.errors import BadInputError
from grader.hosting.limits import ExecutionLimits
from grader.hosting.records import short_traceback
from grader.hosting.workdir import prepare_workdir
from grader.inkernel.transforms import PROBE_MARKER, EpochCap, NpuToDevice, Total, epoch_cap_transformer
from grader.notebook import ShellEscape, find_shell_escapes


def rewrite(source: str, transformer: object) -> str:
    return ast.unparse(transformer.visit(ast.parse(source)))  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("torch.device('npu')", "torch.device('cuda:0')"),
        ("torch.device('npu:3')", "torch.device('cuda:0')"),
        ("torch.device('npu', 0)", "torch.device('cuda:0')"),
        ("torch.device(type='npu', index=1)", "torch.device(type='cuda:0')"),
        ("x.to('npu:0')", "x.to('cuda:0')"),
        ("torch.ones(2, device='npu')", "torch.ones(2, device='cuda:0')"),
        ("x.npu()", "x.to('cuda:0')"),
        ("model.npu(0).train()", "model.to('cuda:0').train()"),
        ("d = f'npu:{rank}'", "d = 'cuda:0'"),
        ("print('npu is fast')", "print('npu is fast')"),
        ("print(f'npu: {loss}, {acc}')", "print(f'npu: {loss}, {acc}')"),
        ("torch.npu.is_available()", "torch.npu.is_available()"),
    ],
)
def test_npu_spellings_are_rewritten_and_nothing_else(source: str, expected: str) -> None:
    assert rewrite(source, NpuToDevice("cuda:0")) == expected


def test_epoch_cap_wraps_epoch_loops_only() -> None:
    out = rewrite(
        "for epoch in range(num_epochs):\n"
        "    for features, labels in loader:\n"
        "        pass\n"
        "for t in range(seq_len):\n"
        "    pass\n"
        "for i in tqdm(range(self.epochs)):\n"
        "    pass\n",
        EpochCap(2),
    )
    assert "islice(range(num_epochs), 2)" in out
    assert "islice(tqdm(range(self.epochs)), 2)" in out
    assert "for features, labels in loader:" in out
    assert "for t in range(seq_len):" in out


def test_capped_loop_runs_two_epochs_and_keeps_the_division_quirk_working() -> None:
    code = "n = 0\nfor epoch in range(50):\n    n += 1\nrate = 10 / epoch\n"
    namespace: dict[str, object] = {}
    tree = epoch_cap_transformer(2).visit(ast.parse(code))
    exec(compile(tree, "<cell>", "exec"), namespace)
    assert namespace["n"] == 2 and namespace["rate"] == 10.0


def test_a_raising_transformer_returns_the_tree_unchanged() -> None:
    class Boom(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            raise RuntimeError("boom")

    tree = ast.parse("for epoch in x: y")
    assert Total(Boom).visit(tree) is tree


def test_probe_code_is_not_transformed() -> None:
    tree = ast.parse(f"{PROBE_MARKER!r}\nfor epoch in range(9): x.npu()")
    assert epoch_cap_transformer(2).visit(tree) is tree


def test_shell_escapes_are_found_statically() -> None:
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("!pip install not-code"),
            nbformat.v4.new_code_cell("!pip install librosa==0.11.0 cffi==1.17.1"),
            nbformat.v4.new_code_cell("import os\nfiles = !ls data\nif True:\n    !unzip -q -n data.zip\nx = 1 != 2"),
            nbformat.v4.new_code_cell("%pip install numpy\n%matplotlib inline\n%conda list"),
            nbformat.v4.new_code_cell("\n%%bash\necho hi"),
            nbformat.v4.new_code_cell("%%time\nx = 1"),
        ]
    )
    assert find_shell_escapes(nb) == [
        ShellEscape(1, "!pip install librosa==0.11.0 cffi==1.17.1"),
        ShellEscape(2, "files = !ls data"),
        ShellEscape(2, "!unzip -q -n data.zip"),
        ShellEscape(3, "%pip install numpy"),
        ShellEscape(3, "%conda list"),
        ShellEscape(4, "%%bash\necho hi"),
    ]


def test_devices() -> None:
    choice = resolve_device("cpu")
    assert (choice.kind, choice.torch_device) == ("cpu", "cpu")
    with pytest.raises(BadInputError, match="gpu0"):
        resolve_device("gpu0", lang="en")


def test_an_unavailable_device_is_refused() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(BadInputError, match="CUDA"):
        resolve_device("cuda", lang="en")
    assert resolve_device("auto").kind == "cpu"


def test_auto_prefers_the_cpu_to_cuda_and_says_why(monkeypatch) -> None:
    """Measured on an H100 machine: the lab's small recurrent models were 4x slower on CUDA than on these CPUs.
    (No GPU here: the device counts are stood in for; asking for cuda then still means cuda.)"""
    import grader.devices as devices
    from grader.messages import render

    monkeypatch.setattr(devices, "npu_device_count", lambda: 0)
    monkeypatch.setattr(devices, "cuda_device_count", lambda: 1)
    monkeypatch.setattr(devices, "nvidia_device_nodes", lambda: True)
    choice = resolve_device("auto")
    assert (choice.kind, choice.torch_device, choice.reason.key) == ("cpu", "cpu", "exec.device_auto_cpu_not_cuda")
    assert "--device cuda" in render(choice.reason, "en")
    assert resolve_device("cuda").torch_device == "cuda:0"
    monkeypatch.setattr(devices, "npu_device_count", lambda: 1)
    assert resolve_device("auto").kind == "npu"  # the lab's own device: the notebook runs as students run it


def test_with_a_batch_cap_epoch_loops_go_through_the_kernel_side_helper() -> None:
    out = rewrite("for epoch in range(num_epochs):\n    pass\nfor t in range(seq_len):\n    pass\n", EpochCap(2, 4))
    assert "__import__('grader.inkernel.batch_cap', fromlist=['epochs']).epochs(range(num_epochs), 2)" in out
    assert "for t in range(seq_len):" in out


def test_limits_refuse_a_one_batch_cap() -> None:
    with pytest.raises(ValueError):
        ExecutionLimits(cell_timeout_s=10, notebook_timeout_s=60, epoch_cap=2, batch_cap=1)


def test_limits_refuse_a_one_epoch_cap() -> None:
    with pytest.raises(ValueError):
        ExecutionLimits(cell_timeout_s=10, notebook_timeout_s=60, epoch_cap=1)
    assert ExecutionLimits(cell_timeout_s=10, notebook_timeout_s=60, epoch_cap=0).epoch_cap == 0


def test_short_traceback_strips_colours() -> None:
    assert short_traceback(["\x1b[31mZeroDivisionError\x1b[39m: division by zero"]) == (
        "ZeroDivisionError: division by zero"
    )


def test_prepare_workdir_copies_notebook_and_data(tmp_path) -> None:
    nb = tmp_path / "lab.ipynb"
    nb.write_text("{}")
    data = tmp_path / "dataset"
    (data / "train").mkdir(parents=True)
    (data / "train.csv").write_text("filename,class\n")
    workdir = prepare_workdir(nb, data, parent=tmp_path / "runs")
    assert (workdir / "lab.ipynb").is_file()
    assert (workdir / "data" / "train.csv").is_file() and (workdir / "data" / "train").is_dir()
    assert workdir.parent.parent == tmp_path / "runs" and workdir.parent.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize(("device", "backend"), [("cpu", "npu"), ("cuda:0", "privateuseone")])
def test_the_fake_torch_npu_renames_privateuse1_only_on_cpu(device: str, backend: str) -> None:
    """On CUDA the rename breaks every backward pass (measured on an H100, torch 2.11): see the fake's docstring."""
    import subprocess
    import sys

    from grader.paths import PACKAGE_DIR

    code = "import torch, torch_npu; print(torch._C._get_privateuse1_backend_name(), torch.npu.is_available())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "GRADER_TORCH_DEVICE": device,
                               "PYTHONPATH": str(PACKAGE_DIR / "inkernel" / "fakes")})
    assert done.stdout.split() == [backend, "False"]
