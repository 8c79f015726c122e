"""Find the submissions in what a TA hands us: a folder or an LMS export zip.

SUBMISSIONS may be
- a folder of notebooks (`2023001.ipynb`, ...): the id comes from each file's stem;
- a folder of per-student folders (`2023001/lab.ipynb`, ...): the id comes from the
  folder's name, and the notebook is looked for anywhere inside it;
- a .zip holding either of these, possibly inside one wrapper folder, as LMSs export them.

The id is taken from the name by a regular expression the TA can change
(`--id-pattern`): the named group `id` if there is one, else the first group,
else the whole match. Nothing here raises for a single odd entry: duplicate ids,
files that are not notebooks, unsafe zip members and names the pattern does not
match become `Problem`s, listed at the end of the run and kept in the store.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from grader.errors import BadInputError
from grader.messages import Msg, text
from grader.notebook import MAX_NOTEBOOK_BYTES

DEFAULT_ID_PATTERN = r"(?P<id>.+)"
NOTEBOOK_SUFFIX = ".ipynb"
# An LMS export of 1,000 notebooks with their plots is a few GB at most; more is a zip bomb.
MAX_ARCHIVE_BYTES = 8 * 1024**3
MAX_ARCHIVE_ENTRIES = 200_000
# What archivers and Jupyter add beside the work; never a submission, never worth a problem line.
_JUNK_DIRS = {"__MACOSX", ".ipynb_checkpoints", "__pycache__", ".git"}
_JUNK_FILES = {".DS_Store", "Thumbs.db", "desktop.ini"}
# The lab's notebook is named lab.ipynb in the template: a student folder holding several
# notebooks most likely means "my lab" plus scratch copies.
_PREFERRED_NAME = "lab.ipynb"


@dataclass(frozen=True)
class Submission:
    id: str
    file_label: str      # the path as the TA sees it, relative to SUBMISSIONS (zip member names for a zip)
    path: Path           # where the bytes are now (an extracted copy for a zip)
    sha256: str


@dataclass(frozen=True)
class Problem:
    """Something about the input the TA should know; never fatal. `kind` picks the message."""

    kind: str
    path: str
    submission_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def message(self, lang: str) -> str:
        return text(f"batch.problem_{self.kind}", lang, path=self.path, id=self.submission_id or "", **self.params)

    def to_msg(self) -> Msg:
        return Msg(f"batch.problem_{self.kind}", {"path": self.path, "id": self.submission_id or "", **self.params})


@dataclass
class Discovery:
    submissions: list[Submission]
    problems: list[Problem]


def compile_id_pattern(pattern: str | None, lang: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern or DEFAULT_ID_PATTERN)
    except re.error as exc:
        raise BadInputError(text("batch.bad_id_pattern", lang, pattern=pattern, error=str(exc))) from None


def extract_id(name: str, pattern: re.Pattern[str]) -> str | None:
    """The id in `name` by `pattern` (group `id`, else group 1, else the match); None if no usable match."""
    found = pattern.search(name)
    if found is None:
        return None
    if "id" in pattern.groupindex:
        value = found.group("id")
    elif pattern.groups:
        value = found.group(1)
    else:
        value = found.group(0)
    value = (value or "").strip()
    return value or None


def discover(path: Path, *, id_pattern: str | None = None, lang: str = "zh",
             workdir: Path | None = None) -> Discovery:
    """All submissions under `path` (folder or zip) with the problems met on the way.

    For a zip, the notebooks are extracted into `workdir` (which must exist and
    outlive the grading); a BadInputError when there is nothing to grade at all.
    """
    path = Path(path)
    pattern = compile_id_pattern(id_pattern, lang)
    problems: list[Problem] = []
    if path.is_dir():
        root = path
    elif path.exists() and zipfile.is_zipfile(path):
        if workdir is None:
            raise ValueError("a zip needs a workdir to extract into")
        root = workdir
        problems += extract_archive(path, root, lang)
    elif path.exists():
        raise BadInputError(text("batch.submissions_not_folder_or_zip", lang, path=str(path)))
    else:
        raise BadInputError(text("batch.submissions_missing", lang, path=str(path)))
    submissions = _collect(_unwrap(root), pattern, problems)
    if not submissions:
        raise BadInputError(text("batch.no_submissions", lang, path=str(path)))
    return Discovery(submissions, problems)


# -- folders -------------------------------------------------------------------------------------


def _is_junk(p: Path) -> bool:
    return p.name in _JUNK_FILES or p.name in _JUNK_DIRS or p.name.startswith(".")


def _entries(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if not _is_junk(p)), key=lambda p: p.name)


def _unwrap(root: Path) -> Path:
    """Descend through lone wrapper folders (`export/assignment1/...`) that hold no notebook themselves."""
    current = root
    for _ in range(8):
        entries = _entries(current)
        if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
            inner = _entries(entries[0])
            # One folder holding notebooks directly is a per-student folder of a class of one,
            # or the wrapper of a flat export: a flat export has notebooks, a student folder has one.
            if len([p for p in inner if p.suffix.lower() == NOTEBOOK_SUFFIX]) == 1 and len(inner) == 1:
                return current
            current = entries[0]
            continue
        return current
    return current


def _collect(root: Path, pattern: re.Pattern[str], problems: list[Problem]) -> list[Submission]:
    candidates: dict[str, list[tuple[Path, str]]] = {}
    for entry in _entries(root):
        label = entry.relative_to(root).as_posix()
        if entry.is_symlink():
            problems.append(Problem("symlink", label))
            continue
        if entry.is_dir():
            chosen = _student_notebook(entry, root, problems)
            name = entry.name
        elif entry.suffix.lower() == NOTEBOOK_SUFFIX:
            chosen, name = entry, entry.name[: -len(NOTEBOOK_SUFFIX)]
        else:
            problems.append(Problem("not_a_notebook", label))
            continue
        if chosen is None:
            continue
        sid = extract_id(name, pattern)
        if sid is None:
            problems.append(Problem("id_no_match", label, params={"pattern": pattern.pattern}))
            continue
        candidates.setdefault(sid, []).append((chosen, chosen.relative_to(root).as_posix()))
    submissions = []
    for sid in sorted(candidates):
        found = sorted(candidates[sid], key=lambda c: (-c[0].stat().st_mtime, c[1]))
        kept, kept_label = found[0]
        for _, other in found[1:]:
            problems.append(Problem("duplicate_id", other, sid, {"kept": kept_label}))
        submissions.append(Submission(sid, kept_label, kept, _sha256(kept)))
    return submissions


def _student_notebook(folder: Path, root: Path, problems: list[Problem]) -> Path | None:
    """The one notebook in a student's folder (searched recursively), by a stated rule when there are several."""
    notebooks: list[Path] = []
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in _JUNK_DIRS and not d.startswith("."))
        for name in sorted(files):
            p = Path(current) / name
            if name in _JUNK_FILES or name.startswith("."):
                continue
            label = p.relative_to(root).as_posix()
            if p.is_symlink():
                problems.append(Problem("symlink", label))
            elif p.suffix.lower() == NOTEBOOK_SUFFIX:
                notebooks.append(p)
            else:
                problems.append(Problem("not_a_notebook", label))
    label = folder.relative_to(root).as_posix()
    if not notebooks:
        problems.append(Problem("no_notebook", label))
        return None
    if len(notebooks) == 1:
        return notebooks[0]
    chosen = _pick(notebooks)
    problems.append(Problem("several_notebooks", label, params={
        "chosen": chosen.relative_to(root).as_posix(), "count": len(notebooks)}))
    return chosen


