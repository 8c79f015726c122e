"""`grader data check`: every problem listed, each naming its file (and row); good data passes.

Each broken dataset is built for real in tmp_path (WAV files written with
soundfile, csv files as text) and checked through the CLI, as a TA would.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from grader import cli
from grader.data import layout
from grader.data.layout import open_dataset
from grader.data.validate import Problem, check_dataset
from grader.messages import Msg

GOOD_TRAIN = [("000.wav", "cat"), ("001.wav", "dog"), ("002.wav", "bird"), ("003.wav", "cat")]
GOOD_TEST = [("000.wav", "dog"), ("001.wav", "bird")]


def write_wav(path: Path, seconds: float = 0.25, sr: int = 16000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, 0.3 * np.sin(2 * np.pi * 440 * t), sr, subtype="PCM_16")


def write_csv(path: Path, rows: list[tuple[str, str]], header: str = "filename,class") -> None:
    path.write_text("\n".join([header, *(f"{f},{c}" for f, c in rows)]) + "\n", encoding="utf-8")


def build(root: Path, train=GOOD_TRAIN, test=GOOD_TEST) -> Path:
    """A dataset in the lab's layout with a real WAV for every listed row."""
    root.mkdir(parents=True, exist_ok=True)
    for split, rows in (("train", train), ("test", test)):
        write_csv(root / f"{split}.csv", rows)
        for filename, _ in rows:
            write_wav(root / split / filename)
    return root


def zip_folder(folder: Path, zip_path: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, prefix + p.relative_to(folder).as_posix())
    return zip_path


def run_check(path: Path, capsys, lang: str = "en") -> tuple[int, str, str]:
    code = cli.main(["--lang", lang, "data", "check", str(path)])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def good_dataset(tmp_path: Path) -> Path:
    return build(tmp_path / "data")


# --- good data -------------------------------------------------------------------------


def test_good_folder_passes_with_a_one_line_summary(good_dataset: Path, capsys) -> None:
    code, out, err = run_check(good_dataset, capsys)
    assert code == 0 and err == ""
    assert len(out.strip().splitlines()) == 1
    assert "train 4 clips (cat 2, dog 1, bird 1)" in out and "test 2 clips" in out


def test_good_zip_with_files_at_its_root_passes(good_dataset: Path, tmp_path: Path, capsys) -> None:
    code, out, _ = run_check(zip_folder(good_dataset, tmp_path / "data.zip"), capsys)
    assert code == 0 and "train 4 clips" in out


def test_good_zip_with_a_top_level_data_folder_passes(good_dataset: Path, tmp_path: Path, capsys) -> None:
    code, out, _ = run_check(zip_folder(good_dataset, tmp_path / "data.zip", prefix="data/"), capsys)
    assert code == 0 and "train 4 clips" in out


def test_folder_holding_a_data_subfolder_passes(good_dataset: Path, capsys) -> None:
    # The folder next to the lab notebook, after `unzip data.zip`.
    code, _, _ = run_check(good_dataset.parent, capsys)
    assert code == 0


def test_synthetic_dataset_passes(small_synthetic_dataset: Path, capsys) -> None:
    assert run_check(small_synthetic_dataset, capsys)[0] == 0


def test_summary_is_in_chinese_by_default(good_dataset: Path, capsys) -> None:
    code = cli.main(["data", "check", str(good_dataset)])
    assert code == 0 and "数据集检查通过" in capsys.readouterr().out


# --- csv problems ----------------------------------------------------------------------


def test_missing_csv_is_reported(good_dataset: Path, capsys) -> None:
    (good_dataset / "test.csv").unlink()
    code, _, err = run_check(good_dataset, capsys)
    assert code == 2
    assert "test.csv: missing" in err


def test_missing_class_column_is_reported(good_dataset: Path, capsys) -> None:
    write_csv(good_dataset / "train.csv", GOOD_TRAIN, header="filename,label")
    code, _, err = run_check(good_dataset, capsys)
    assert code == 2
    assert "train.csv: no column 'class' (found: filename, label)" in err


