"""The golden oracle: the reference's answers, precomputed and packaged.

`grader golden` writes two files into grader/golden/:
- lab.npz: float64 arrays, named `<prefix>/data/...` (the probe case: canonical
  weights, x, h0, R) and `<prefix>/<variant>/out/<call>`,
  `<prefix>/<variant>/grad/<param>` for the reference (`correct`) and each
  known mistake, so a failing self-check still names the likely bug;
- lab.json: the manifest (format, sizes, seeds, variants, the sha256 of the
  npz and of the reference sources it was made from).
Arrays load with allow_pickle=False: the file is data, never code.
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from grader.errors import InternalError
from grader.lab_api import ModelSpec, Sizes
from grader.mistakes import Variant
from grader.oracle.base import OracleKind
from grader.oracle.probe_data import ProbeData
from grader.paths import GOLDEN_DIR

FORMAT = 1
VECTORS_NAME = "lab.npz"
MANIFEST_NAME = "lab.json"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so regenerating unchanged vectors rewrites identical bytes


def write_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An .npz that np.load reads, byte-for-byte reproducible (numpy's savez stamps the time)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buffer.getvalue())


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class GoldenVectors:
    manifest: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def sizes(self) -> Sizes:
        return Sizes(*self.manifest["sizes"])

    def case(self, spec: ModelSpec) -> ProbeData:
        p = f"{spec.prefix}/data"
        return ProbeData(
            seed=int(self.manifest["seeds"][spec.prefix]),
            weights={path: self.arrays[f"{p}/w/{path}"] for path in spec.param_paths},
            x=self.arrays[f"{p}/x"],
            h0=self.arrays.get(f"{p}/h0"),
            r=self.arrays[f"{p}/r"],
        )

    def variants(self, spec: ModelSpec) -> list[str]:
        return list(self.manifest["variants"][spec.prefix])


def read_vectors(folder: Path = GOLDEN_DIR) -> GoldenVectors:
    """The packaged vectors; InternalError (a broken installation) when missing or inconsistent."""
    manifest_path, vectors_path = folder / MANIFEST_NAME, folder / VECTORS_NAME
    if not manifest_path.is_file() or not vectors_path.is_file():
        raise InternalError(f"the golden vectors are missing from {folder}: reinstall the grader "
                            "(TAs: run `grader golden` in the source checkout)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise InternalError(f"{manifest_path}: golden vector format {manifest.get('format')!r}, "
                            f"this grader reads {FORMAT}: reinstall the grader")
    if manifest.get("vectors_sha256") != sha256_of(vectors_path):
        raise InternalError(f"{vectors_path} does not match its manifest (a partial update?): "
                            "reinstall the grader (TAs: run `grader golden`)")
    with np.load(vectors_path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    return GoldenVectors(manifest, arrays)


@lru_cache(maxsize=1)
def _packaged() -> GoldenVectors:
    return read_vectors()


@dataclass(frozen=True)
class GoldenOracle:
    vectors: GoldenVectors
    kind: OracleKind = "golden"

    @classmethod
    def load(cls) -> GoldenOracle:
        return cls(_packaged())

    def probe_data(self, spec: ModelSpec, sizes: Sizes, seed: int) -> ProbeData:
        if sizes != self.vectors.sizes:
            raise ValueError(f"golden vectors exist for {self.vectors.sizes}, not {sizes}")
        return self.vectors.case(spec)

    def _lookup(self, spec: ModelSpec, data: ProbeData, variant: Variant, kind: str,
                names: list[str] | tuple[str, ...]) -> dict[str, np.ndarray]:
        if data.seed != self.vectors.case(spec).seed:
            raise ValueError("golden answers exist only for the packaged probe case")
        prefix = f"{spec.prefix}/{variant.value}/{kind}"
        return {name: self.vectors.arrays[f"{prefix}/{name}"] for name in names}

    def outputs(self, spec: ModelSpec, data: ProbeData, variant: Variant = Variant.CORRECT) -> dict[str, np.ndarray]:
        return self._lookup(spec, data, variant, "out", list(data.calls()))

    def grads(self, spec: ModelSpec, data: ProbeData, variant: Variant = Variant.CORRECT) -> dict[str, np.ndarray]:
        return self._lookup(spec, data, variant, "grad", spec.param_paths)