def _pick(notebooks: list[Path]) -> Path:
    """The rule for a folder with several notebooks: one named lab.ipynb, else the newest, else by name."""
    named = [p for p in notebooks if p.name.lower() == _PREFERRED_NAME]
    pool = named or notebooks
    return sorted(pool, key=lambda p: (-p.stat().st_mtime, p.as_posix()))[0]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- zips ----------------------------------------------------------------------------------------


def member_name(info: zipfile.ZipInfo) -> str:
    """The member's real name. Windows archivers write Chinese names in GBK without the UTF-8 flag,
    which zipfile then reads as cp437; undo that when it gives valid GBK."""
    name = info.filename
    if info.flag_bits & 0x800:
        return name
    try:
        raw = name.encode("cp437")
    except UnicodeEncodeError:
        return name
    for encoding in ("utf-8", "gbk"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return name


def safe_relative(name: str) -> PurePosixPath | None:
    """The member's relative path, or None when it is absolute, has a drive, or climbs out ('..')."""
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or re.match(r"^[A-Za-z]:", normalised):
        return None
    parts = [p for p in PurePosixPath(normalised).parts if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        return None
    return PurePosixPath(*parts)


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


def extract_archive(zip_path: Path, target: Path, lang: str) -> list[Problem]:
    """Extract the notebooks of an LMS export into `target`; everything else is only listed.

    Only .ipynb members are written: the rest is reported, never unpacked, so a
    student's stray data.zip or a symlink costs nothing and reaches nothing.
    The whole archive is refused when it declares an absurd size or entry count.
    """
    problems: list[Problem] = []
    try:
        with zipfile.ZipFile(zip_path) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_ARCHIVE_ENTRIES:
                raise BadInputError(text("batch.zip_too_many_entries", lang, path=str(zip_path),
                                         count=len(infos), limit=MAX_ARCHIVE_ENTRIES))
            declared = sum(i.file_size for i in infos)
            if declared > MAX_ARCHIVE_BYTES:
                raise BadInputError(text("batch.zip_too_large", lang, path=str(zip_path),
                                         size_mb=declared // 2**20, limit_mb=MAX_ARCHIVE_BYTES // 2**20))
            for info in infos:
                problem = _extract_member(zf, info, target)
                if problem is not None:
                    problems.append(problem)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise BadInputError(text("batch.zip_unreadable", lang, path=str(zip_path),
                                 reason=str(exc) or type(exc).__name__)) from None
    return problems


def _extract_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> Problem | None:
    name = member_name(info)
    if info.is_dir():
        return None
    rel = safe_relative(name)
    if rel is None:
        return Problem("zip_unsafe_name", name)
    if any(p in _JUNK_DIRS for p in rel.parts[:-1]) or rel.name in _JUNK_FILES or rel.name.startswith("."):
        return None
    label = rel.as_posix()
    if _is_symlink(info):
        return Problem("symlink", label)
    if rel.suffix.lower() != NOTEBOOK_SUFFIX:
        return Problem("not_a_notebook", label)
    if info.flag_bits & 0x1:
        return Problem("zip_encrypted", label)
    if info.file_size > MAX_NOTEBOOK_BYTES:
        return Problem("too_large", label, params={"size_mb": info.file_size // 2**20,
                                                   "limit_mb": MAX_NOTEBOOK_BYTES // 2**20})
    dest = target.joinpath(*rel.parts)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        # zipfile stops at the declared size, so the cap above also bounds a lying header.
        with zf.open(info) as src, dest.open("wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
    except (zipfile.BadZipFile, NotImplementedError, EOFError, RuntimeError) as exc:
        dest.unlink(missing_ok=True)
        return Problem("zip_member_unreadable", label, params={"reason": str(exc) or type(exc).__name__})
    # Keep the member's own date: "the newest notebook" picks by it.
    try:
        stamp = time.mktime((*info.date_time, 0, 0, -1))
        os.utime(dest, (stamp, stamp))
    except (OverflowError, ValueError, OSError):
        pass
    return None
