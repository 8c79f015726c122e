"""grader calibrate: the reference over seeds, a threshold with margin, refusal when nothing separates."""
from __future__ import annotations

import csv
import dataclasses
import shutil
import zipfile
from pathlib import Path

import pytest

from grader.calibrate import (
    CalibrationResult,
    SeedResult,
    _decide,
    calibrate,
    calibration_path,
    dataset_hash,
    effective_threshold,
    effective_training,
    floor_percent,
    load_calibration,
)
from grader.data.features import FeatureCache
from grader.errors import RubricError
from grader.paths import DEFAULT_RUBRIC
from grader.rubric import load_rubric


@pytest.fixture()
def rubric_path(tmp_path: Path) -> Path:
    """The lab rubric with max_epochs 3, so a calibration takes seconds."""
    text = DEFAULT_RUBRIC.read_text(encoding="utf-8")
    assert "max_epochs = 20" in text
    path = tmp_path / "rubrics" / "lab.toml"
    path.parent.mkdir()
    path.write_text(text.replace("max_epochs = 20", "max_epochs = 3"), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def feature_cache(tmp_path_factory: pytest.TempPathFactory) -> FeatureCache:
    # One cache for every lstm.train test module: MFCCs of the same clips are computed once.
    return FeatureCache(tmp_path_factory.getbasetemp() / "training-mfcc")


def test_calibration_writes_a_threshold_the_reference_clears(rubric_path: Path, default_synthetic_dataset: Path,
                                                             feature_cache: FeatureCache) -> None:
    result = calibrate(default_synthetic_dataset, 2, rubric_path, margin=0.05, cache=feature_cache)
    assert result.ok and result.exit_code == 0, result.describe("en")
    assert result.written == calibration_path(rubric_path) == rubric_path.with_name("lab.calibration.toml")
    worst = min(s.best_accuracy for s in result.seeds)
    assert result.threshold == floor_percent(worst - 0.05) and result.threshold > result.chance + 0.05
    assert all(s.epochs == 3 for s in result.seeds)  # early stop off: the whole curve
    cal = load_calibration(result.written)
    assert cal.threshold == result.threshold and cal.seeds == (0, 1) and cal.max_epochs == 3
    assert cal.data_sha256 == dataset_hash(default_synthetic_dataset)
    rubric = load_rubric(rubric_path)
    assert effective_threshold(rubric) == result.threshold
    assert effective_training(rubric, default_synthetic_dataset).threshold == result.threshold
    for lang in ("en", "zh"):
        assert str(result.written) in result.describe(lang)


def test_a_stale_calibration_is_refused(rubric_path: Path, tmp_path: Path, default_synthetic_dataset: Path) -> None:
    calibration_path(rubric_path).write_text(
        'format = 1\nthreshold = 0.7\nmargin = 0.05\ndata_sha256 = "abc"\nseeds = [0]\naccuracies = [0.8]\n'
        "chance = 0.34\nmax_epochs = 12\nlearning_rate = 0.01\nbatch_size = 16\n", encoding="utf-8")
    rubric = load_rubric(rubric_path)  # says max_epochs 3
    with pytest.raises(RubricError, match="calibrate"):
        effective_threshold(rubric)
    rubric = dataclasses.replace(rubric, training=dataclasses.replace(rubric.training, max_epochs=12))
    assert effective_threshold(rubric) == 0.7
    # Other data than calibrated (a student's check on the default set): the rubric's own threshold.
    assert effective_training(rubric, default_synthetic_dataset).threshold == 0.80


def test_no_calibration_file_means_the_rubric_threshold(rubric_path: Path) -> None:
    rubric = load_rubric(rubric_path)
    assert effective_threshold(rubric) == rubric.training.threshold == 0.80


def _single_class_heldout(src: Path, dst: Path) -> Path:
    """A copy of `src` whose test split is all cats: accuracy 100 % is chance, nothing can be shown."""
    shutil.copytree(src, dst)
    rows = list(csv.DictReader((dst / "test.csv").open(encoding="utf-8")))
    with (dst / "test.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, ["filename", "class"], lineterminator="\n")
        writer.writeheader()
        writer.writerows({"filename": r["filename"], "class": "cat"} for r in rows)
    return dst


def test_data_that_cannot_separate_is_refused_and_nothing_written(rubric_path: Path, tmp_path: Path,
                                                                    small_synthetic_dataset: Path,
                                                                    feature_cache: FeatureCache) -> None:
    data = _single_class_heldout(small_synthetic_dataset, tmp_path / "cats")
    archive = tmp_path / "cats.zip"
    with zipfile.ZipFile(archive, "w") as zf:  # a zip works as well as a folder
        for path in sorted(data.rglob("*")):
            zf.write(path, Path("data") / path.relative_to(data))
    result = calibrate(archive, 1, rubric_path, cache=feature_cache)
    assert not result.ok and result.exit_code == 1 and result.written is None
    assert result.chance == 1.0 and result.data_sha256 == dataset_hash(data)
    assert not calibration_path(rubric_path).exists()
    assert "Not written" in result.describe("en") and "未写入" in result.describe("zh")


@pytest.mark.parametrize(("worst", "chance", "ok"), [(0.95, 0.34, True), (0.45, 0.34, True), (0.44, 0.34, False),
                                                     (0.60, 0.55, False)])
def test_threshold_must_clear_chance_plus_margin(worst: float, chance: float, ok: bool) -> None:
    result = CalibrationResult(Path("d"), "sha", 0.05, chance,
                               [SeedResult(0, worst, 3, 3, 1.0, "completed"), SeedResult(1, 0.99, 3, 3, 1.0, "completed")])
    _decide(result)
    assert result.ok is ok
    if ok:
        assert result.threshold == floor_percent(worst - 0.05)


def test_a_reference_that_errors_is_reported() -> None:
    result = CalibrationResult(Path("d"), "sha", 0.05, 0.34, [SeedResult(0, 0.0, 0, 0, 1.0, "kernel_died")])
    _decide(result)
    assert not result.ok and result.problem is not None and "kernel_died" in result.describe("en")
