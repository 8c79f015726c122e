"""The Gradescope autograder zip, and its `run_autograder` run on a local folder shaped like /autograder.

The real zip is built and unpacked as Gradescope unpacks it (into source/); `run_autograder`
runs with bash, this interpreter standing in for the one setup.sh installs, on a correct, a
buggy and an unreadable notebook, and each time leaves a results.json Gradescope can read.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader.cli import main
from grader.paths import REFERENCE_NOTEBOOK
from grader.rubric import CHECK_IDS

CHECK_FIXTURES = Path(__file__).parent / "notebooks" / "check"


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("autograder") / "autograder.zip"
    assert main(["gradescope-autograder", "-o", str(out), "--lang", "en"]) == 0
    return out


def test_the_zip_has_the_scripts_at_its_root_and_no_tests_or_docs(autograder_zip):
    with zipfile.ZipFile(autograder_zip) as zf:
        names = set(zf.namelist())
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in zf.infolist()}
        secret = zf.read("grader-secret")
    assert {"setup.sh", "run_autograder", "grader-secret", "grader-src/reference/lab.ipynb",
            "grader-src/rubrics/lab.toml", "grader-src/pyproject.toml", "grader-src/grader/cli.py"} <= names
    assert modes["setup.sh"] == modes["run_autograder"] == 0o755
    assert not any(n.startswith(("grader-src/tests/", "grader-src/docs/", "grader-src/bench/")) for n in names)
    assert len(secret) == 32


def _unpacked(autograder_zip: Path, root: Path) -> Path:
    """/autograder as Gradescope lays it out: the zip in source/, the submission in submission/."""
    with zipfile.ZipFile(autograder_zip) as zf:
        zf.extractall(root / "source")
    run = root / "source" / "run_autograder"
    run.chmod(run.stat().st_mode | stat.S_IXUSR)
    (root / "submission").mkdir()
    return run


def _run(run: Path, root: Path, python: str = sys.executable) -> dict:
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "GRADER_PYTHON": python}
    done = subprocess.run(["bash", str(run)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))


@pytest.mark.kernel
@pytest.mark.parametrize(("notebook", "expect"), [
    (REFERENCE_NOTEBOOK, "full marks"),
    (CHECK_FIXTURES / "fails_lstm_forward_grad_train_first_step_logits.ipynb", "lstm fails"),
    (None, "unreadable"),
])
def test_run_autograder_always_writes_a_results_json_gradescope_reads(autograder_zip, tmp_path, notebook, expect):
    root = tmp_path / "autograder"
    run = _unpacked(autograder_zip, root)
    if notebook is None:
        (root / "submission" / "lab.ipynb").write_bytes(b"\x00\x01 not a notebook")
    else:
        shutil.copy(notebook, root / "submission" / "lab.ipynb")
    results = _run(run, root)
    assert results["output_format"] == results["test_output_format"] == "text"
    assert [t["name"] for t in results["tests"]] == list(CHECK_IDS)
    assert {t["visibility"] for t in results["tests"] if t["name"].endswith(".sizes")} == {"hidden"}
    statuses = {t["name"]: t["status"] for t in results["tests"]}
    if expect == "full marks":
        assert results["score"] == 100 and set(statuses.values()) == {"passed"}
        assert results["extra_data"]["device"] == "cpu" and results["extra_data"]["outcome"] == "graded"
    elif expect == "lstm fails":
        assert 0 < results["score"] < 100 and statuses["lstm.forward"] == "failed" and statuses["rnn.forward"] == "passed"
    else:
        assert results["score"] == 0 and results["extra_data"]["outcome"] == "bad_input"
        assert "lab.ipynb" in results["output"]


def test_without_a_notebook_or_without_python_there_is_still_a_results_json(autograder_zip, tmp_path):
    root = tmp_path / "autograder"
    run = _unpacked(autograder_zip, root)
    nothing = _run(run, root)
    assert nothing["score"] == 0 and "no .ipynb" in nothing["output"]
    broken = _run(run, root, python="/bin/false")
    assert broken["score"] == 0 and "could not start" in broken["output"]


def test_a_linked_folder_in_the_submission_is_never_graded(tmp_path):
    """`sub -> /autograder/source/grader-src/reference` would have the reference graded as the student's work."""
    from grader.distribution.gradescope_run import pick_notebook

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(REFERENCE_NOTEBOOK, elsewhere / "lab.ipynb")
    submission = tmp_path / "submission"
    submission.mkdir()
    (submission / "sub").symlink_to(elsewhere, target_is_directory=True)
    (submission / "x.ipynb").symlink_to(elsewhere / "lab.ipynb")
    assert pick_notebook(submission) is None
    (submission / "mine.ipynb").write_text("{}", encoding="utf-8")
    assert pick_notebook(submission) == submission / "mine.ipynb"
