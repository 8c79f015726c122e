"""The trust boundary is a folder boundary: grader/inkernel/ runs in the student's process and imports nothing of
the grader's outside itself, so the kernel needs (and gets) a copy of that folder alone."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from grader.hosting import launch

INKERNEL = Path(launch.INKERNEL_DIR)
# What code running in the student's process may import: the standard library, numpy, torch, IPython's own hooks,
# librosa (the lab's own dependency, whose two functions feature_memo.py memoises) and soundfile (librosa's own
# decoder, which feature_memo.py calls for the feature pack's clips as librosa would).
ALLOWED_TOP_LEVEL = set(sys.stdlib_module_names) | {"numpy", "torch", "torch_npu", "IPython", "librosa", "soundfile",
                                                    "__future__"}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(level, module) of every import in a file: level > 0 is relative."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(0, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


def test_nothing_in_the_kernel_side_imports_the_grader():
    files = sorted(INKERNEL.rglob("*.py"))
    assert len(files) >= 7, files  # startup, transforms, shell_shims, probe, train_probe, fakes...
    outside = [f"{path.relative_to(INKERNEL)}: {module}" for path in files for level, module in _imports(path)
               if level == 0 and module.split(".")[0] not in ALLOWED_TOP_LEVEL]
    assert outside == []


def test_the_kernels_copy_of_the_kernel_side_starts_on_its_own(tmp_path):
    """Imported from the copy the kernel gets, with no site-packages (so not the installed grader): any import
    of the grader beyond that copy fails."""
    root = launch.copy_kernel_side(tmp_path)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import grader.inkernel.startup as s, grader.inkernel as p;"
            "assert p.__file__.startswith(sys.argv[1]), p.__file__; print(callable(s.install))")
    done = subprocess.run([sys.executable, "-S", "-I", "-c", code, str(root)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


def test_no_grader_side_module_lives_in_the_kernel_side():
    names = {p.stem for p in INKERNEL.glob("*.py")}
    assert names.isdisjoint({"launch", "numba_cache", "session", "budgets", "watchdog"})
