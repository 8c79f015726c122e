"""The live reference: reference/functional.py and reference/lab.ipynb's classes.

Both are trusted code from the course's source checkout, loaded by path, so
executing them in the grader's process is fine (student code never comes
through here). They are not part of the `grader` package: an installed student
wheel has no live reference and says so (BadInputError, exit 2) instead of
grading against nothing.

- LiveOracle: the equations in float64, the answers of TA grading;
- load_reference_classes: the notebook's own CustomRNN and CustomLSTM, which the
  equivalence tests and `grader golden --check` hold the equations against.
"""
from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from grader.errors import BadInputError, InternalError
from grader.lab_api import CLASS_NAMES, LSTM, RNN, ModelSpec, Sizes
from grader.mistakes import Variant
from grader.notebook import find_class_sources, read_notebook
from grader.oracle.base import OracleKind
from grader.oracle.probe_data import ProbeData, draw_data
from grader.paths import REFERENCE_FUNCTIONAL, REFERENCE_NOTEBOOK

_MODULE_NAME = "grader_reference_functional"
_PRELUDE = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"


class ReferenceUnavailableError(BadInputError):
    """This installation has no reference solution (a student wheel)."""


def require_reference(path: Path) -> None:
    """ReferenceUnavailableError, saying what full grading needs, when `path` (a reference file) is missing."""
    if not path.is_file():
        raise ReferenceUnavailableError(
            f"the live reference is not installed here ({path} is missing). Full grading needs the course's "
            "grader repository; this installation can only self-check against golden vectors (`grader check`). "
            f"/ 此安装没有参考答案（缺少 {path}）：完整评分需要课程的 grader 仓库；这里只能用 `grader check` 自查。"
        )


@cache
def load_functional(path: Path = REFERENCE_FUNCTIONAL) -> ModuleType:
    """reference/functional.py as a module; ReferenceUnavailableError without a source checkout."""
    require_reference(path)
    spec = importlib.util.spec_from_file_location(_MODULE_NAME, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE_NAME] = module  # dataclasses and enums look their module up by name
    spec.loader.exec_module(module)
    return module


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
    require_reference(REFERENCE_NOTEBOOK)
    classes = load_classes(REFERENCE_NOTEBOOK)
    return classes[RNN.class_name], classes[LSTM.class_name]


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


@dataclass(frozen=True)
class LiveOracle:
    fn: ModuleType
    kind: OracleKind = "live"

    @classmethod
    def load(cls) -> LiveOracle:
        return cls(load_functional())

    def probe_data(self, spec: ModelSpec, sizes: Sizes, seed: int) -> ProbeData:
        return draw_data(spec, sizes, seed)

    def _forward(self, spec: ModelSpec, data: ProbeData, call: str,
                 variant: Variant) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
        x = _t(data.x)
        if spec.takes_hidden_state:
            h0 = _t(data.h0) if (call == "h0" and data.h0 is not None) else None
            return lambda w: self.fn.rnn_forward(w, x, h0, variant)
        return lambda w: self.fn.lstm_forward(w, x, variant)

    def outputs(self, spec: ModelSpec, data: ProbeData, variant: Variant = Variant.CORRECT) -> dict[str, np.ndarray]:
        weights = {k: _t(v) for k, v in data.weights.items()}
        with torch.no_grad():
            return {call: self._forward(spec, data, call, variant)(weights).numpy() for call in data.calls()}

    def grads(self, spec: ModelSpec, data: ProbeData, variant: Variant = Variant.CORRECT) -> dict[str, np.ndarray]:
        weights = {k: _t(v) for k, v in data.weights.items()}
        _, g = self.fn.gradients(self._forward(spec, data, "plain", variant), weights, _t(data.r))
        return {k: v.numpy() for k, v in g.items()}