def test_unknown_class_is_reported_with_its_row(good_dataset: Path, capsys) -> None:
    write_csv(good_dataset / "train.csv", [*GOOD_TRAIN[:2], ("002.wav", "cow"), GOOD_TRAIN[3]])
    code, _, err = run_check(good_dataset, capsys)
    assert code == 2
    assert "train.csv row 4: unknown class 'cow' for '002.wav'" in err


def test_class_with_trailing_space_is_reported(good_dataset: Path, capsys) -> None:
    # pandas keeps the space, so the lab's label_mapping['cat '] would raise KeyError.
    write_csv(good_dataset / "test.csv", [("000.wav", "dog "), GOOD_TEST[1]])
    code, _, err = run_check(good_dataset, capsys)
    assert code == 2 and "test.csv row 2: unknown class 'dog '" in err


def test_duplicate_filename_is_reported_with_both_rows(good_dataset: Path, capsys) -> None:
    write_csv(good_dataset / "train.csv", [*GOOD_TRAIN, ("001.wav", "dog")])
    code, _, err = run_check(good_dataset, capsys)
    assert code == 2
    assert "train.csv row 6: '001.wav' is listed again (first at row 3)" in err


def test_empty_split_is_reported(good_dataset: Path, capsys) -> None:
    write_csv(good_dataset / "test.csv", [])
    code, _, err = run_check(good_dataset, capsys)
    assert code == 2 and "test.csv: lists no clips" in err


def test_empty_filename_is_reported(good_dataset: Path, capsys) -> None:
    write_csv(good_dataset / "test.csv", [*GOOD_TEST, ("", "cat")])
    code, _, err = run_check(good_dataset, capsys)
    assert code == 2 and "test.csv row 4: the filename is empty" in err


def test_filename_climbing_out_of_the_split_folder_is_reported(good_dataset: Path, capsys) -> None:
    write_csv(good_dataset / "test.csv", [*GOOD_TEST, ("../train/000.wav", "cat")])
    code, _, err = run_check(good_dataset, capsys)
    assert code == 2 and "test.csv row 4: '../train/000.wav' is not a bare file name" in err


# --- audio problems --------------------------------------------------------------------


def test_listed_file_that_does_not_exist_is_reported(good_dataset: Path, capsys) -> None:
    (good_dataset / "train" / "002.wav").unlink()
    code, _, err = run_check(good_dataset, capsys)
    assert code == 2
    assert "train/002.wav: listed in train.csv row 4 but the file does not exist" in err


def test_missing_split_folder_is_one_problem_not_one_per_file(good_dataset: Path, capsys) -> None:
    for wav in (good_dataset / "test").iterdir():
        wav.unlink()
    (good_dataset / "test").rmdir()
    code, _, err = run_check(good_dataset, capsys)
    assert code == 2
    assert "test/: folder missing" in err and "test/000.wav" not in err


def test_corrupt_wav_is_reported(good_dataset: Path, capsys) -> None:
    (good_dataset / "train" / "001.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEgarbage, not audio")
    code, _, err = run_check(good_dataset, capsys)
    assert code == 2 and "train/001.wav: not a readable audio file" in err


def test_text_file_named_wav_is_reported(good_dataset: Path, capsys) -> None:
    (good_dataset / "test" / "001.wav").write_text("version https://git-lfs.github.com/spec/v1\n")
    code, _, err = run_check(good_dataset, capsys)
    assert code == 2 and "test/001.wav: not a readable audio file" in err


def test_zero_byte_wav_is_reported_as_empty(good_dataset: Path, capsys) -> None:
    (good_dataset / "train" / "003.wav").write_bytes(b"")
    code, _, err = run_check(good_dataset, capsys)
    assert code == 2 and "train/003.wav: the WAV file is empty" in err


def test_wav_with_zero_samples_is_reported_as_empty(good_dataset: Path, capsys) -> None:
    sf.write(good_dataset / "test" / "000.wav", np.zeros(0), 16000, subtype="PCM_16")
    code, _, err = run_check(good_dataset, capsys)
    assert code == 2 and "test/000.wav: the WAV file is empty" in err


