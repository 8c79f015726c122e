"""The rubric loader: the shipped rubric is valid, and every mistake gets an exact message."""
from __future__ import annotations

from pathlib import Path

import pytest

from grader.errors import RubricError
from grader.paths import DEFAULT_RUBRIC
from grader.rubric import CHECK_IDS, load_rubric


def test_shipped_rubric_is_valid_and_totals_100():
    rubric = load_rubric()
    assert rubric.max_score == 100
    assert tuple(rubric.checks) == CHECK_IDS
    assert rubric.checks["notebook.parses"].points == 0
    assert all(spec.hint_zh and spec.hint_en for spec in rubric.checks.values())


def _edited(tmp_path: Path, old: str, new: str) -> Path:
    text = DEFAULT_RUBRIC.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "lab.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_misspelt_key_gets_did_you_mean(tmp_path):
    path = _edited(tmp_path, "threshold = 0.80", "treshold = 0.80")
    with pytest.raises(RubricError, match="unknown key 'treshold'; did you mean 'threshold'"):
        load_rubric(path)


def test_misspelt_check_id_gets_did_you_mean(tmp_path):
    path = _edited(tmp_path, '[checks."lstm.grad"]', '[checks."lstm.gard"]')
    with pytest.raises(RubricError, match=r"unknown check 'lstm\.gard'; did you mean 'lstm\.grad'"):
        load_rubric(path)


def test_wrong_total_names_both_numbers(tmp_path):
    path = _edited(tmp_path, "points = 14\nvisibility", "points = 15\nvisibility")
    with pytest.raises(RubricError, match="add up to 101, but \\[meta\\] total is 100"):
        load_rubric(path)


def test_wrong_type_is_named(tmp_path):
    path = _edited(tmp_path, "max_epochs = 20", 'max_epochs = "twenty"')
    with pytest.raises(RubricError, match="max_epochs: expected int, got str"):
        load_rubric(path)


def test_points_on_the_parse_gate_are_refused(tmp_path):
    path = _edited(tmp_path, "[meta]", "[meta]\ntotal = 104")
    path.write_text(path.read_text(encoding="utf-8").replace("total = 100\n", "").replace("points = 0 ", "points = 4 "),
                    encoding="utf-8")
    with pytest.raises(RubricError, match=r"notebook\.parses is a gate and must carry 0 points"):
        load_rubric(path)


def test_a_one_batch_cap_is_refused(tmp_path):
    path = _edited(tmp_path, "batch_cap = 4", "batch_cap = 1")
    with pytest.raises(RubricError, match=r"\[limits\] batch_cap: must be 0 \(no cap\) or at least 2"):
        load_rubric(path)


def test_a_rubric_without_a_batch_cap_caps_no_batches(tmp_path):
    text = DEFAULT_RUBRIC.read_text(encoding="utf-8")
    line = next(line for line in text.splitlines() if line.startswith("batch_cap ="))
    path = tmp_path / "older.toml"
    path.write_text(text.replace(line + "\n", ""), encoding="utf-8")
    assert load_rubric(path).limits.batch_cap == 0
    assert load_rubric().limits.batch_cap == 4


def test_invalid_toml_is_reported(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[meta\n", encoding="utf-8")
    with pytest.raises(RubricError, match="not valid TOML"):
        load_rubric(path)


def test_model_check_names_are_stable_rubric_ids():
    from grader.lab_api import CHECK_NAMES, MODELS

    produced = {f"{spec.prefix}.{name}" for spec in MODELS for name in CHECK_NAMES}
    assert produced <= set(CHECK_IDS), produced - set(CHECK_IDS)
    produced |= {f"{spec.prefix}.sizes" for spec in MODELS}  # run_model_checks(..., other_sizes=True)
    assert {c for c in CHECK_IDS if c.split(".")[0] in ("rnn", "lstm") and c != "lstm.train"} == produced


def test_lstm_train_requires_lstm_forward_by_default_and_a_rubric_can_change_it(tmp_path) -> None:
    from grader.paths import DEFAULT_RUBRIC
    from grader.rubric import load_rubric

    assert load_rubric(None).checks["lstm.train"].requires == ("lstm.forward",)
    text = DEFAULT_RUBRIC.read_text(encoding="utf-8")
    free = tmp_path / "free.toml"
    free.write_text(text.replace('requires = ["lstm.forward"]', "requires = []"), encoding="utf-8")
    assert load_rubric(free).checks["lstm.train"].requires == ()
    absent = tmp_path / "absent.toml"
    absent.write_text(text.replace('requires = ["lstm.forward"]\n', ""), encoding="utf-8")
    assert load_rubric(absent).checks["lstm.train"].requires == ("lstm.forward",)


def test_requires_names_a_real_other_check(tmp_path) -> None:
    import pytest

    from grader.errors import RubricError
    from grader.paths import DEFAULT_RUBRIC
    from grader.rubric import load_rubric

    bad = tmp_path / "bad.toml"
    bad.write_text(DEFAULT_RUBRIC.read_text(encoding="utf-8").replace('requires = ["lstm.forward"]',
                                                                      'requires = ["lstm.forwrd"]'), encoding="utf-8")
    with pytest.raises(RubricError, match=r"did you mean 'lstm\.forward'"):
        load_rubric(bad)


def test_a_passed_check_whose_requirement_failed_earns_nothing() -> None:
    from grader.messages import Msg
    from grader.result import CheckResult, Status
    from grader.rubric import load_rubric
    from grader.score import score_results

    rubric = load_rubric(None)
    results = [CheckResult("lstm.forward", Status.FAILED, Msg("report.not_graded")),
               CheckResult("lstm.train", Status.PASSED, Msg("report.not_graded"))]
    train = next(c for c in score_results(results, rubric) if c.id == "lstm.train")
    assert train.status is Status.SKIPPED and train.score == 0 and train.message.key == "report.requires_unmet"
