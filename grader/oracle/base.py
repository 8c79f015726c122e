"""The question every oracle answers, as a Protocol."""
from __future__ import annotations

from typing import Literal, Protocol

import numpy as np

from grader.lab_api import ModelSpec, Sizes
from grader.mistakes import Variant
from grader.oracle.probe_data import ProbeData

OracleKind = Literal["live", "golden"]


class Oracle(Protocol):
    @property
    def kind(self) -> OracleKind: ...

    def probe_data(self, spec: ModelSpec, sizes: Sizes, seed: int) -> ProbeData:
        """The weights and inputs the student's class is run on.

        live: drawn from `seed`; golden: the packaged case (the seed is ignored),
        and only at the sizes it was made for (ValueError otherwise).
        """
        ...

    def outputs(self, spec: ModelSpec, data: ProbeData, variant: Variant = Variant.CORRECT) -> dict[str, np.ndarray]:
        """Logits per forward call (ProbeData.calls), float64."""
        ...

    def grads(self, spec: ModelSpec, data: ProbeData, variant: Variant = Variant.CORRECT) -> dict[str, np.ndarray]:
        """d sum(logits * R) / d weight of the plain call, canonical layout, float64."""
        ...
