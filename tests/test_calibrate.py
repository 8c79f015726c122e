"""grader calibrate: the reference over seeds, a threshold with margin, refusal when nothing separates."""
from __future__ import annotations

import csv
import dataclasses
import shutil
import zipfile
from pathlib import Path

import pytest
from rubric_edit import lab_rubric_with

from grader.calibrate import CalibrationResult, SeedResult, _decide, calibrate, floor_percent
from grader.calibration import calibration_path, dataset_hash, effective_threshold, effective_training, load_calibration
from grader.data.features import FeatureCache
from grader.errors import RubricError
from grader.rubric import load_rubric


@pytest.fixture()
def rubric_path(tmp_path: Path) -> Path:
    """The lab rubric with max_epochs 3, so a calibration takes seconds."""
    return lab_rubric_with(tmp_path / "rubrics" / "lab.toml", max_epochs=3)


@pytest.fixture(scope="module")
def feature_cache(tmp_path_factory: pytest.TempPathFactory) -> FeatureCache:
    # One cache for every lstm.train test module: MFCCs of the same clips are computed once.
    return FeatureCache(tmp_path_factory.getbasetemp() / "training-mfcc")


@pytest.mark.kernel
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


@pytest.mark.kernel
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


# --- calibrations belong to their data (#13 item 4) ------------------------------------


def _calibration_for(data: Path, path: Path, threshold: float, sha: str | None = None) -> Path:
    from grader.calibration import Calibration

    cal = Calibration(threshold, 0.05, sha or dataset_hash(data), (0,), (threshold + 0.05,), 0.34, 3, 0.01, 16,
                      data=str(data))
    path.write_text(cal.to_toml(), encoding="utf-8")
    return path


def test_the_data_hash_covers_the_holdout_split(small_synthetic_dataset: Path, tmp_path: Path) -> None:
    data = Path(shutil.copytree(small_synthetic_dataset, tmp_path / "data"))
    before = dataset_hash(data)
    shutil.copytree(data / "test", data / "holdout")
    shutil.copy(data / "test.csv", data / "holdout.csv")
    assert dataset_hash(data) != before
    assert dataset_hash(data) == dataset_hash(data)


def test_a_calibration_given_is_applied_on_its_own_data(rubric_path: Path, small_synthetic_dataset: Path,
                                                        tmp_path: Path) -> None:
    from grader.calibration import applied_calibration

    given = _calibration_for(small_synthetic_dataset, tmp_path / "anywhere.toml", 0.61)
    applied = applied_calibration(load_rubric(rubric_path), small_synthetic_dataset, given)
    assert applied.path == given and applied.training.threshold == 0.61 and len(applied.sha256) == 64


def test_a_calibration_given_for_other_data_is_refused_with_the_command_to_recalibrate(
        rubric_path: Path, small_synthetic_dataset: Path, tmp_path: Path) -> None:
    from grader.calibration import CalibrationMismatchError, applied_calibration

    given = _calibration_for(small_synthetic_dataset, tmp_path / "real.toml", 0.64, sha="e" * 64)
    data = tmp_path / "class-data.zip"
    with pytest.raises(CalibrationMismatchError) as caught:
        applied_calibration(load_rubric(rubric_path), small_synthetic_dataset, given, data=data)
    english, _ = caught.value.text_in("en")
    assert caught.value.exit_code == 2
    assert "calibrated on other data" in english and f"grader calibrate --data {data} --out {given}" in english
    assert "另一份数据上校准" in caught.value.text_in("zh")[0]


def test_check_refuses_a_calibration_for_other_data_before_any_kernel(rubric_path: Path, small_synthetic_dataset: Path,
                                                                       tmp_path: Path, capsys) -> None:
    from grader.cli import main
    from grader.paths import TEMPLATE_NOTEBOOK

    given = _calibration_for(small_synthetic_dataset, tmp_path / "real.toml", 0.64, sha="e" * 64)
    code = main(["--lang", "en", "check", str(TEMPLATE_NOTEBOOK), "--full", "--data", str(small_synthetic_dataset),
                 "--rubric", str(rubric_path), "--calibration", str(given)])
    err = capsys.readouterr().err
    assert code == 2 and "calibrated on other data" in err and "Traceback" not in err


def test_a_missing_calibration_file_is_exit_2(rubric_path: Path, small_synthetic_dataset: Path, tmp_path: Path,
                                              capsys) -> None:
    from grader.cli import main
    from grader.paths import TEMPLATE_NOTEBOOK

    code = main(["--lang", "en", "check", str(TEMPLATE_NOTEBOOK), "--calibration", str(tmp_path / "nope.toml"),
                 "--rubric", str(rubric_path)])
    assert code == 2 and "nope.toml: cannot read the calibration file (no such file)" in capsys.readouterr().err


