"""The same notebook gets the same verdicts and scores on regrade (#13 item 3), in `check --full` and in `grade`:
every draw comes from the grader's secret and the notebook's bytes (grader/seeds.py), never from a fresh seed.

The buggy notebook is the reference with tanh on the LSTM's forget gate: with fresh seeds its lstm.train (if
a rubric does not require lstm.forward) passed in some runs and failed in others, so the rubric here awards it
alone, which is what once made regrades flip.
"""
from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "adversarial"))

from advkit import broken_lstm, check_in_process, reference, write
from rubric_edit import replaced_once

from grader.paths import DEFAULT_RUBRIC

pytestmark = pytest.mark.kernel  # `check --full` and `grade`, twice each, in real kernels


@pytest.fixture()
def rubric_training_alone(tmp_path: Path) -> Path:
    path = tmp_path / "lab.toml"
    path.write_text(replaced_once(DEFAULT_RUBRIC.read_text(encoding="utf-8"), 'requires = ["lstm.forward"]',
                                  "requires = []"), encoding="utf-8")
    return path


def _verdicts(result: dict) -> tuple[float, dict[str, tuple[str, float]]]:
    return result["score"], {c["id"]: (c["status"], c["score"]) for c in result["checks"]}


def test_check_full_twice_gives_the_same_verdicts(tmp_path, monkeypatch, rubric_training_alone):
    monkeypatch.setenv("GRADER_SECRET_FILE", str(tmp_path / "secret"))
    for name, nb in (("buggy", broken_lstm()), ("correct", reference())):
        path = write(nb, tmp_path, name)
        first = check_in_process(path, rubric_training_alone).result
        second = check_in_process(path, rubric_training_alone).result
        assert _verdicts(first) == _verdicts(second), name
        train = next(c for c in first["checks"] if c["id"] == "lstm.train")
        assert train["details"]["curve"] == next(c for c in second["checks"] if c["id"] == "lstm.train")["details"]["curve"]


def test_grade_twice_gives_the_same_verdicts(tmp_path, rubric_training_alone):
    from grader.batch.run import GradeOptions, grade

    subs = tmp_path / "subs"
    write(broken_lstm(), subs, "buggy")
    write(reference(), subs, "correct")
    out = tmp_path / "out"
    runs = []
    for _ in range(2):
        grade(GradeOptions(submissions=subs, out=out, jobs=2, lang="en", rubric=rubric_training_alone, force=True),
              out=io.StringIO(), err=io.StringIO())
        runs.append({p.stem: _verdicts(json.loads(p.read_text(encoding="utf-8")))
                     for p in (out / "results").glob("*.json")})
    assert set(runs[0]) == {"buggy", "correct"}
    assert runs[0] == runs[1]
    secret = (out / ".grader-secret").read_text()
    assert all(secret.strip() not in p.read_text(encoding="utf-8") for p in out.rglob("*") if p.is_file()
               and p.name != ".grader-secret" and p.suffix in (".json", ".html", ".csv", ".xml"))
