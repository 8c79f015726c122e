"""Which protections a kernel had is reported, and --require-sandbox refuses to grade without all of them."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader.paths import PROJECT_ROOT, TEMPLATE_NOTEBOOK
from grader.sandbox import bwrap_unavailable


def run_grader(*args: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if path is not None:
        env["PATH"] = path  # a PATH without bwrap: the machine "has no bubblewrap"
    return subprocess.run([sys.executable, "-m", "grader", *args, "--lang", "en"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_sandbox_is_active_on_this_machine():
    # make setup installs bubblewrap; CI must grade inside the sandbox, so this fails rather than skips.
    assert bwrap_unavailable() == "", f"the kernel sandbox is not available here: {bwrap_unavailable()}"


@pytest.mark.kernel
def test_a_checked_notebook_reports_every_protection_it_had():
    proc = run_grader("check", str(TEMPLATE_NOTEBOOK), "--format", "json", "--require-sandbox")
    assert proc.returncode == 1, proc.stderr  # the template fails its checks, but it was graded
    protections = json.loads(proc.stdout)["protections"]
    assert protections["filesystem"] and protections["network"] and protections["user_namespace"]
    assert protections["pid_namespace"] and protections["rlimits"] and protections["unavailable"] == ""


@pytest.mark.kernel
def test_without_bubblewrap_grading_goes_on_and_says_what_was_missing():
    proc = run_grader("check", str(TEMPLATE_NOTEBOOK), "--format", "json", path="/nonexistent")
    assert proc.returncode == 1, proc.stderr
    protections = json.loads(proc.stdout)["protections"]
    assert not protections["filesystem"] and not protections["network"]
    assert protections["rlimits"] and protections["scrubbed_env"]
    assert "bubblewrap (bwrap) is not installed" in protections["unavailable"]


@pytest.mark.kernel
def test_require_sandbox_refuses_check_and_grade_without_bubblewrap(tmp_path: Path):
    proc = run_grader("check", str(TEMPLATE_NOTEBOOK), "--require-sandbox", path="/nonexistent")
    assert proc.returncode == 2
    assert "sandbox is required" in proc.stderr and "not installed" in proc.stderr and "Traceback" not in proc.stderr
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "a.ipynb").write_bytes(TEMPLATE_NOTEBOOK.read_bytes())
    proc = run_grader("grade", str(subs), "-o", str(tmp_path / "out"), "--require-sandbox", path="/nonexistent")
    assert proc.returncode == 2 and "sandbox is required" in proc.stderr
    assert not (tmp_path / "out").exists(), "refused before anything was written"


def test_require_sandbox_also_refuses_when_a_layer_outside_bubblewrap_is_missing(monkeypatch):
    import pytest

    from grader import sandbox
    from grader.errors import SandboxUnavailableError
    from grader.sandbox import choose_protections

    # e.g. a root grader in a container without a writable pids cgroup: no fork-bomb limit
    monkeypatch.setattr(sandbox, "process_limit_available", lambda: False)
    assert not choose_protections("auto", "en").process_limit
    with pytest.raises(SandboxUnavailableError, match="process_limit"):
        choose_protections("require", "en")