# --- several problems at once ----------------------------------------------------------


def test_every_problem_is_listed_not_just_the_first(good_dataset: Path, capsys) -> None:
    write_csv(good_dataset / "train.csv", [("000.wav", "cow"), ("001.wav", "dog"), ("001.wav", "dog"), ("009.wav", "cat")])
    (good_dataset / "train" / "000.wav").write_bytes(b"")
    (good_dataset / "test.csv").unlink()
    code, _, err = run_check(good_dataset, capsys)
    assert code == 2
    assert "5 problem(s)" in err
    for expected in ("row 2: unknown class 'cow'", "train/000.wav: the WAV file is empty", "row 4: '001.wav' is listed again",
                     "train/009.wav: listed in train.csv row 5", "test.csv: missing"):
        assert expected in err
    assert "Traceback" not in err


def test_check_dataset_returns_problems_with_codes_files_and_messages(good_dataset: Path) -> None:
    write_csv(good_dataset / "test.csv", [("000.wav", "cow"), GOOD_TEST[1]])
    problems = check_dataset(good_dataset)
    assert problems == [
        Problem(
            "class_unknown",
            "test.csv",
            Msg("data.class_unknown", {"file": "test.csv", "row": 2, "value": "cow", "name": "000.wav", "expected": "cat, dog, bird"}),
        )
    ]


def test_problems_are_explained_in_chinese_by_default(good_dataset: Path, capsys) -> None:
    write_csv(good_dataset / "train.csv", [("000.wav", "cow")])
    code = cli.main(["data", "check", str(good_dataset)])
    err = capsys.readouterr().err
    assert code == 2 and "train.csv 第 2 行" in err and "无法识别" in err


# --- zip and path problems -------------------------------------------------------------


def test_missing_path_is_reported(tmp_path: Path, capsys) -> None:
    code, _, err = run_check(tmp_path / "nowhere.zip", capsys)
    assert code == 2 and "nowhere.zip: no such file or folder" in err


def test_file_that_is_not_a_zip_is_reported(tmp_path: Path, capsys) -> None:
    (tmp_path / "data.zip").write_text("not a zip")
    code, _, err = run_check(tmp_path / "data.zip", capsys)
    assert code == 2 and "neither a dataset folder nor a zip archive" in err


def _zip_with_member(zip_path: Path, good_dataset: Path, member: str) -> Path:
    zip_folder(good_dataset, zip_path)
    with zipfile.ZipFile(zip_path, "a") as zf:
        zf.writestr(zipfile.ZipInfo(member), b"payload")
    return zip_path


def test_zip_slip_member_is_refused_and_nothing_is_written(good_dataset: Path, tmp_path: Path, capsys) -> None:
    zip_path = _zip_with_member(tmp_path / "data.zip", good_dataset, "../../evil.txt")
    code, _, err = run_check(zip_path, capsys)
    assert code == 2 and "refused" in err and "'../../evil.txt'" in err
    # Extraction happens under the system temp dir: ../../ from there would land at /evil.txt or /tmp/evil.txt.
    assert not Path("/evil.txt").exists() and not Path("/tmp/evil.txt").exists()


def test_absolute_member_name_is_refused(good_dataset: Path, tmp_path: Path, capsys) -> None:
    zip_path = _zip_with_member(tmp_path / "data.zip", good_dataset, "/tmp/grader-evil.txt")
    code, _, err = run_check(zip_path, capsys)
    assert code == 2 and "'/tmp/grader-evil.txt'" in err
    assert not Path("/tmp/grader-evil.txt").exists()


