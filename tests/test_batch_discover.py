"""Finding submissions: layouts, ids, problems, and LMS zips (fast: no kernels)."""
from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest

from grader.batch import discover as disc
from grader.batch.discover import discover, extract_id, safe_relative
from grader.errors import BadInputError

NB = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def write(path: Path, data: bytes = NB, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def kinds(found) -> list[tuple[str, str]]:
    return sorted((p.kind, p.path) for p in found.problems)


def test_flat_folder_ids_are_file_stems(tmp_path):
    write(tmp_path / "2023001.ipynb")
    write(tmp_path / "2023002.ipynb", NB + b" ")
    write(tmp_path / "notes.txt", b"x")
    write(tmp_path / ".DS_Store", b"x")
    write(tmp_path / ".ipynb_checkpoints" / "2023001-checkpoint.ipynb")
    found = discover(tmp_path, lang="en")
    assert [s.id for s in found.submissions] == ["2023001", "2023002"]
    assert [s.file_label for s in found.submissions] == ["2023001.ipynb", "2023002.ipynb"]
    assert found.submissions[0].sha256 != found.submissions[1].sha256
    assert kinds(found) == [("not_a_notebook", "notes.txt")]


def test_per_student_folders_nested_and_several_notebooks(tmp_path):
    write(tmp_path / "alice" / "lab.ipynb")
    write(tmp_path / "bob" / "work" / "deep" / "my_lab.ipynb")
    write(tmp_path / "carol" / "scratch.ipynb", mtime=2_000_000_000)
    write(tmp_path / "carol" / "lab.ipynb", mtime=1_000_000_000)      # older, but named like the template
    write(tmp_path / "dave" / "draft.ipynb", mtime=1_000_000_000)
    write(tmp_path / "dave" / "final.ipynb", mtime=2_000_000_000)     # newest wins when no lab.ipynb
    write(tmp_path / "erin" / "report.pdf", b"%PDF")
    found = discover(tmp_path, lang="en")
    chosen = {s.id: s.file_label for s in found.submissions}
    assert chosen == {"alice": "alice/lab.ipynb", "bob": "bob/work/deep/my_lab.ipynb",
                      "carol": "carol/lab.ipynb", "dave": "dave/final.ipynb"}
    assert kinds(found) == [("no_notebook", "erin"), ("not_a_notebook", "erin/report.pdf"),
                            ("several_notebooks", "carol"), ("several_notebooks", "dave")]
    several = next(p for p in found.problems if p.path == "dave")
    assert "dave/final.ipynb" in several.message("en") and "dave/final.ipynb" in several.message("zh")


def test_id_pattern_named_group_numbered_group_and_no_match(tmp_path):
    write(tmp_path / "2023001_Zhang San_assignsubmission_file_" / "lab.ipynb")
    write(tmp_path / "2023002_Li Si_assignsubmission_file_" / "lab.ipynb")
    write(tmp_path / "stray.ipynb")
    found = discover(tmp_path, id_pattern=r"^(?P<id>[^_]+)_", lang="en")
    assert [s.id for s in found.submissions] == ["2023001", "2023002"]
    assert kinds(found) == [("id_no_match", "stray.ipynb")]
    assert extract_id("hw-42-final", disc.compile_id_pattern(r"hw-(\d+)", "en")) == "42"
    assert extract_id("abc", disc.compile_id_pattern(r"[a-z]", "en")) == "a"
    assert extract_id("abc", disc.compile_id_pattern(None, "en")) == "abc"


def test_duplicate_ids_keep_the_newest_and_report_the_others(tmp_path):
    write(tmp_path / "2023001_first.ipynb", NB, mtime=1_000_000_000)
    write(tmp_path / "2023001_second.ipynb", NB + b"\n", mtime=2_000_000_000)
    found = discover(tmp_path, id_pattern=r"^(\d+)_", lang="en")
    assert [(s.id, s.file_label) for s in found.submissions] == [("2023001", "2023001_second.ipynb")]
    (problem,) = found.problems
    assert (problem.kind, problem.path, problem.submission_id) == ("duplicate_id", "2023001_first.ipynb", "2023001")
    assert "2023001_second.ipynb" in problem.message("zh")


def test_bad_inputs_are_bad_input_errors(tmp_path):
    with pytest.raises(BadInputError, match="no such"):
        discover(tmp_path / "missing", lang="en")
    with pytest.raises(BadInputError, match="no notebooks"):
        discover(tmp_path, lang="en")
    write(tmp_path / "a.ipynb")
    with pytest.raises(BadInputError, match="regular expression"):
        discover(tmp_path, id_pattern="(", lang="en")
    write(tmp_path / "plain.txt", b"x")
    with pytest.raises(BadInputError, match="folder of submissions"):
        discover(tmp_path / "plain.txt", lang="en")


def test_symlinks_are_not_followed(tmp_path):
    outside = write(tmp_path / "outside" / "secret.ipynb")
    subs = tmp_path / "subs"
    write(subs / "real.ipynb")
    (subs / "link.ipynb").symlink_to(outside)
    (subs / "linkdir").symlink_to(outside.parent, target_is_directory=True)
    found = discover(subs, lang="en")
    assert [s.id for s in found.submissions] == ["real"]
    assert kinds(found) == [("symlink", "link.ipynb"), ("symlink", "linkdir")]


# -- zips ---------------------------------------------------------------------------------------------


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_lms_zip_with_wrapper_folder_junk_and_unsafe_names(tmp_path):
    archive = make_zip(tmp_path / "export.zip", {
        "Lab 3 export/2023001_Zhang_assignsubmission_file_/lab.ipynb": NB,
        "Lab 3 export/2023001_Zhang_assignsubmission_file_/data.zip": b"PK",
        "Lab 3 export/2023002_Li_assignsubmission_file_/lab.ipynb": NB + b" ",
        "__MACOSX/Lab 3 export/._lab.ipynb": b"junk",
        "../evil.ipynb": NB,
        "/abs/evil.ipynb": NB,
        "C:/evil.ipynb": NB,
    })
    work = tmp_path / "work"
    work.mkdir()
    found = discover(archive, id_pattern=r"^(?P<id>[^_]+)_", lang="en", workdir=work)
    assert [s.id for s in found.submissions] == ["2023001", "2023002"]
    assert found.submissions[0].file_label == "2023001_Zhang_assignsubmission_file_/lab.ipynb"
    assert found.submissions[0].path.read_bytes() == NB
    assert kinds(found) == [
        ("not_a_notebook", "Lab 3 export/2023001_Zhang_assignsubmission_file_/data.zip"),
        ("zip_unsafe_name", "../evil.ipynb"), ("zip_unsafe_name", "/abs/evil.ipynb"), ("zip_unsafe_name", "C:/evil.ipynb"),
    ]
    # only notebooks are written, and nothing outside the work folder
    written = sorted(p.relative_to(work).as_posix() for p in work.rglob("*") if p.is_file())
    assert written == ["Lab 3 export/2023001_Zhang_assignsubmission_file_/lab.ipynb",
                       "Lab 3 export/2023002_Li_assignsubmission_file_/lab.ipynb"]
    assert not (tmp_path / "evil.ipynb").exists()


def test_zip_symlink_member_is_reported_not_extracted(tmp_path):
    archive = tmp_path / "links.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.ipynb", NB)
        link = zipfile.ZipInfo("b.ipynb")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    work = tmp_path / "work"
    work.mkdir()
    found = discover(archive, lang="en", workdir=work)
    assert [s.id for s in found.submissions] == ["a"]
    assert kinds(found) == [("symlink", "b.ipynb")]
    assert not (work / "b.ipynb").exists()


