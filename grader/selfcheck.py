"""`selfcheck.check(CustomLSTM)` in the student's own notebook: the model checks, right after the class.

    from grader import selfcheck
    selfcheck.check(CustomRNN)      # or CustomLSTM; lang="en" for English

It runs the visible model checks of `grader check` (defined, params, init, forward,
grad, no_builtin, device) with the same ids, messages, diagnoses and hints, against the
packaged golden vectors, in the student's process and on the student's device. It
never trains and never runs the notebook. The probe is the grader's own
(grader/inkernel/probe.py), run here in-process instead of in a grading kernel.

Where it runs: the device the class's module-level `device` names (the lab's
`device = torch.device('npu')`), when that device exists here; when it does not (a
fake NPU, a notebook copied to a laptop) the check runs on the CPU and, for its
duration only, points that global at the CPU, then puts it back. float64 where the
device has it, float32 with the float32 tolerance elsewhere; the result says which.
The student's random state is saved and restored: checking does not change training.

At grading time a notebook's check cells cost nothing: the grading kernel imports a
stand-in (grader/inkernel/selfcheck_stub.py) that prints one line and returns.
"""
from __future__ import annotations

import contextlib
import inspect
import io
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.hosting.records import CodeResult
from grader.lab_api import MODELS, ModelSpec
from grader.messages import render, text
from grader.result import CheckResult, Status
from grader.rubric import Rubric, load_rubric

PROBE_TIMEOUT_S = 600.0  # in-process: nothing can be interrupted anyway; the number only fills the protocol


@dataclass(frozen=True)
class SelfCheckItem:
    id: str
    status: str
    score: float
    max_score: float
    message: str
    diagnosis: str
    hint: str
    diagnosis_key: str = ""  # the message key of the diagnosis (checks.diag.<mistake>), for scripts and tests


@dataclass
class SelfCheckResult:
    """What `check` found. In Jupyter it shows as a table; `print()` gives the text."""

    class_name: str
    checks: list[SelfCheckItem] = field(default_factory=list)
    device: str = "cpu"
    precision: str = ""
    notice: str = ""
    error: str = ""      # one line when nothing could be checked (not a class, grader broken)
    duration_s: float = 0.0
    lang: str = "zh"

    @property
    def score(self) -> float:
        return sum(c.score for c in self.checks)

    @property
    def max_score(self) -> float:
        return sum(c.max_score for c in self.checks)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and not self.error and all(c.status == "passed" for c in self.checks)

    def __str__(self) -> str:
        from grader.selfcheck_view import as_text

        return as_text(self)

    def __repr__(self) -> str:
        return self.__str__()

    def _repr_html_(self) -> str:
        from grader.selfcheck_view import as_html

        return as_html(self)


@dataclass(frozen=True)
class _Device:
    torch_device: str


@dataclass
class _InProcessRunner:
    """The KernelRunner protocol (grader/harvest.py) in this process: the probe's code runs in `namespace`."""

    workdir: Path
    namespace: dict[str, Any]
    device: _Device

    def run_code(self, code: str, timeout_s: float) -> CodeResult:
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                exec(compile(code, "<grader-selfcheck>", "exec"), self.namespace)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # the student's code raised inside the probe's guard: the probe's verdict
            return CodeResult(False, out.getvalue(), type(exc).__name__, str(exc)[:1000], timed_out=False,
                              kernel_died=False, stderr=err.getvalue())
        return CodeResult(True, out.getvalue(), None, None, timed_out=False, kernel_died=False, stderr=err.getvalue())


def check(cls: object, lang: str | None = None, *, rubric: str | Path | None = None) -> SelfCheckResult:
    """Check one student class (CustomRNN or CustomLSTM); see the module docstring."""
    began = time.monotonic()
    course = load_rubric(Path(rubric) if rubric else None)
    lang = lang if lang in ("zh", "en") else course.meta.language
    name = getattr(cls, "__name__", type(cls).__name__)
    spec = next((m for m in MODELS if m.class_name == name), None)
    result = SelfCheckResult(str(name)[:100], lang=lang, notice=_notice(course, lang))
    if not inspect.isclass(cls):
        result.error = text("selfcheck.not_a_class", lang, got=type(cls).__name__)
        return result
    if spec is None:
        result.error = text("selfcheck.unknown_class", lang, name=str(name)[:100],
                            names=", ".join(m.class_name for m in MODELS))
        return result
    with _on_a_device_that_exists(cls) as device, _random_state_kept():
        result.device = device
        try:
            found = _run_checks(cls, spec, device)
        except Exception as exc:  # a bug of ours: one line, never a traceback wall in the student's notebook
            result.error = text("selfcheck.failed", lang, error=f"{type(exc).__name__}: {str(exc)[:200]}")
            return result
    result.precision = _precision(found)
    result.checks = [_item(r, course, lang) for r in found]
    result.duration_s = time.monotonic() - began
    return result


