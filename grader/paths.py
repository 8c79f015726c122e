"""Where the project's own files live.

In a source checkout the reference, the template and the rubrics sit beside
the package. An installed wheel has none of reference/ or student_template/
(by design: it is what students install); it carries the default rubric inside
the package (bundled at build time, see setup.py) and golden vectors instead of
the reference.
"""
from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent

REFERENCE_DIR = PROJECT_ROOT / "reference"
REFERENCE_NOTEBOOK = REFERENCE_DIR / "lab.ipynb"
REFERENCE_FUNCTIONAL = REFERENCE_DIR / "functional.py"
TEMPLATE_DIR = PROJECT_ROOT / "student_template"
TEMPLATE_NOTEBOOK = TEMPLATE_DIR / "lab.ipynb"
GOLDEN_DIR = PACKAGE_DIR / "golden"

_SOURCE_RUBRIC = PROJECT_ROOT / "rubrics" / "lab.toml"
_BUNDLED_RUBRIC = PACKAGE_DIR / "rubrics" / "lab.toml"
# The checkout's rubric when there is one (TAs edit it there); else the copy built into the wheel.
DEFAULT_RUBRIC = _SOURCE_RUBRIC if _SOURCE_RUBRIC.is_file() else _BUNDLED_RUBRIC
