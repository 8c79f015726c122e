"""How long the students' template repository's CI takes on this machine, step by step.

Runs what the end-to-end tests of tests/test_student_repo.py run, with their code: a clean venv (the runner's
setup-python), the exported repository (a real wheel build), and every `run:` step of the workflow verbatim with
bash, once on the untouched template and once on the reference solution. Prints the seconds of each step and its
exit code (the template is meant to exit 1 at `grader check`, the reference 0; the tests assert that).

Usage: .venv/bin/python bench/student_repo_ci.py
"""
from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader.distribution.student_repo import export_student_repo  # noqa: E402

T = TypeVar("T")


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


# The tests' runner emulation: one definition of "what the CI does".
CI = _load(ROOT / "tests" / "test_student_repo.py", "test_student_repo")


def timed(what: str, figures: list[tuple[str, float, int | None]], work: Callable[[], T]) -> T:
    began = time.monotonic()
    result = work()
    figures.append((what, time.monotonic() - began, None))
    return result


def main() -> int:
    figures: list[tuple[str, float, int | None]] = []
    with tempfile.TemporaryDirectory(prefix="student-repo-ci-") as tmp:
        root = Path(tmp)
        machine = timed("venv created", figures, lambda: CI.clean_machine(root / "runner"))
        exported = timed("export (wheel build)", figures, lambda: export_student_repo(root / "export" / "lab-repo"))
        solved = CI.solved_repository(exported, root / "solved" / "lab-repo")
        for label, workdir in (("template", exported), ("reference", solved)):
            run = CI.run_workflow(machine, workdir)
            figures += [(f"{label}: {step.name}", step.seconds, step.rc) for step in run.steps if step.rc is not None]
    print("student repository CI, measured (s):")
    for what, seconds, rc in figures:
        print(f"  {what:<60} {seconds:7.1f}" + ("" if rc is None else f"  (exit {rc})"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