def _run_checks(cls: type, spec: ModelSpec, device: str) -> list[CheckResult]:
    from grader.checks.builtin import notebook_hits
    from grader.checks.model import check_model
    from grader.oracle import load_oracle

    oracle = load_oracle("golden")
    try:
        source: str | None = inspect.getsource(cls)
    except (OSError, TypeError):
        source = None  # no source (built by exec): the probe still watches what forward calls
    elsewhere = notebook_hits(_notebook_cells(cls)).get(spec.prefix, [])
    with tempfile.TemporaryDirectory(prefix="grader-selfcheck-") as tmp:
        runner = _InProcessRunner(Path(tmp), {spec.class_name: cls}, _Device(device))
        return check_model(runner, oracle, spec, source, 0, elsewhere=elsewhere, timeout_s=PROBE_TIMEOUT_S)


def _notebook_cells(cls: type) -> list[str]:
    """The notebook's cells so far (IPython's `In`), for the built-in scan of helpers defined in other cells."""
    cells = getattr(getattr(cls, "forward", None), "__globals__", {}).get("In")
    return [c for c in cells if isinstance(c, str)] if isinstance(cells, list) else []


def _item(found: CheckResult, course: Rubric, lang: str) -> SelfCheckItem:
    spec = course.checks.get(found.id)
    max_score = float(spec.points) if spec is not None else 0.0
    passed = found.status is Status.PASSED
    return SelfCheckItem(
        id=found.id, status=found.status.value, score=max_score if passed else 0.0, max_score=max_score,
        message=render(found.message, lang), diagnosis=render(found.diagnosis, lang) if found.diagnosis else "",
        hint=spec.hint(lang) if spec is not None and not passed else "",
        diagnosis_key=found.diagnosis.key if found.diagnosis is not None else "")


def _precision(found: list[CheckResult]) -> str:
    for r in found:
        dtype = r.details.get("dtype_run") if isinstance(r.details, dict) else None
        if isinstance(dtype, str) and dtype:
            return dtype
    return ""


def _notice(course: Rubric, lang: str) -> str:
    hidden = [s for s in course.checks.values() if s.visibility == "hidden"]
    return text("selfcheck.notice", lang, hidden=len(hidden), points=f"{sum(s.points for s in hidden):g}")


def _available(kind: str) -> bool:
    import torch

    if kind == "cpu":
        return True
    if kind == "cuda":
        return bool(torch.cuda.is_available())
    backend = getattr(torch, kind, None)
    try:
        return bool(backend is not None and backend.is_available())
    except Exception:  # a broken or fake backend: not a device to run on
        return False


@contextlib.contextmanager
def _on_a_device_that_exists(cls: type) -> Iterator[str]:
    """The device to check on (see the module docstring), with the class's global `device` pointed at it."""
    import torch

    namespace = getattr(getattr(cls, "forward", None), "__globals__", None)
    declared = namespace.get("device") if isinstance(namespace, dict) else None
    kind = _device_kind(declared)
    if kind is not None and _available(kind):
        yield str(declared)
        return
    chosen = next(k for k in ("npu", "cuda", "cpu") if _available(k)) if kind is None else "cpu"
    if kind is None or not isinstance(namespace, dict):
        yield chosen
        return
    namespace["device"] = torch.device(chosen)
    try:
        yield chosen
    finally:
        namespace["device"] = declared


def _device_kind(declared: object) -> str | None:
    """'npu', 'cuda', 'cpu'... of a torch.device or a device string; None for anything else."""
    if declared is None:
        return None
    kind = getattr(declared, "type", None)
    if isinstance(kind, str):
        return kind
    if isinstance(declared, str) and declared:
        return declared.split(":", 1)[0]
    return None


@contextlib.contextmanager
def _random_state_kept() -> Iterator[None]:
    import random

    import numpy as np
    import torch

    states = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


__all__ = ["SelfCheckResult", "check"]
