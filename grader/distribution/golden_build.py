"""`grader golden [--check]`: make the golden vectors from the live reference, or prove they still match it.

Made in the course's source checkout (it needs reference/), shipped in the
wheel. `--check` recomputes every array from reference/functional.py and, for
the reference answers, also runs the reference notebook's own CustomRNN and
CustomLSTM classes, so the vectors are tied to the solution students are
graded against, not only to its equation form.
"""
from __future__ import annotations

import json
import operator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from grader import __version__
from grader.checks.diagnosis import variants_for
from grader.lab_api import CLASS_NAMES, LAB_SIZES, MODELS, ModelSpec
from grader.mistakes import Variant
from grader.oracle.golden import (
    FORMAT,
    MANIFEST_NAME,
    VECTORS_NAME,
    GoldenVectors,
    read_vectors,
    sha256_of,
    write_arrays,
)
from grader.oracle.live import LiveOracle
from grader.oracle.probe_data import BATCH, SEQ_LEN, ProbeData
from grader.paths import GOLDEN_DIR, REFERENCE_FUNCTIONAL, REFERENCE_NOTEBOOK

# Fixed, public seeds: golden vectors are for self-checks; TA grading draws fresh secret data.
SEEDS = {"rnn": 20260701, "lstm": 20260702}
# float64 on another machine (another BLAS, another summation order) may differ in the last bits.
RTOL, ATOL = 1e-10, 1e-12


def variants_of(spec: ModelSpec) -> tuple[Variant, ...]:
    """The reference first, then every mistake the diagnosis can name for this class."""
    return (Variant.CORRECT, *variants_for(spec))


def compute_arrays(oracle: LiveOracle) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for spec in MODELS:
        data = oracle.probe_data(spec, LAB_SIZES, SEEDS[spec.prefix])
        p = spec.prefix
        arrays.update({f"{p}/data/w/{k}": v for k, v in data.weights.items()})
        arrays[f"{p}/data/x"], arrays[f"{p}/data/r"] = data.x, data.r
        if data.h0 is not None:
            arrays[f"{p}/data/h0"] = data.h0
        for variant in variants_of(spec):
            v = variant.value
            arrays.update({f"{p}/{v}/out/{k}": a for k, a in oracle.outputs(spec, data, variant).items()})
            arrays.update({f"{p}/{v}/grad/{k}": a for k, a in oracle.grads(spec, data, variant).items()})
    return {k: np.asarray(a, dtype=np.float64) for k, a in arrays.items()}


def write_golden(out: Path = GOLDEN_DIR) -> Path:
    """Compute the vectors from the live reference and write lab.npz + lab.json into `out`."""
    oracle = LiveOracle.load()
    out.mkdir(parents=True, exist_ok=True)
    vectors_path = out / VECTORS_NAME
    write_arrays(vectors_path, compute_arrays(oracle))
    manifest = {
        "format": FORMAT,
        "made_by": f"grader golden (grader {__version__})",
        "sizes": list(LAB_SIZES.as_args()),
        "seq_len": SEQ_LEN,
        "batch": BATCH,
        "seeds": SEEDS,
        "variants": {s.prefix: [v.value for v in variants_of(s)] for s in MODELS},
        "reference_sha256": {"functional.py": sha256_of(REFERENCE_FUNCTIONAL),
                             "lab.ipynb": sha256_of(REFERENCE_NOTEBOOK)},
        "vectors_sha256": sha256_of(vectors_path),
    }
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return out


@dataclass
class GoldenCheck:
    """What `grader golden --check` found: an empty `problems` list means the vectors match."""

    compared: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _compare(name: str, found: np.ndarray | None, expected: np.ndarray, check: GoldenCheck) -> None:
    check.compared += 1
    if found is None:
        check.problems.append(f"{name}: missing from the golden vectors")
    elif found.shape != expected.shape:
        check.problems.append(f"{name}: shape {found.shape}, the reference gives {expected.shape}")
    elif not np.allclose(found, expected, rtol=RTOL, atol=ATOL):
        err = float(np.max(np.abs(found - expected)))
        check.problems.append(f"{name}: differs from the reference by up to {err:.3g}")


def check_golden(folder: Path = GOLDEN_DIR) -> GoldenCheck:
    """Recompute everything from the live reference and compare; also run the notebook's own classes."""
    vectors = read_vectors(folder)
    check = GoldenCheck()
    expected = compute_arrays(LiveOracle.load())
    for name in sorted(set(vectors.arrays) - set(expected)):
        check.problems.append(f"{name}: in the golden vectors but no longer produced by the reference")
    for name, array in expected.items():
        _compare(name, vectors.arrays.get(name), array, check)
    if vectors.manifest.get("sizes") != list(LAB_SIZES.as_args()):
        check.problems.append(f"sizes {vectors.manifest.get('sizes')} are not the lab's {list(LAB_SIZES.as_args())}")
    if check.ok:
        _check_against_notebook(vectors, check)
    return check


def _check_against_notebook(vectors: GoldenVectors, check: GoldenCheck) -> None:
    """The `correct` answers equal what reference/lab.ipynb's classes compute, forward and backward."""
    from grader.oracle.live import load_reference_classes

    classes = dict(zip(CLASS_NAMES, load_reference_classes()))
    previous = torch.get_default_dtype()
    # As the probe does: the lab's `torch.zeros(batch, hidden)` must come out float64 too.
    torch.set_default_dtype(torch.float64)
    try:
        for spec in MODELS:
            _run_notebook_class(classes[spec.class_name], spec, vectors, check)
    finally:
        torch.set_default_dtype(previous)


def _run_notebook_class(cls: type, spec: ModelSpec, vectors: GoldenVectors, check: GoldenCheck) -> None:
    data = vectors.case(spec)
    model = cls(*LAB_SIZES.as_args()).double()
    _load_canonical(model, spec, data)
    x = torch.from_numpy(data.x)
    outputs = {"plain": model(x)}
    if data.h0 is not None:
        outputs["h0"] = model(x, torch.from_numpy(data.h0))
    (outputs["plain"] * torch.from_numpy(data.r)).sum().backward()
    prefix = f"{spec.prefix}/{Variant.CORRECT.value}"
    for call, logits in outputs.items():
        _compare(f"{prefix}/out/{call} (reference notebook)", vectors.arrays.get(f"{prefix}/out/{call}"),
                 logits.detach().numpy(), check)
    for path in spec.param_paths:
        grad = operator.attrgetter(path)(model).grad
        _compare(f"{prefix}/grad/{path} (reference notebook)", vectors.arrays.get(f"{prefix}/grad/{path}"),
                 grad.numpy(), check)


def _load_canonical(model: torch.nn.Module, spec: ModelSpec, data: ProbeData) -> None:
    """The reference stores every parameter in the canonical layout (grader.lab_api)."""
    with torch.no_grad():
        for path in spec.param_paths:
            param = operator.attrgetter(path)(model)
            param.copy_(torch.from_numpy(data.weights[path]).reshape(param.shape))


def check_report(folder: Path = GOLDEN_DIR) -> tuple[bool, str]:
    check = check_golden(folder)
    if check.ok:
        return True, f"golden vectors match the reference ({check.compared} arrays compared): {folder}"
    lines = [f"golden vectors are stale ({len(check.problems)} problems); run `grader golden`:"]
    lines += [f"  {p}" for p in check.problems[:40]]
    return False, "\n".join(lines)