# --- calibrate's output: each line once, in order, in the chosen language (#13 item 10) ---


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


@pytest.mark.kernel
def test_calibrate_prints_each_line_once_header_first_in_english(rubric_path: Path, small_synthetic_dataset: Path,
                                                                  tmp_path: Path, capsys) -> None:
    from grader.cli import main

    out = tmp_path / "mine.calibration.toml"
    code = main(["--lang", "en", "calibrate", "--data", str(small_synthetic_dataset), "--seeds", "2",
                 "--rubric", str(rubric_path), "--out", str(out), "--margin", "0.0"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert not _has_cjk("\n".join(lines)), lines
    if code == 1:  # 6 test clips: a seed may not separate them; the order is what is tested
        assert lines[-1].startswith("Not written") and not out.exists()
    else:
        assert code == 0 and out.is_file()
        assert "threshold" in lines[-2] and f"pass `--calibration {out}`" in lines[-1]
        assert f"--data {small_synthetic_dataset}" in lines[-1] and f"--rubric {rubric_path}" in lines[-1]
    assert lines[0].startswith("Calibrating lstm.train on") and "over 2 seed(s)" in lines[0]
    seed_lines = [line for line in lines if line.lstrip().startswith("seed ")]
    assert [line.split(":")[0].strip() for line in seed_lines] == ["seed 0", "seed 1"]
    assert lines[1:3] == seed_lines  # right after the header, each once


@pytest.mark.kernel
def test_calibrate_beside_the_rubric_says_it_is_picked_up_automatically(rubric_path: Path,
                                                                        small_synthetic_dataset: Path,
                                                                        feature_cache: FeatureCache) -> None:
    seen: list = []
    result = calibrate(small_synthetic_dataset, 1, rubric_path, margin=0.0, cache=feature_cache, emit=seen.append)
    assert [m.key for m in seen] == [m.key for m in result.messages()]  # what was printed is what describe says
    assert seen[0].key == "training.calibrate_header" and seen[1].key == "training.calibrate_seed"
    if result.ok:
        assert seen[-1].key == "training.calibrate_pickup_auto"
        assert "Used automatically by `grader check LAB.ipynb --full" in result.describe("en").splitlines()[-1]
        assert "会自动使用" in result.describe("zh").splitlines()[-1]


@pytest.mark.kernel
def test_a_seed_out_of_its_time_budget_is_an_error_not_a_data_point(rubric_path: Path, small_synthetic_dataset: Path,
                                                                   tmp_path: Path, feature_cache: FeatureCache,
                                                                   capsys) -> None:
    lab_rubric_with(rubric_path, max_epochs=3, time_budget_s=0.001)
    from grader.cli import main

    code = main(["--lang", "en", "calibrate", "--data", str(small_synthetic_dataset), "--seeds", "3",
                 "--rubric", str(rubric_path)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 1 and not calibration_path(rubric_path).exists()
    assert "this machine is too slow for the budget; raise time_budget_s" in lines[-1]
    assert len([line for line in lines if line.lstrip().startswith("seed ")]) == 1  # stopped at the first


def test_decide_refuses_a_budget_seed() -> None:
    result = CalibrationResult(Path("d"), "sha", 0.05, 0.34, [SeedResult(0, 0.95, 2, 2, 120.0, "completed"),
                                                             SeedResult(1, 0.90, 1, 1, 120.0, "budget")],
                               budget_s=120.0, max_epochs=3)
    _decide(result)
    assert not result.ok and result.threshold is None
    assert "seed 1 ran out of its time budget (120 s) after 1 of 3 epochs" in result.describe("en")


@pytest.mark.kernel
def test_check_applies_the_calibration_given(rubric_path: Path, small_synthetic_dataset: Path, tmp_path: Path,
                                             capsys) -> None:
    """End to end: the reference graded with `--calibration FILE` trains against FILE's threshold."""
    import json

    from grader.cli import main
    from grader.paths import REFERENCE_NOTEBOOK

    given = _calibration_for(small_synthetic_dataset, tmp_path / "course.calibration.toml", 0.42)
    main(["--lang", "en", "check", str(REFERENCE_NOTEBOOK), "--full", "--format", "json", "--data",
          str(small_synthetic_dataset), "--rubric", str(rubric_path), "--calibration", str(given)])
    result = json.loads(capsys.readouterr().out)
    train = next(c for c in result["checks"] if c["id"] == "lstm.train")
    assert train["details"]["threshold"] == 0.42, train
