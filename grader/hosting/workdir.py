"""The kernel's work folder: a private copy of the notebook and the dataset, the TA's held-out split left out."""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from grader import untrusted_fs

WORK_FOLDER = "work"


def prepare_workdir(notebook_path: Path, data_dir: Path, parent: Path | None = None) -> Path:
    """A fresh private folder with a copy of the notebook and the dataset at data/.

    The folder is `grader-run-XXXX/work`: the kernel owns what is bound into its sandbox (its uid maps to the
    grader's, root on most TA machines) and can chmod it, so the folder it gets sits inside a 0700 one it never
    sees. Opening its own folder to everyone then exposes nothing: a set-uid root file planted there was
    runnable by any local user before (measured). Remove it with remove_workdir.
    """
    notebook_path, data_dir = Path(notebook_path), Path(data_dir)
    if parent is not None:
        Path(parent).mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="grader-run-", dir=parent))
    workdir = root / WORK_FOLDER
    workdir.mkdir(mode=0o700)
    shutil.copy2(notebook_path, workdir / notebook_path.name)
    # The TA's held-out split (grader/checks/heldout.py) never enters the kernel's folder.
    shutil.copytree(data_dir, workdir / "data", symlinks=False, ignore=_hide_holdout(data_dir))
    return workdir


def remove_workdir(workdir: Path) -> bool:
    """Remove a folder made by prepare_workdir, with its private parent (no recursion, no links followed)."""
    workdir = Path(workdir)
    private = workdir.name == WORK_FOLDER and workdir.parent.name.startswith("grader-run-")
    return untrusted_fs.remove_tree(workdir.parent if private else workdir)


def _hide_holdout(data_dir: Path) -> Callable[[str, list[str]], set[str]]:
    top = Path(data_dir).resolve()

    def ignore(folder: str, names: list[str]) -> set[str]:
        if Path(folder).resolve() != top:
            return set()
        return {n for n in names if n in ("holdout", "holdout.csv")}

    return ignore
