"""`grader gradescope-autograder -o autograder.zip`: the zip Gradescope's autograder runs.

Gradescope unpacks the zip into /autograder/source, runs `setup.sh` once when it
builds the image, then `run_autograder` per submission, with the student's files in
/autograder/submission; it reads /autograder/results/results.json and nothing else.
The zip holds:

    setup.sh          apt: python3, bubblewrap; pip: CPU torch, then the grader from grader-src/
    run_autograder    grades the submission with TA grading (`check --full`) through
                      grader.distribution.gradescope_run, which always writes results.json;
                      if Python itself cannot start, the script writes a zero-score results.json
    grader-src/       the grader's tracked sources with the reference and the rubric (never tests or docs)
    grader-secret     the grading secret for this assignment: the same notebook draws the same secret
                      inputs on every regrade (grader/seeds.py); only staff see the zip
    data.zip          the course's dataset, when --data gave one (else the synthetic default set)

`AUTOGRADER_ROOT` (default /autograder) and `GRADER_PYTHON` (default python3) let a TA
run `run_autograder` on a local folder shaped like /autograder, as the tests do.
"""
from __future__ import annotations

import secrets
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path

from grader.distribution.student_repo import copy_source_tree
from grader.errors import BadInputError
from grader.paths import PROJECT_ROOT, REFERENCE_NOTEBOOK

# What the autograder needs of the project: the package, the reference, the rubrics, and how to install them.
SOURCE_TOP = ("grader", "reference", "rubrics", "pyproject.toml", "setup.py", "README.md")
SECRET_NAME = "grader-secret"
DATA_NAME = "data.zip"

SETUP_SH = """#!/usr/bin/env bash
# Run once by Gradescope when it builds the autograder image (Ubuntu).
set -euo pipefail
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-pip python3-venv bubblewrap >/dev/null
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install -q --upgrade pip
# The CPU build of torch: the lab's models are small, and Gradescope's machines have no accelerator.
/autograder/venv/bin/pip install -q torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
/autograder/venv/bin/pip install -q /autograder/source/grader-src
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Run by Gradescope for each submission; results.json is written whatever happens.
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PY="${GRADER_PYTHON:-}"
if [ -z "$PY" ]; then
    if [ -x "$ROOT/venv/bin/python" ]; then PY="$ROOT/venv/bin/python"; else PY=python3; fi
fi
SOURCE="$ROOT/source"
RESULTS="$ROOT/results/results.json"
mkdir -p "$ROOT/results"
rm -f "$RESULTS"
DATA=()
if [ -f "$SOURCE/data.zip" ]; then DATA=(--data "$SOURCE/data.zip"); fi
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
# Below Gradescope's own limit (set it above this in the assignment): past it, the fallback below still writes.
PYTHONPATH="$SOURCE/grader-src${PYTHONPATH:+:$PYTHONPATH}" timeout --kill-after=30 "${GRADER_TIMEOUT_S:-2400}" \\
    "$PY" -m grader.distribution.gradescope_run \\
    --submission "$ROOT/submission" --results "$RESULTS" --secret "$SOURCE/grader-secret" "${DATA[@]}"
if [ ! -s "$RESULTS" ]; then
    NOTE="The grader could not start; a TA will look at this submission. / 评分程序未能启动，助教会人工查看。"
    printf '{"score": 0, "output": "%s", "output_format": "text", "tests": []}\\n' "$NOTE" > "$RESULTS"
fi
exit 0
"""


def _source_files(root: Path, dest: Path) -> None:
    """The tracked sources the autograder needs into `dest` (tests, docs and benches left out)."""
    with tempfile.TemporaryDirectory(prefix="grader-autograder-") as tmp:
        copied = copy_source_tree(Path(tmp) / "tree", root)
        for top in SOURCE_TOP:
            source = copied / top
            if source.is_dir():
                shutil.copytree(source, dest / top, ignore=shutil.ignore_patterns("__pycache__", "*.pyc",
                                                                                     "*.calibration.toml"))
            elif source.is_file():
                shutil.copy2(source, dest / top)


def build_autograder_zip(out: Path, *, data: Path | None = None, rubric: Path | None = None,
                         root: Path | None = None) -> Path:
    """Write the autograder zip to `out` (see the module docstring); the course's rubric replaces lab.toml
    when `rubric` is given. Needs the course's source checkout (the reference): exit 2 without it."""
    root = PROJECT_ROOT if root is None else Path(root)
    if not REFERENCE_NOTEBOOK.is_file():
        raise BadInputError("the Gradescope autograder grades with the reference: run this in the course's source "
                            "checkout / Gradescope 评分包需要参考答案：请在课程源码仓库中运行")
    if data is not None and not (Path(data).is_file() and zipfile.is_zipfile(data)):
        raise BadInputError(f"{data}: --data must be the dataset as a .zip for the autograder / --data 须为数据集 zip")
    out = Path(out)
    if out.is_dir() or (out.parent.exists() and not out.parent.is_dir()):
        raise BadInputError(f"{out}: give the path of a .zip file to write / 请给出要写入的 .zip 文件路径")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="grader-autograder-") as tmp:
        stage = Path(tmp) / "zip"
        (stage / "grader-src").mkdir(parents=True)
        _source_files(root, stage / "grader-src")
        if rubric is not None:
            shutil.copy2(rubric, stage / "grader-src" / "rubrics" / "lab.toml")
        if data is not None:
            shutil.copy2(data, stage / DATA_NAME)
        (stage / SECRET_NAME).write_bytes(secrets.token_bytes(32))
        for name, body in (("setup.sh", SETUP_SH), ("run_autograder", RUN_AUTOGRADER)):
            (stage / name).write_text(body, encoding="utf-8", newline="\n")
        _zip(stage, out)
    return out


def _zip(stage: Path, out: Path) -> None:
    """A zip with setup.sh and run_autograder at its root, executable (Gradescope runs them as they are)."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(stage.rglob("*")):
            if not path.is_file():
                continue
            info = zipfile.ZipInfo.from_file(path, path.relative_to(stage).as_posix())
            executable = path.name in ("setup.sh", "run_autograder")
            mode = 0o755 if executable else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
