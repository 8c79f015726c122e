"""The live reference: the solution classes, loaded from reference/lab.ipynb.

The notebook is the single source of truth; nothing here restates it. The
reference is trusted code, so executing it in the grader's process is fine
(student code never comes through here).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from grader.errors import InternalError
from grader.notebook import find_class_sources, read_notebook
from grader.paths import REFERENCE_NOTEBOOK

CLASS_NAMES = ("CustomRNN", "CustomLSTM")
_PRELUDE = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"


def load_classes(notebook: Path, names: tuple[str, ...] = CLASS_NAMES) -> dict[str, type]:
    """Execute the named class definitions of a TRUSTED notebook and return the classes."""
    sources = find_class_sources(read_notebook(notebook), list(names))
    missing = [n for n in names if n not in sources]
    if missing:
        raise InternalError(f"{notebook}: no definition of {', '.join(missing)}")
    namespace: dict[str, object] = {"__name__": "grader_reference"}
    exec(compile(_PRELUDE + "\n\n".join(sources[n] for n in names), str(notebook), "exec"), namespace)
    return {n: namespace[n] for n in names}  # type: ignore[misc]


@lru_cache(maxsize=1)
def load_reference_classes() -> tuple[type, type]:
    """(CustomRNN, CustomLSTM) of reference/lab.ipynb."""
    if not REFERENCE_NOTEBOOK.is_file():
        raise InternalError(f"the reference notebook is not here: {REFERENCE_NOTEBOOK}")
    classes = load_classes(REFERENCE_NOTEBOOK)
    return classes["CustomRNN"], classes["CustomLSTM"]
