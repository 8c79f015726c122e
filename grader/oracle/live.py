"""The live oracle: reference/functional.py, run in float64 in the grader's process.

The equations are trusted code from the course's source checkout, loaded by
path: they are not part of the `grader` package, so an installed student wheel
has no live oracle and says so (BadInputError, exit 2) instead of grading
against nothing.
"""
from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Callable

import numpy as np
import torch

from grader.errors import BadInputError
from grader.lab_api import ModelSpec, Sizes
from grader.mistakes import Variant
from grader.oracle.base import OracleKind
from grader.oracle.probe_data import ProbeData, draw_data
from grader.paths import REFERENCE_FUNCTIONAL

_MODULE_NAME = "grader_reference_functional"


class ReferenceUnavailableError(BadInputError):
    """This installation has no reference solution (a student wheel)."""


@lru_cache(maxsize=None)
def load_functional(path: Path = REFERENCE_FUNCTIONAL) -> ModuleType:
    """reference/functional.py as a module; ReferenceUnavailableError without a source checkout."""
    if not path.is_file():
        raise ReferenceUnavailableError(
            f"the live reference is not installed here ({path} is missing). Full grading needs the course's "
            "grader repository; this installation can only self-check against golden vectors (`grader check`). "
            f"/ 此安装没有参考答案（缺少 {path}）：完整评分需要课程的 grader 仓库；这里只能用 `grader check` 自查。"
        )
    spec = importlib.util.spec_from_file_location(_MODULE_NAME, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE_NAME] = module  # dataclasses and enums look their module up by name
    spec.loader.exec_module(module)
    return module


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
