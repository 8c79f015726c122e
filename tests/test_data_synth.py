"""The synthetic default dataset: deterministic, real PCM-16 WAVs, in the lab's layout."""
from __future__ import annotations

import csv
from pathlib import Path

import soundfile as sf

from grader.cli import main
from grader.data.synth import SynthParams, generate
from grader.data.validate import check_dataset

SMALL = SynthParams(train_per_class=3, test_per_class=1)


def _all_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _rows(csv_file: Path) -> list[dict[str, str]]:
    with csv_file.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_same_seed_writes_identical_bytes(tmp_path: Path) -> None:
    generate(tmp_path / "a", seed=7, params=SMALL)
    generate(tmp_path / "b", seed=7, params=SMALL)
    a, b = _all_bytes(tmp_path / "a"), _all_bytes(tmp_path / "b")
    assert len(a) == 2 + 12  # two csv files and 9 + 3 clips
    assert a == b


def test_other_seed_writes_other_audio(tmp_path: Path) -> None:
    generate(tmp_path / "a", seed=1, params=SMALL)
    generate(tmp_path / "b", seed=2, params=SMALL)
    assert (tmp_path / "a/train/000.wav").read_bytes() != (tmp_path / "b/train/000.wav").read_bytes()


def test_default_dataset_has_80_train_and_20_test_clips_per_class(default_synthetic_dataset: Path) -> None:
    for split, per_class in (("train", 80), ("test", 20)):
        rows = _rows(default_synthetic_dataset / f"{split}.csv")
        assert [sum(r["class"] == c for r in rows) for c in ("cat", "dog", "bird")] == [per_class] * 3
        assert all((default_synthetic_dataset / split / r["filename"]).is_file() for r in rows)
        assert all("/" not in r["filename"] for r in rows)  # the lab joins bare names onto data/<split>


def test_default_clips_are_pcm16_at_two_rates_and_2_to_4_seconds(default_synthetic_dataset: Path) -> None:
    infos = [sf.info(str(p)) for p in sorted(default_synthetic_dataset.rglob("*.wav"))]
    assert {i.subtype for i in infos} == {"PCM_16"}
    assert {i.samplerate for i in infos} == {16000, 22050}
    assert all(i.channels == 1 for i in infos)
    assert all(2.0 <= i.frames / i.samplerate <= 4.0 for i in infos)
    # librosa's default hop is 512 with centring: 1 + n // 512 MFCC frames; the design keeps them in 63-173.
    frames = [1 + i.frames // 512 for i in infos]
    assert min(frames) >= 63 and max(frames) <= 173


def test_default_dataset_passes_the_checker(default_synthetic_dataset: Path) -> None:
    assert check_dataset(default_synthetic_dataset) == []


def test_classes_are_interleaved_in_the_csv(small_synthetic_dataset: Path) -> None:
    # A csv sorted by class would make an unshuffled loader's batches single-class.
    classes = [r["class"] for r in _rows(small_synthetic_dataset / "train.csv")]
    assert classes != sorted(classes, key=("cat", "dog", "bird").index)


def test_cli_synth_writes_the_dataset_and_describes_it(tmp_path: Path, capsys) -> None:
    out = tmp_path / "synth"
    assert main(["data", "synth", str(out), "--seed", "5"]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "80 cat" in printed and "16000 Hz" in printed
    assert (out / "train.csv").is_file() and len(list((out / "test").glob("*.wav"))) == 60


def test_summary_describe_names_counts_rates_lengths_and_folder(tmp_path: Path) -> None:
    summary = generate(tmp_path / "d", seed=0, params=SMALL)
    text = summary.describe()
    assert 1 <= len(text.splitlines()) <= 2
    assert "train: 3 cat, 3 dog, 3 bird" in text and "test: 1 cat" in text
    assert str(tmp_path / "d") in text and " s per clip" in text
