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


def test_the_fast_exit_keeps_the_exit_code_the_output_and_the_exit_handlers(tmp_path):
    """entry() leaves with os._exit: the code, every byte written and the atexit handlers must survive it."""
    marker = tmp_path / "atexit-ran"
    code = ("import atexit, sys\n"
            f"atexit.register(lambda: open({str(marker)!r}, 'w').write('ran'))\n"
            "sys.argv = ['grader', 'check', sys.argv[1]]\n"
            "print('x' * 200_000, end='')\n"
            "from grader.cli import entry\n"
            "entry()\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "missing.ipynb")], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and "missing.ipynb" in proc.stderr  # bad input: exit 2, said on stderr
    assert proc.stdout == "x" * 200_000
    assert marker.read_text() == "ran"
