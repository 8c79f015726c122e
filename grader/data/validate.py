"""Every problem a dataset has, each as one message naming the file and row.

`check_dataset` never stops at the first problem: a TA fixing a broken
data.zip should see the whole list at once. Rows are numbered as in a
spreadsheet (the header is row 1), so "train.csv row 5" is the fifth line.
The checks follow what the lab's code does with the data: pd.read_csv, exact
column and class names, os.path.join(split, filename), librosa.load.
"""
from __future__ import annotations

import csv
import re
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
    warnings: list[Problem] = field(default_factory=list)

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
            found.add("class_unknown", name, row=row.number, value=row.cls, name=row.filename,
                      expected=", ".join(CLASSES))
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


HOLDOUT = "holdout"


def _splits_of(root: Path, found: _Inspection) -> list[str]:
    """train and test always; holdout when any part of it is there (csv or folder).

    A holdout folder without its csv is a problem, not an absent split: the grader
    would silently measure lstm.train on the test split the notebook can see.
    """
    has_csv, has_dir = csv_path(root, HOLDOUT).is_file(), split_dir(root, HOLDOUT).is_dir()
    if has_dir and not has_csv:
        found.add("holdout_csv_missing", f"{HOLDOUT}.csv")
        return list(SPLITS)
    return [*SPLITS, HOLDOUT] if has_csv else list(SPLITS)


def _inspect_root(root: Path, found: _Inspection) -> None:
    for split in _splits_of(root, found):
        rows = _read_csv(root, split, found)
        if rows is None:
            continue
        found.counts[split] = {cls: sum(r.cls == cls for r in rows) for cls in CLASSES}
        _check_audio(root, split, _check_rows(split, rows, found), found)
    found.warnings.extend(named_file_warnings(root))


def _inspect(path: Path, lang: str) -> _Inspection:
    found = _Inspection()
    try:
        with open_dataset(path, lang=lang) as root:
            _inspect_root(root, found)
    except ArchiveError as exc:
        found.problems.append(Problem(exc.reason.key.removeprefix("data."), str(path), exc.reason))
    return found


def problems_in(root: Path) -> list[Problem]:
    """Every problem of a dataset folder already in the lab's layout (an opened zip, say)."""
    found = _Inspection()
    _inspect_root(Path(root), found)
    return found.problems


def raise_if_invalid(path: Path) -> None:
    """DatasetError (exit 2, every problem listed, in the user's language) unless `path` is usable.

    For `check`/`grade` before any notebook runs: a broken dataset (holdout split included)
    would otherwise surface mid-grading, after minutes of work.
    """
    problems = check_dataset(path)
    if problems:
        raise DatasetError.of(Msg("data.invalid", {"path": str(path), "count": len(problems)}),
                              [p.msg for p in problems])


# --- files the lab's notebook opens by name -----------------------------------------------

# The course's handout notebook (what students start from, before this grader's template)
# plays `Audio(f"{train_dir}/002.wav")`; the reference plays the first listed clip instead.
HANDOUT_NAMED_FILES: tuple[tuple[str, str], ...] = (("train", "002.wav"),)
_WAV_LITERAL = re.compile(r"""["']([^"'\n]*?\.wav)["']""")
_SPLIT_WORD = re.compile(r"\b(train|test|holdout)")


def named_files_in(notebook: Path) -> list[tuple[str, str]]:
    """(split, filename) for every clip a notebook's code names literally, e.g. f"{train_dir}/002.wav"."""
    import json

    try:
        cells = json.loads(Path(notebook).read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError, AttributeError):
        return []
    named: list[tuple[str, str]] = []
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        for line in (source if isinstance(source, str) else "".join(source)).splitlines():
            for literal in _WAV_LITERAL.findall(line.split("#", 1)[0]):
                name = literal.replace("\\", "/").rsplit("/", 1)[-1]
                split = _SPLIT_WORD.search(literal) or _SPLIT_WORD.search(line)
                if split and name and "{" not in name:
                    named.append((split.group(1), name))
    return named


def lab_named_files() -> list[tuple[str, str]]:
    """The clips the lab's own notebooks open by name: the reference's (when present) and the handout's."""
    from grader.paths import REFERENCE_NOTEBOOK, TEMPLATE_NOTEBOOK

    named = [*HANDOUT_NAMED_FILES]
    for notebook in (REFERENCE_NOTEBOOK, TEMPLATE_NOTEBOOK):
        named += [n for n in named_files_in(notebook) if n not in named]
    return named


def named_file_warnings(root: Path) -> list[Problem]:
    """A warning (never a failure) per clip the lab's notebook opens by name that the dataset lacks:
    students' notebooks stop at that cell, although grading itself does not need the file."""
    return [Problem("named_file_missing", f"{split}/{name}",
                    Msg("data.named_file_missing", {"file": f"{split}/{name}"}))
            for split, name in lab_named_files() if not (split_dir(root, split) / name).is_file()]


def check_dataset(path: Path) -> list[Problem]:
    """Every problem of the dataset folder or data.zip at `path`; empty when it is usable."""
    return _inspect(Path(path), DEFAULT_LANGUAGE).problems


def _summary(path: Path, found: _Inspection) -> Msg:
    def split_counts(split: str) -> tuple[int, str]:
        per_class = found.counts.get(split, {})
        return sum(per_class.values()), ", ".join(f"{cls} {n}" for cls, n in per_class.items())

    train, train_classes = split_counts("train")
    test, test_classes = split_counts("test")
    holdout, holdout_classes = split_counts(HOLDOUT)
    holdout_msg = (Msg("data.ok_holdout", {"holdout": holdout, "holdout_classes": holdout_classes})
                   if HOLDOUT in found.counts else Msg("data.ok_no_holdout"))
    return Msg(
        "data.ok",
        {
            "path": str(path),
            "train": train,
            "train_classes": train_classes,
            "test": test,
            "test_classes": test_classes,
            "holdout": holdout_msg,
            "rates": "/".join(f"{r} Hz" for r in sorted(found.rates)),
            "min_s": min(found.seconds, default=0.0),
            "max_s": max(found.seconds, default=0.0),
        },
    )


def report_dataset(path: Path, lang: str) -> int:
    """`grader data check`: print a one-line summary (and a line per warning) and return 0,
    or raise DatasetError listing every problem."""
    found = _inspect(Path(path), lang)
    if found.problems:
        raise DatasetError.of(Msg("data.invalid", {"path": str(path), "count": len(found.problems)}),
                              [p.msg for p in found.problems])
    print(render(_summary(Path(path), found), lang))
    for warning in found.warnings:
        print(render(Msg("data.warning", {"message": warning.msg}), lang))
    return 0
