"""A small class graded by the real coordinator without a kernel, for the tests of what comes after a batch.

Its submissions are files that are not notebooks (each gets a stored bad-input verdict and every output,
like any other); the jobs run in the test's own process (test_batch_regrade.InProcessExecutor).
"""
from __future__ import annotations

import shutil
from pathlib import Path

from test_batch_regrade import run_batch

from grader.paths import DEFAULT_RUBRIC

NOT_A_NOTEBOOK = b"this is not a notebook {"


def grade_class(tmp_path: Path, dataset: Path, ids: tuple[str, ...], **options: object) -> dict[str, object]:
    """Grade `ids` into tmp_path/out; the folders, the summary and what the run printed, by name."""
    subs = tmp_path / "subs"
    subs.mkdir()
    for sid in ids:
        (subs / f"{sid}.ipynb").write_bytes(NOT_A_NOTEBOOK + sid.encode())
    rubric = tmp_path / "rubrics" / "lab.toml"
    rubric.parent.mkdir()
    shutil.copy(DEFAULT_RUBRIC, rubric)
    data = Path(shutil.copytree(dataset, tmp_path / "data"))
    out = tmp_path / "out"
    summary, printed = run_batch(subs, out, data, rubric, **options)
    return {"subs": subs, "out": out, "data": data, "rubric": rubric, "summary": summary, "printed": printed}
