"""The rubric: rubrics/*.toml parsed into frozen dataclasses, strictly.

A TA edits this file by hand, so every mistake gets an exact message: an
unknown key names the closest known one, wrong totals give both numbers,
and a missing or unknown check id is named.
"""
from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import tomllib

from grader.errors import RubricError
from grader.paths import DEFAULT_RUBRIC

CHECK_IDS: tuple[str, ...] = (
    "notebook.parses", "notebook.runs", "data.loaders",
    "rnn.defined", "rnn.params", "rnn.init", "rnn.forward", "rnn.grad", "rnn.no_builtin", "rnn.device", "rnn.sizes",
    "loop.train", "loop.eval",
    "lstm.defined", "lstm.params", "lstm.init", "lstm.forward", "lstm.grad", "lstm.no_builtin", "lstm.device",
    "lstm.sizes",
    "lstm.train",
)
VISIBILITIES = ("visible", "hidden")
# What `grader release` shows students of a check: everything, its points alone, or nothing. Default: a visible
# check in full, a hidden one by its points only (its message, hint and data would give the hidden test away).
RELEASES = ("full", "score", "none")


@dataclass(frozen=True)
class Meta:
    title_zh: str
    title_en: str
    language: str = "zh"
    total: float = 100
    # How the Gradescope autograder marks hidden checks: "hidden" (staff only, always) or "after_published"
    # (shown once grades are published; Gradescope hides the whole total from students while any test is hidden).
    gradescope_hidden: str = "hidden"


# [limits] and [training] have no defaults in code: every value is the rubric's (rubrics/lab.toml says why
# each is what it is), so a setting is defined once and a rubric that lacks one is refused by name.
@dataclass(frozen=True)
class Limits:
    cell_timeout_s: float       # one cell of the student's notebook
    notebook_timeout_s: float   # the whole notebook
    epoch_cap: int              # epoch loops run at most this often (>= 2)
    probe_timeout_s: float      # one probe call of the model checks
    # DataLoader passes inside a capped epoch loop give at most this many batches (>= 2; docs/performance.md).
    # The one key with a default: 0 (no batch cap) keeps a rubric written before it grading exactly as it did.
    batch_cap: int = 0


@dataclass(frozen=True)
class Training:
    """lstm.train's protocol (docs/training-check.md)."""

    threshold: float
    max_epochs: int
    learning_rate: float
    batch_size: int
    time_budget_s: float


# Checks that earn their points only when others passed, unless a rubric says otherwise (`requires = [...]`):
# the grader's training of a CustomLSTM whose equations are wrong proves nothing about the student's LSTM
# (a broken LSTM plus a shortcut passed lstm.train while failing lstm.forward, measured).
DEFAULT_REQUIRES: dict[str, tuple[str, ...]] = {"lstm.train": ("lstm.forward",)}


@dataclass(frozen=True)
class CheckSpec:
    id: str
    points: float
    visibility: str
    hint_zh: str
    hint_en: str
    requires: tuple[str, ...] = ()
    release: str = ""  # one of RELEASES; "" means the default for its visibility (`released_as`)

    @property
    def released_as(self) -> str:
        return self.release or ("full" if self.visibility == "visible" else "score")

    def hint(self, lang: str) -> str:
        return self.hint_zh if lang == "zh" else self.hint_en


@dataclass(frozen=True)
class Rubric:
    path: Path
    sha256: str
    meta: Meta
    limits: Limits
    training: Training
    checks: dict[str, CheckSpec]

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.checks.values())

    def hidden_ids(self) -> frozenset[str]:
        """Checks run by TA grading only, never by a student's self-check."""
        return frozenset(c.id for c in self.checks.values() if c.visibility == "hidden")


