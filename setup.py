"""Build hook: bundle the course rubric into the wheel.

rubrics/ sits beside the package (the repository layout is fixed), so a plain
wheel would leave students' `grader check` without its default rubric. The
copy lands in grader/rubrics/ of the built package only; a source checkout
keeps reading rubrics/ itself (grader/paths.py). Everything else is in
pyproject.toml.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildPyWithRubrics(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "grader" / "rubrics"
        target.mkdir(parents=True, exist_ok=True)
        for rubric in sorted((ROOT / "rubrics").glob("*.toml")):
            if rubric.name.endswith(".calibration.toml"):
                continue  # a TA's calibration of the course's data is theirs, never the students'
            shutil.copyfile(rubric, target / rubric.name)


setup(cmdclass={"build_py": BuildPyWithRubrics})
