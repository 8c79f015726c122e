"""The lab's dataset layout, and opening a folder or a data.zip as such a folder.

Layout (what the lab's notebook reads, relative to its `data/` folder):
    train.csv, test.csv   columns `filename,class`; class one of CLASSES
    train/*.wav, test/*.wav

A zip is extracted to a temporary folder. Archives come from students and
course mirrors, so names that would escape that folder (zip-slip), absolute
names, encrypted entries and archives declaring an absurd uncompressed size
are refused before a single byte is written.
"""
from __future__ import annotations

import contextlib
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from grader.errors import DatasetError
from grader.messages import DEFAULT_LANGUAGE, Msg, render

CLASSES: tuple[str, ...] = ("cat", "dog", "bird")
LABELS: dict[str, int] = {"cat": 0, "dog": 1, "bird": 2}
SPLITS: tuple[str, ...] = ("train", "test")
CSV_COLUMNS: tuple[str, ...] = ("filename", "class")

# The real data.zip is a few hundred MB; 4 GiB leaves room and still stops a zip bomb.
MAX_UNCOMPRESSED_BYTES = 4 * 1024**3
MAX_ENTRIES = 200_000
# Folders an archiver adds that are never part of the dataset.
_JUNK_PREFIXES = ("__MACOSX/",)


def csv_path(root: Path, split: str) -> Path:
    return root / f"{split}.csv"


def split_dir(root: Path, split: str) -> Path:
    return root / split


class ArchiveError(DatasetError):
    """A zip that cannot be opened safely; `msg` re-renders it in another language."""

    def __init__(self, msg: Msg, lang: str = DEFAULT_LANGUAGE) -> None:
        super().__init__(render(msg, lang))
        self.msg = msg
        self.reason: Msg = msg  # the same message, typed as always present


def _dataset_root(folder: Path) -> Path:
    """`folder` itself, or its `data/` subfolder when only that holds the csv files.

    The lab unzips data.zip next to the notebook and reads `data/...`, so both
    `data.zip:train.csv` and `data.zip:data/train.csv` are in use.
    """
    def has_csv(p: Path) -> bool:
        return any(csv_path(p, s).is_file() for s in SPLITS)

    if not has_csv(folder) and has_csv(folder / "data"):
        return folder / "data"
    return folder


def _safe_member_path(name: str) -> PurePosixPath | None:
    """The member's relative path, or None when it is absolute or climbs out ('..')."""
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or (len(normalised) > 1 and normalised[1] == ":"):
        return None
    parts = PurePosixPath(normalised).parts
    if any(part == ".." for part in parts):
        return None
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _vet_archive(zf: zipfile.ZipFile, zip_path: Path) -> list[zipfile.ZipInfo]:
    """The members to extract; raises ArchiveError for anything unsafe."""
    infos = [i for i in zf.infolist() if not i.filename.startswith(_JUNK_PREFIXES)]
    if len(infos) > MAX_ENTRIES:
        raise ArchiveError(Msg("data.zip_too_many_entries",
                               {"file": str(zip_path), "count": len(infos), "limit": MAX_ENTRIES}))
    total = 0
    for info in infos:
        if _safe_member_path(info.filename) is None:
            raise ArchiveError(Msg("data.zip_unsafe_name", {"file": str(zip_path), "name": info.filename}))
        if info.flag_bits & 0x1:
            raise ArchiveError(Msg("data.zip_encrypted", {"file": str(zip_path), "name": info.filename}))
        total += info.file_size
    if total > MAX_UNCOMPRESSED_BYTES:
        raise ArchiveError(
            Msg("data.zip_too_large", {"file": str(zip_path), "size_mb": total // 2**20,
                                       "limit_mb": MAX_UNCOMPRESSED_BYTES // 2**20})
        )
    return infos


def _extract(zip_path: Path, target: Path) -> None:
    try:
        with zipfile.ZipFile(zip_path) as zf:
            for info in _vet_archive(zf, zip_path):
                rel = _safe_member_path(info.filename)
                assert rel is not None  # vetted above
                dest = target.joinpath(*rel.parts)
                if info.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                # zipfile stops reading at the declared size, so the size check above
                # also bounds what a lying header can make us write.
                with zf.open(info) as src, dest.open("wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError) as exc:
        # NotImplementedError: a compression method zipfile lacks; EOFError: a truncated member.
        reason = str(exc) or type(exc).__name__
        raise ArchiveError(Msg("data.zip_unreadable", {"file": str(zip_path), "reason": reason})) from exc


@contextlib.contextmanager
def open_dataset(path: Path, *, lang: str = DEFAULT_LANGUAGE) -> Iterator[Path]:
    """Yield a folder in the lab's layout for a dataset folder or a data.zip.

    A zip is extracted to a temporary folder that is removed on exit. The
    folder yielded is not validated here: see grader.data.validate.
    """
    path = Path(path)
    if path.is_dir():
        yield _dataset_root(path)
        return
    if not path.exists():
        raise ArchiveError(Msg("data.path_missing", {"file": str(path)}), lang)
    if not zipfile.is_zipfile(path):
        raise ArchiveError(Msg("data.not_a_dataset", {"file": str(path)}), lang)
    with tempfile.TemporaryDirectory(prefix="grader-data-") as tmp:
        try:
            _extract(path, Path(tmp))
        except ArchiveError as exc:
            raise ArchiveError(exc.reason, lang) from exc.__cause__
        yield _dataset_root(Path(tmp))
