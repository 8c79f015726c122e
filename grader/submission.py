"""What grading one notebook produced, as live objects: the pipeline's answer, before it is stored.

grader/report/json_report.py turns it into the stored result (grader/report/results.py), which every
renderer reads.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grader import __version__
from grader.hosting.records import CellRecord
from grader.messages import Msg
from grader.report.results import SelfCheck
from grader.result import Status
from grader.sandbox import Protections
from grader.score import ScoredCheck


@dataclass
class SubmissionReport:
    """Everything a report needs about one graded notebook."""

    notebook: str
    score: float
    max_score: float
    device: str
    npu_remapped: bool
    duration_s: float
    checks: list[ScoredCheck]
    cells: list[CellRecord] = field(default_factory=list)
    shell_escapes: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    kernel_died: bool = False
    fallback_kernel: bool = False
    rubric_sha256: str = ""
    grader_version: str = __version__
    submission_id: str = ""
    # the notebook's own `losses` list after it ran (display only, never scored)
    student_curve: dict[str, Any] | None = None
    protections: Protections | None = None
    # self-checks only: {"hidden_count", "hidden_points", "reference"} (grader/report/results.py)
    self_check: SelfCheck | None = None
    # num_workers=N > 0 the notebook asked for; its DataLoaders ran with 0 (grader/inkernel/startup.py)
    loader_workers: list[int] = field(default_factory=list)
    device_note: str = ""             # which device and why (grader/devices.py), in the run's language
    device_reason: Msg | None = None  # the same as a message, so a report in another language can say it
    epoch_cap: int = 0                # the notebook's epoch loops ran at most this often (0: no cap)
    batch_cap: int = 0                # ... each DataLoader pass inside one, at most this many batches (0: all)

    @property
    def all_passed(self) -> bool:
        return all(c.status is Status.PASSED for c in self.checks)