def test_archive_declaring_too_much_data_is_refused(good_dataset: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(layout, "MAX_UNCOMPRESSED_BYTES", 1024)
    code, _, err = run_check(zip_folder(good_dataset, tmp_path / "data.zip"), capsys)
    assert code == 2 and "uncompressed" in err


def test_truncated_zip_is_reported(good_dataset: Path, tmp_path: Path, capsys) -> None:
    zip_path = zip_folder(good_dataset, tmp_path / "data.zip")
    data = zip_path.read_bytes()
    zip_path.write_bytes(data[: len(data) // 2])
    code, _, err = run_check(zip_path, capsys)
    assert code == 2 and "Traceback" not in err


def test_problems_inside_a_zip_are_listed_like_a_folders(good_dataset: Path, tmp_path: Path, capsys) -> None:
    (good_dataset / "test" / "001.wav").unlink()
    code, _, err = run_check(zip_folder(good_dataset, tmp_path / "data.zip", prefix="data/"), capsys)
    assert code == 2 and "test/001.wav: listed in test.csv row 3" in err


def test_open_dataset_extracts_a_zip_and_cleans_up(good_dataset: Path, tmp_path: Path) -> None:
    with open_dataset(zip_folder(good_dataset, tmp_path / "data.zip", prefix="data/")) as root:
        assert (root / "train.csv").is_file() and (root / "train" / "000.wav").is_file()
        extracted = root
    assert not extracted.exists()


# --- the holdout split (#13 item 6) ----------------------------------------------------

GOOD_HOLDOUT = [("000.wav", "cat"), ("001.wav", "bird")]


def with_holdout(root: Path, rows=GOOD_HOLDOUT) -> Path:
    write_csv(root / "holdout.csv", rows)
    for filename, _ in rows:
        write_wav(root / "holdout" / filename)
    return root


def test_good_holdout_split_passes_and_is_counted(good_dataset: Path, capsys) -> None:
    code, out, err = run_check(with_holdout(good_dataset), capsys)
    assert code == 0 and err == ""
    assert "holdout 2 clips (cat 1, dog 0, bird 1), kept from the notebook" in out


def test_without_a_holdout_split_the_summary_says_the_test_split_is_measured(good_dataset: Path, capsys) -> None:
    code, out, _ = run_check(good_dataset, capsys)
    assert code == 0 and "no holdout split: lstm.train measures on the test split" in out


def test_holdout_file_missing_is_reported(good_dataset: Path, capsys) -> None:
    with_holdout(good_dataset)
    (good_dataset / "holdout" / "001.wav").unlink()
    code, _, err = run_check(good_dataset, capsys)
    assert code == 2 and "holdout/001.wav: listed in holdout.csv row 3 but the file does not exist" in err


def test_holdout_unknown_class_is_reported(good_dataset: Path, capsys) -> None:
    with_holdout(good_dataset, [("000.wav", "cow")])
    code, _, err = run_check(good_dataset, capsys)
    assert code == 2 and "holdout.csv row 2: unknown class 'cow' for '000.wav'" in err


def test_holdout_missing_class_column_is_reported(good_dataset: Path, capsys) -> None:
    with_holdout(good_dataset)
    write_csv(good_dataset / "holdout.csv", GOOD_HOLDOUT, header="filename,label")
    code, _, err = run_check(good_dataset, capsys)
    assert code == 2 and "holdout.csv: no column 'class' (found: filename, label)" in err


def test_empty_holdout_split_is_reported(good_dataset: Path, capsys) -> None:
    with_holdout(good_dataset)
    write_csv(good_dataset / "holdout.csv", [])
    code, _, err = run_check(good_dataset, capsys)
    assert code == 2 and "holdout.csv: lists no clips (only a header); the holdout split is empty" in err


def test_holdout_folder_without_its_csv_is_reported(good_dataset: Path, capsys) -> None:
    with_holdout(good_dataset)
    (good_dataset / "holdout.csv").unlink()
    code, _, err = run_check(good_dataset, capsys, lang="zh")
    assert code == 2 and "holdout.csv：缺失，但 holdout/ 目录存在" in err


def test_holdout_csv_without_its_folder_is_reported(good_dataset: Path, capsys) -> None:
    write_csv(good_dataset / "holdout.csv", GOOD_HOLDOUT)
    code, _, err = run_check(good_dataset, capsys)
    assert code == 2 and "holdout/: folder missing" in err


def test_broken_holdout_inside_a_zip_is_reported(good_dataset: Path, tmp_path: Path, capsys) -> None:
    with_holdout(good_dataset, [("000.wav", "cow")])
    code, _, err = run_check(zip_folder(good_dataset, tmp_path / "data.zip", prefix="data/"), capsys)
    assert code == 2 and "holdout.csv row 2: unknown class 'cow'" in err


# --- clips the lab's notebook opens by name: a warning, not a failure ------------------


def test_a_clip_the_lab_plays_by_name_missing_is_a_warning_not_a_failure(good_dataset: Path, capsys) -> None:
    write_csv(good_dataset / "train.csv", [r for r in GOOD_TRAIN if r[0] != "002.wav"])
    (good_dataset / "train" / "002.wav").unlink()
    code, out, err = run_check(good_dataset, capsys)
    assert code == 0 and err == ""
    assert "warning: train/002.wav: the lab's notebook opens this clip by name" in out
    code = cli.main(["data", "check", str(good_dataset)])
    assert code == 0 and "警告：train/002.wav" in capsys.readouterr().out


def test_named_files_are_found_in_a_notebooks_code(tmp_path: Path) -> None:
    from grader.data.validate import named_files_in

    nb = {"cells": [
        {"cell_type": "code", "source": ['Audio(f"{train_dir}/002.wav")\n', "x = os.path.join(test_dir, '007.wav')"]},
        {"cell_type": "markdown", "source": "train/999.wav"},
        {"cell_type": "code", "source": "y = f'{train_dir}/{name}.wav'  # a pattern, not a name\n# 'train/5.wav'"},
    ], "nbformat": 4, "nbformat_minor": 5, "metadata": {}}
    path = tmp_path / "lab.ipynb"
    path.write_text(__import__("json").dumps(nb), encoding="utf-8")
    assert named_files_in(path) == [("train", "002.wav"), ("test", "007.wav")]


# --- dataset errors met while grading: DatasetError in the chosen language, never exit 3 ---


@pytest.mark.parametrize(("breakage", "english"), [
    ("unknown_class", "unknown class(es) cow"),
    ("no_class_column", "holdout.csv: no column 'class'"),
    ("missing_file", "holdout/001.wav: listed in holdout.csv but the file does not exist"),
    ("no_csv", "holdout.csv: missing"),
    ("empty", "the holdout split is empty"),
])
def test_a_broken_holdout_met_while_grading_is_a_dataset_error(good_dataset: Path, tmp_path: Path, breakage: str,
                                                               english: str) -> None:
    from grader.checks.heldout import choose_heldout
    from grader.data.features import FeatureCache
    from grader.errors import DatasetError

    with_holdout(good_dataset)
    if breakage == "unknown_class":
        write_csv(good_dataset / "holdout.csv", [("000.wav", "cow")])
    elif breakage == "no_class_column":
        write_csv(good_dataset / "holdout.csv", GOOD_HOLDOUT, header="filename,label")
    elif breakage == "missing_file":
        (good_dataset / "holdout" / "001.wav").unlink()
    elif breakage == "no_csv":
        (good_dataset / "holdout.csv").unlink()
    else:
        write_csv(good_dataset / "holdout.csv", [])
    with pytest.raises(DatasetError) as caught:
        choose_heldout(good_dataset, synthetic=False, cache=FeatureCache(tmp_path / "mfcc"))
    message, _ = caught.value.text_in("en")
    assert english in message and caught.value.exit_code == 2
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in message)  # English under --lang en
    assert any("\u4e00" <= ch <= "\u9fff" for ch in caught.value.text_in("zh")[0])


def test_check_with_a_broken_holdout_exits_2_in_english_before_the_notebook_runs(good_dataset: Path,
                                                                                 tmp_path: Path, capsys) -> None:
    from grader.paths import TEMPLATE_NOTEBOOK

    with_holdout(good_dataset, [("000.wav", "cow")])
    code = cli.main(["--lang", "en", "check", str(TEMPLATE_NOTEBOOK), "--data", str(good_dataset)])
    err = capsys.readouterr().err
    assert code == 2 and "holdout.csv row 2: unknown class 'cow'" in err and "Traceback" not in err
