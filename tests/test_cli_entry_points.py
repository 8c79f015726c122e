"""Both ways of starting the grader work, and usage errors exit with 2."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from grader import __version__


def test_python_dash_m_grader_runs():
    proc = subprocess.run([sys.executable, "-m", "grader", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and __version__ in proc.stdout


def test_console_script_is_installed_beside_python():
    script = Path(sys.executable).parent / "grader"
    assert script.exists() or shutil.which("grader"), "the `grader` console script is not installed"
    proc = subprocess.run([str(script if script.exists() else "grader"), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "check" in proc.stdout and "calibrate" in proc.stdout


def test_unknown_command_is_a_usage_error():
    proc = subprocess.run([sys.executable, "-m", "grader", "grde"], capture_output=True, text=True)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
