"""Every problem a dataset has, each as one message naming the file and row.

`check_dataset` never stops at the first problem: a TA fixing a broken
data.zip should see the whole list at once. Rows are numbered as in a
spreadsheet (the header is row 1), so "train.csv row 5" is the fifth line.
The checks follow what the lab's code does with the data: pd.read_csv, exact
column and class names, os.path.join(split, filename), librosa.load.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import soundfile as sf

from grader.data.layout import CLASSES, CSV_COLUMNS, SPLITS, ArchiveError, csv_path, open_dataset, split_dir
from grader.errors import DatasetError
from grader.messages import DEFAULT_LANGUAGE, Msg, render


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset. `code` is stable (tests, tooling); `msg` is for people."""

    code: str
    file: str  # relative to the dataset folder, or the zip's path
    msg: Msg


@dataclass(frozen=True)
class _Row:
    number: int  # spreadsheet numbering: the header is row 1
    filename: str
    cls: str


@dataclass
class _Inspection:
    """What a pass over the dataset found (mutable while it is being filled in)."""

    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    rates: set[int] = field(default_factory=set)
    seconds: list[float] = field(default_factory=list)

    def add(self, code: str, file: str, **params: object) -> None:
        self.problems.append(Problem(code, file, Msg(f"data.{code}", {"file": file, **params})))


def _read_csv(root: Path, split: str, found: _Inspection) -> list[_Row] | None:
    """The csv's rows, or None when it is missing, unreadable or lacks a column."""
    path = csv_path(root, split)
    name = path.name
    if not path.is_file():
        found.add("csv_missing", name)
        return None
    try:
        # utf-8-sig: spreadsheet programs add a BOM, and pandas reads through it too.
        with path.open(newline="", encoding="utf-8-sig") as fh:
            lines = list(csv.reader(fh))
    except (UnicodeDecodeError, csv.Error, OSError) as exc:
        found.add("csv_unreadable", name, reason=str(exc))
        return None
    header = lines[0] if lines else []
    missing = [column for column in CSV_COLUMNS if column not in header]
    for column in missing:
        found.add("column_missing", name, column=column, found=", ".join(header) or "-")
    if missing:
        return None
    at = {column: header.index(column) for column in CSV_COLUMNS}

    def cell(line: list[str], column: str) -> str:
        # A short row reads as empty cells, as pandas fills them with NaN.
        return line[at[column]] if at[column] < len(line) else ""

    return [
        _Row(number, cell(line, "filename"), cell(line, "class"))
        for number, line in enumerate(lines[1:], start=2)
        if any(value.strip() for value in line)  # pandas skips blank lines as well
    ]


def _check_rows(split: str, rows: list[_Row], found: _Inspection) -> list[_Row]:
    """Report bad rows; return the rows whose audio file should be checked."""
    name = f"{split}.csv"
    if not rows:
        found.add("split_empty", name, split=split)
        return []
    first_seen: dict[str, int] = {}
    to_open = []
    for row in rows:
        if row.cls not in CLASSES:
            found.add("class_unknown", name, row=row.number, value=row.cls, name=row.filename, expected=", ".join(CLASSES))
        if not row.filename:
            found.add("filename_empty", name, row=row.number)
            continue
        parts = PurePosixPath(row.filename.replace("\\", "/")).parts
        if row.filename.startswith(("/", "\\")) or ".." in parts:
            found.add("filename_unsafe", name, row=row.number, name=row.filename, split=split)
            continue
        if row.filename in first_seen:
            found.add("filename_duplicate", name, row=row.number, name=row.filename, first_row=first_seen[row.filename])
            continue
        first_seen[row.filename] = row.number
        to_open.append(row)
    return to_open


def _check_audio(root: Path, split: str, rows: list[_Row], found: _Inspection) -> None:
    folder = split_dir(root, split)
    if rows and not folder.is_dir():
        found.add("split_dir_missing", f"{split}/", count=len(rows), csv=f"{split}.csv")
        return
    for row in rows:
        rel = f"{split}/{row.filename}"
        path = folder / row.filename
        if not path.is_file():
            found.add("wav_missing", rel, csv=f"{split}.csv", row=row.number)
            continue
        if path.stat().st_size == 0:
            found.add("wav_empty", rel)
            continue
        try:
            # Decode it all: a valid header over truncated or garbage data must fail here, not in the lab.
            audio, sr = sf.read(path, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, ValueError, TypeError, OSError) as exc:
            found.add("wav_unreadable", rel, reason=_reason(exc, path))
            continue
        if audio.shape[0] == 0:
            found.add("wav_empty", rel)
            continue
        found.rates.add(int(sr))
        found.seconds.append(audio.shape[0] / sr)


def _reason(exc: Exception, path: Path) -> str:
    """libsndfile's complaint without the file's path (for a zip, a meaningless temp folder)."""
    lines = str(exc).strip().splitlines()
    reason = lines[-1] if lines else type(exc).__name__
    prefix = f"Error opening {str(path)!r}: "
    return reason.removeprefix(prefix).strip() or type(exc).__name__


def _inspect(path: Path, lang: str) -> _Inspection:
    found = _Inspection()
    try:
        with open_dataset(path, lang=lang) as root:
            for split in SPLITS:
                rows = _read_csv(root, split, found)
                if rows is None:
                    continue
                found.counts[split] = {cls: sum(r.cls == cls for r in rows) for cls in CLASSES}
                _check_audio(root, split, _check_rows(split, rows, found), found)
    except ArchiveError as exc:
        found.problems.append(Problem(exc.msg.key.removeprefix("data."), str(path), exc.msg))
    return found


def check_dataset(path: Path) -> list[Problem]:
    """Every problem of the dataset folder or data.zip at `path`; empty when it is usable."""
    return _inspect(Path(path), DEFAULT_LANGUAGE).problems


def _summary(path: Path, found: _Inspection) -> Msg:
    def split_counts(split: str) -> tuple[int, str]:
        per_class = found.counts.get(split, {})
        return sum(per_class.values()), ", ".join(f"{cls} {n}" for cls, n in per_class.items())

    train, train_classes = split_counts("train")
    test, test_classes = split_counts("test")
    return Msg(
        "data.ok",
        {
            "path": str(path),
            "train": train,
            "train_classes": train_classes,
            "test": test,
            "test_classes": test_classes,
            "rates": "/".join(f"{r} Hz" for r in sorted(found.rates)),
            "min_s": min(found.seconds, default=0.0),
            "max_s": max(found.seconds, default=0.0),
        },
    )


def report_dataset(path: Path, lang: str) -> int:
    """`grader data check`: print a one-line summary and return 0, or raise DatasetError listing every problem."""
    found = _inspect(Path(path), lang)
    if found.problems:
        raise DatasetError(
            render(Msg("data.invalid", {"path": str(path), "count": len(found.problems)}), lang),
            details=[render(p.msg, lang) for p in found.problems],
        )
    print(render(_summary(Path(path), found), lang))
    return 0
