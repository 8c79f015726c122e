"""The golden vectors: made from reference/ by `grader golden`, and proven to still match it.

They are what a student's wheel carries instead of the reference: the
reference's logits and gradients, and those of each known mistake, on one fixed
probe case. This file is the project CI's proof that the packaged vectors are
the reference's answers (recomputed from reference/functional.py and run
through reference/lab.ipynb's own classes), that a stale or tampered set is
caught, and that an installation without the reference refuses full grading.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from grader.cli import main
from grader.distribution.golden_build import check_golden, write_golden
from grader.errors import InternalError
from grader.lab_api import LSTM, MODELS, RNN
from grader.mistakes import LSTM_VARIANTS, RNN_VARIANTS
from grader.oracle.golden import MANIFEST_NAME, VECTORS_NAME, read_vectors, sha256_of, write_arrays
from grader.oracle.live import ReferenceUnavailableError, load_functional
from grader.paths import GOLDEN_DIR


def test_the_packaged_vectors_match_the_live_reference_and_its_notebook(capsys):
    assert main(["golden", "--check"]) == 0
    assert "match the reference" in capsys.readouterr().out


def test_regenerating_gives_the_same_bytes(tmp_path):
    """Deterministic output: `grader golden` run twice on one machine writes identical files (git stays clean).

    Not compared with the committed bytes: on an H100 machine (torch 2.11, numpy 2.5) the last bits of some
    float64 results differ from this machine's; that the numbers agree is test_the_packaged_vectors_match...'s job.
    """
    first, second = write_golden(tmp_path / "a"), write_golden(tmp_path / "b")
    for name in (VECTORS_NAME, MANIFEST_NAME):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    packaged = json.loads((GOLDEN_DIR / MANIFEST_NAME).read_text())
    fresh = json.loads((first / MANIFEST_NAME).read_text())
    assert {k: v for k, v in fresh.items() if k != "vectors_sha256"} == {
        k: v for k, v in packaged.items() if k != "vectors_sha256"}


def test_every_model_and_known_mistake_has_outputs_and_gradients():
    vectors = read_vectors()
    for spec, mistakes in ((RNN, RNN_VARIANTS), (LSTM, LSTM_VARIANTS)):
        assert vectors.variants(spec) == ["correct", *(v.value for v in mistakes)]
        case = vectors.case(spec)
        for variant in vectors.variants(spec):
            for call in case.calls():
                assert f"{spec.prefix}/{variant}/out/{call}" in vectors.arrays
            for path in spec.param_paths:
                grad = vectors.arrays[f"{spec.prefix}/{variant}/grad/{path}"]
                assert grad.shape == case.weights[path].shape and grad.dtype == np.float64


def test_square_weights_are_symmetric_so_either_orientation_computes_the_same_function():
    vectors = read_vectors()
    for spec in MODELS:
        case = vectors.case(spec)
        for p in spec.params:
            if p.is_square:
                assert np.array_equal(case.weights[p.path], case.weights[p.path].T), p.path


def _copy_golden(tmp_path: Path) -> Path:
    folder = tmp_path / "golden"
    shutil.copytree(GOLDEN_DIR, folder)
    return folder


def test_a_stale_vector_is_named(tmp_path, capsys):
    folder = _copy_golden(tmp_path)
    vectors = read_vectors(folder)
    arrays = dict(vectors.arrays)
    arrays["lstm/correct/out/plain"] = arrays["lstm/correct/out/plain"] + 1e-6
    write_arrays(folder / VECTORS_NAME, arrays)
    manifest = dict(vectors.manifest, vectors_sha256=sha256_of(folder / VECTORS_NAME))
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest), encoding="utf-8")

    check = check_golden(folder)
    assert not check.ok and check.problems == ["lstm/correct/out/plain: differs from the reference by up to 1e-06"]
    assert main(["golden", "--check", "--out", str(folder)]) == 1
    assert "lstm/correct/out/plain" in capsys.readouterr().out


def test_vectors_that_do_not_match_their_manifest_are_a_broken_installation(tmp_path):
    folder = _copy_golden(tmp_path)
    with (folder / VECTORS_NAME).open("ab") as f:
        f.write(b"\0")
    with pytest.raises(InternalError, match="does not match its manifest"):
        read_vectors(folder)
    (folder / VECTORS_NAME).unlink()
    with pytest.raises(InternalError, match="missing"):
        read_vectors(folder)


def test_the_vectors_are_data_not_pickles():
    import zipfile

    with zipfile.ZipFile(GOLDEN_DIR / VECTORS_NAME) as zf:
        for name in zf.namelist():
            header = zf.read(name)[:128]
            assert b"'descr': '<f8'" in header, name  # plain float64 arrays, loadable with allow_pickle=False


def test_without_the_reference_full_grading_refuses_with_exit_2(tmp_path, monkeypatch, capsys):
    with pytest.raises(ReferenceUnavailableError):
        load_functional(tmp_path / "functional.py")

    import grader.oracle.live as live

    monkeypatch.setattr(live.LiveOracle, "load", classmethod(lambda cls: live.load_functional(tmp_path / "nope.py")))
    notebook = tmp_path / "lab.ipynb"
    notebook.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert main(["check", str(notebook), "--full", "--lang", "en"]) == 2
    err = capsys.readouterr().err
    assert "grader check" in err and "Traceback" not in err
    assert main(["grade", str(tmp_path), "-o", str(tmp_path / "out"), "--lang", "en"]) == 2
    assert not (tmp_path / "out" / "grades.sqlite").exists()