def test_zip_gbk_names_from_windows_archivers_are_decoded(tmp_path):
    archive = tmp_path / "gbk.zip"
    gbk = "张三.ipynb".encode("gbk")
    placeholder = b"X" * (len(gbk) - len(b".ipynb")) + b".ipynb"
    make_zip(archive, {placeholder.decode(): NB})
    # raw GBK bytes in the headers, without the UTF-8 flag: what Windows archivers write
    archive.write_bytes(archive.read_bytes().replace(placeholder, gbk))
    with zipfile.ZipFile(archive) as zf:
        assert not zf.infolist()[0].flag_bits & 0x800
    work = tmp_path / "work"
    work.mkdir()
    found = discover(archive, lang="en", workdir=work)
    assert [s.id for s in found.submissions] == ["张三"]


def test_zip_caps(tmp_path, monkeypatch):
    archive = make_zip(tmp_path / "big.zip", {"a.ipynb": NB, "b.ipynb": NB * 100})
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setattr(disc, "MAX_NOTEBOOK_BYTES", len(NB) * 10)
    found = discover(archive, lang="en", workdir=work)
    assert [s.id for s in found.submissions] == ["a"]
    assert kinds(found) == [("too_large", "b.ipynb")]
    monkeypatch.setattr(disc, "MAX_ARCHIVE_BYTES", len(NB) * 50)
    with pytest.raises(BadInputError, match="unpacks to"):
        discover(archive, lang="en", workdir=work)
    monkeypatch.setattr(disc, "MAX_ARCHIVE_ENTRIES", 1)
    with pytest.raises(BadInputError, match="entries"):
        discover(archive, lang="en", workdir=work)
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04" + b"\0" * 40)
    with pytest.raises(BadInputError):
        discover(tmp_path / "broken.zip", lang="en", workdir=work)


@pytest.mark.parametrize("name, expected", [
    ("a/b.ipynb", "a/b.ipynb"), ("./a//b.ipynb", "a/b.ipynb"), ("a\\b.ipynb", "a/b.ipynb"),
    ("../a.ipynb", None), ("a/../../b.ipynb", None), ("/etc/x", None), ("c:\\x.ipynb", None), ("", None),
])
def test_safe_relative(name, expected):
    got = safe_relative(name)
    assert (got.as_posix() if got is not None else None) == expected