def load_rubric(path: Path | None = None) -> Rubric:
    path = Path(path or DEFAULT_RUBRIC)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RubricError(f"{path}: cannot read the rubric ({exc.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RubricError(f"{path}: not valid TOML: {exc}") from None
    where = str(path)
    _reject_unknown(data, ("meta", "limits", "training", "checks"), where)
    meta = _section(Meta, data.get("meta", {}), f"{where} [meta]")
    limits = _section(Limits, data.get("limits", {}), f"{where} [limits]")
    training = _section(Training, data.get("training", {}), f"{where} [training]")
    checks = _checks(data.get("checks", {}), where)
    rubric = Rubric(path, hashlib.sha256(raw).hexdigest(), meta, limits, training, checks)
    _validate(rubric, where)
    return rubric


def _reject_unknown(table: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            suggestion = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"
            raise RubricError(f"{where}: unknown key {key!r}{suggestion}")


def _section(cls: type, table: Any, where: str) -> Any:
    if not isinstance(table, dict):
        raise RubricError(f"{where}: must be a table")
    known = tuple(f.name for f in fields(cls))
    _reject_unknown(table, known, where)
    values = {}
    for f in fields(cls):
        if f.name not in table:
            if f.default is f.default_factory:  # dataclasses.MISSING on both: required
                raise RubricError(f"{where}: missing key {f.name!r}")
            continue
        values[f.name] = _typed(table[f.name], f.type, f"{where} {f.name}")
    return cls(**values)


def _typed(value: Any, annotation: Any, where: str) -> Any:
    kind = {"str": str, "int": int, "float": float}.get(str(annotation), str)
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise RubricError(f"{where}: expected {kind.__name__}, got {type(value).__name__} {value!r}")
    return value


def _checks(table: Any, where: str) -> dict[str, CheckSpec]:
    if not isinstance(table, dict):
        raise RubricError(f"{where} [checks]: must be a table of check ids")
    specs: dict[str, CheckSpec] = {}
    for check_id, body in table.items():
        if check_id not in CHECK_IDS:
            close = difflib.get_close_matches(check_id, CHECK_IDS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise RubricError(f"{where}: unknown check {check_id!r}{hint}")
        spec_where = f'{where} [checks."{check_id}"]'
        body = dict(body) if isinstance(body, dict) else body
        requires = _requires(body.pop("requires", None) if isinstance(body, dict) else None, check_id, spec_where)
        release = body.pop("release", "") if isinstance(body, dict) else ""
        if release not in ("", *RELEASES):
            raise RubricError(f"{spec_where} release: {release!r} is not one of {', '.join(RELEASES)}")
        values = _section(_CheckBody, body, spec_where)
        if values.visibility not in VISIBILITIES:
            raise RubricError(f"{spec_where} visibility: {values.visibility!r} is not one of {', '.join(VISIBILITIES)}")
        if values.points < 0:
            raise RubricError(f"{spec_where} points: must not be negative")
        specs[check_id] = CheckSpec(check_id, values.points, values.visibility, values.hint_zh, values.hint_en,
                                    requires, str(release))
    missing = [c for c in CHECK_IDS if c not in specs]
    if missing:
        raise RubricError(f"{where}: no entry for check(s) {', '.join(missing)}")
    return {c: specs[c] for c in CHECK_IDS}


def _requires(value: Any, check_id: str, where: str) -> tuple[str, ...]:
    """`requires = ["lstm.forward"]`: check ids that must pass first; absent means the default."""
    if value is None:
        return DEFAULT_REQUIRES.get(check_id, ())
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RubricError(f"{where} requires: expected a list of check ids, got {value!r}")
    for required in value:
        if required not in CHECK_IDS or required == check_id:
            close = difflib.get_close_matches(required, CHECK_IDS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise RubricError(f"{where} requires: {required!r} is not another check{hint}")
    return tuple(value)


@dataclass(frozen=True)
class _CheckBody:
    points: float
    visibility: str
    hint_zh: str
    hint_en: str


def _validate(rubric: Rubric, where: str) -> None:
    if abs(rubric.max_score - rubric.meta.total) > 1e-9:
        raise RubricError(
            f"{where}: the checks' points add up to {rubric.max_score:g}, but [meta] total is {rubric.meta.total:g}"
        )
    if rubric.checks["notebook.parses"].points != 0:
        raise RubricError(f"{where}: notebook.parses is a gate and must carry 0 points "
                          "(an untouched template scores 0)")
    if rubric.meta.gradescope_hidden not in ("hidden", "after_published"):
        raise RubricError(f"{where} [meta] gradescope_hidden: {rubric.meta.gradescope_hidden!r} is not 'hidden' "
                          "or 'after_published'")
    if rubric.meta.language not in ("zh", "en"):
        raise RubricError(f"{where} [meta] language: {rubric.meta.language!r} is not 'zh' or 'en'")
    if rubric.limits.epoch_cap < 2:
        raise RubricError(f"{where} [limits] epoch_cap: must be at least 2 (the lab divides by the last epoch index)")
    if rubric.limits.batch_cap == 1 or rubric.limits.batch_cap < 0:
        raise RubricError(f"{where} [limits] batch_cap: must be 0 (no cap) or at least 2 (a loop may divide by "
                          "the last batch index)")
    if not 0 < rubric.training.threshold <= 1:
        raise RubricError(f"{where} [training] threshold: {rubric.training.threshold} is not a fraction in (0, 1]")
