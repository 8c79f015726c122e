"""Where the project's own files live (in a source checkout)."""
from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent

REFERENCE_NOTEBOOK = PROJECT_ROOT / "reference" / "lab.ipynb"
TEMPLATE_NOTEBOOK = PROJECT_ROOT / "student_template" / "lab.ipynb"
DEFAULT_RUBRIC = PROJECT_ROOT / "rubrics" / "lab.toml"
