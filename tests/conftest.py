"""Shared fixtures."""
from __future__ import annotations

import argparse
import ast
import importlib.util
import itertools
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Generator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


@pytest.fixture(scope="session")
def small_synthetic_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic dataset (4 train + 2 test clips per class), written once per session. Do not modify it."""
    from grader.data.synth import SynthParams, generate

    root = tmp_path_factory.mktemp("small-synth") / "data"
    generate(root, seed=0, params=SynthParams(train_per_class=4, test_per_class=2))
    return root


@pytest.fixture(scope="session")
def quick_rubric(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lab rubric with short limits, so hanging notebooks and attacks finish quickly. Do not modify it.

    8 s a cell: the reference's slowest cell (features on a cold numba cache) still fits on 2 loaded cores, a
    hang costs little. 120 s the whole notebook: an attack that keeps every cell under the limit still ends."""
    from rubric_edit import lab_rubric_with

    return lab_rubric_with(tmp_path_factory.mktemp("quick-rubric") / "lab.toml", cell_timeout_s=8.0,
                           notebook_timeout_s=120.0)


@pytest.fixture(scope="session")
def default_synthetic_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default synthetic dataset, `generate(dir, seed=0)`, written once per session. Do not modify it."""
    from grader.data.synth import generate

    root = tmp_path_factory.mktemp("default-synth") / "data"
    generate(root, seed=0)
    return root


# -- `make test-fast`: the tests that start no kernel, kept honest -------------------------------------------
#
# The fast selection is `-m "not kernel"`. A test left unmarked that starts a kernel would quietly make it slow
# again, so while it runs every process of the test tree refuses to start one and the test fails, telling the
# engineer to mark it. What counts as starting a kernel (each costs seconds to minutes on 2 cores):
#   - a Jupyter kernel (`python -m ipykernel_launcher`, sandboxed or not), in this process or any child that
#     inherits the environment: a CLI subprocess, a grading worker, a bash step running `grader check`;
#   - a trusted runner: grader.trusted_runner.ProcessRunner, tests/fixtures/models SubprocessRunner;
#   - the grader CLI in a subprocess with a command that may start either (any but those in _CLI_WITHOUT_KERNELS).
# Children are guarded by a sitecustomize module put first on PYTHONPATH; it and this process append each refusal
# to one log file per test process, which the report hook reads, so a refusal the grader catches (a kernel that
# "failed to start" is a verdict, not a crash) still fails the test.

_FAST_SELECTION = re.compile(r"\bnot\s+kernel\b")
_GUARD_LOG_ENV = "GRADER_TEST_KERNEL_GUARD_LOG"
_CLI_WITHOUT_KERNELS = frozenset({"report", "data", "template", "override", "release", "gradescope-autograder",
                                  "serve"})
_MARK_IT = ("started {what} while the fast selection (-m 'not kernel') runs. Mark the test "
            "@pytest.mark.kernel (a whole module: pytestmark = pytest.mark.kernel): `make test-fast` then leaves "
            "it out, `make test` still runs it.")
# The guard of every Python process started from a guarded one. Stdlib only: it runs before anything else.
_CHILD_GUARD = '''\
"""Written by tests/conftest.py for `-m "not kernel"`: refuse (and log) a Jupyter kernel started from here."""
import os
import subprocess

_popen_init = subprocess.Popen.__init__


def kernel_launch(argv):
    return any(flag == "-m" and module.startswith("ipykernel") for flag, module in zip(argv, argv[1:]))


def refuse(what):
    with open(os.environ["GRADER_TEST_KERNEL_GUARD_LOG"], "a", encoding="utf-8") as log:
        log.write(f"{what} (pid {os.getpid()})\\n")
    raise RuntimeError(f"kernel guard: {what} refused under -m 'not kernel'; mark the test kernel")


def words(args):
    return [os.fsdecode(a) for a in args] if isinstance(args, (list, tuple)) else os.fsdecode(args).split()


def guarded_popen_init(self, args, *rest, **kwargs):
    if "GRADER_TEST_KERNEL_GUARD_LOG" in os.environ and kernel_launch(words(args)):
        refuse("a Jupyter kernel")
    _popen_init(self, args, *rest, **kwargs)


subprocess.Popen.__init__ = guarded_popen_init
'''


def _cli_commands() -> frozenset[str]:
    from grader.cli import build_parser

    subcommands = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return frozenset(subcommands[0].choices)


def _runner_programs() -> dict[str, str]:
    """The `python -c` programs of the trusted runners, to recognise them in a Popen."""
    from grader import trusted_runner

    # read, not imported: the test module that uses it imports it under its own name
    source = (Path(__file__).parent / "fixtures" / "models" / "subprocess_runner.py").read_text(encoding="utf-8")
    fixture_server = next(ast.literal_eval(node.value) for node in ast.parse(source).body
                          if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "_SERVER")
    return {trusted_runner._SERVER: "grader.trusted_runner.ProcessRunner",
            fixture_server: "tests/fixtures/models SubprocessRunner"}


class KernelGuard:
    """A pytest plugin, registered for the fast selection only."""

    def __init__(self) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="kernel-guard-"))
        self.log = self._folder / "refused.log"
        self.log.touch()
        self._seen = 0
        (self._folder / "sitecustomize.py").write_text(_CHILD_GUARD, encoding="utf-8")
        self._patch = pytest.MonkeyPatch()
        self._patch.setenv(_GUARD_LOG_ENV, str(self.log))  # each pytest process (xdist worker) its own log
        self._patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(self._folder),
                                                                         os.environ.get("PYTHONPATH")])))
        self._child = self._load_child_guard()  # this process: the kernel rule, through the same code
        self._commands = _cli_commands()
        self._runners = _runner_programs()
        self._patch.setattr(subprocess.Popen, "__init__", self._guarded_popen_init(subprocess.Popen.__init__))

    def _load_child_guard(self) -> ModuleType:
        spec = importlib.util.spec_from_file_location("_kernel_guard_child", self._folder / "sitecustomize.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        popen_init = subprocess.Popen.__init__
        spec.loader.exec_module(module)
        subprocess.Popen.__init__ = popen_init  # type: ignore[method-assign]  # wrapped below, undone at the end
        return module

    def _guarded_popen_init(self, popen_init: Callable[..., None]) -> Callable[..., None]:
        def guarded(popen: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
            argv = self._child.words(args)
            if self._child.kernel_launch(argv):
                self._child.refuse("a Jupyter kernel")
            program = next((code for flag, code in itertools.pairwise(argv) if flag == "-c"), None)
            if program in self._runners:
                self._child.refuse(self._runners[program])
            command = self._cli_command(argv)
            if command is not None and command not in _CLI_WITHOUT_KERNELS:
                self._child.refuse(f"`grader {command}` in a subprocess")
            popen_init(popen, args, *rest, **kwargs)

        return guarded

    def _cli_command(self, argv: list[str]) -> str | None:
        """The command of a grader CLI command line (`python -m grader ...`, `.../grader ...`), else None."""
        pairs = enumerate(itertools.pairwise(argv))
        starts = [i + 2 for i, (flag, module) in pairs if flag == "-m" and module == "grader"]
        if argv and Path(argv[0]).name == "grader":
            starts.append(1)
        if not starts:
            return None
        return next((word for word in argv[starts[0]:] if word in self._commands), None)

    def refused_since_last_report(self) -> list[str]:
        lines = self.log.read_text(encoding="utf-8").splitlines()
        new, self._seen = lines[self._seen:], len(lines)
        return new

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
        report = yield
        refused = self.refused_since_last_report()
        if refused:
            report.outcome = "failed"
            report.longrepr = f"{item.nodeid} " + _MARK_IT.format(what="; ".join(refused))
        return report

    def close(self) -> None:
        self._patch.undo()
        shutil.rmtree(self._folder, ignore_errors=True)


def pytest_configure(config: pytest.Config) -> None:
    if _FAST_SELECTION.search(config.getoption("markexpr") or ""):
        config.pluginmanager.register(KernelGuard(), "kernel-guard")


def pytest_unconfigure(config: pytest.Config) -> None:
    guard = config.pluginmanager.get_plugin("kernel-guard")
    if guard is not None:
        guard.close()
