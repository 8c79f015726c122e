"""`*.device` judged from the probe's report (grader/checks/device.py): the report came from the student's process.

No kernel: the reports are written here, shaped the way a notebook that rewrote the probe's output could shape
them. A forged or broken report gives its own class an ERROR or a FAILED, never an exception, never control
characters or unbounded text in a message, and never a pass it did not show.
"""
from __future__ import annotations

from typing import Any

import pytest

from grader.checks.device import MAX_CODE_CHARS, MAX_ERROR_CHARS, check_device
from grader.harvest import TIMED_OUT, ProbeReply
from grader.lab_api import LSTM
from grader.messages import LANGUAGES, render
from grader.result import Status

CLEAN = {"ok": True, "built": True, "output_device": "meta", "created": []}
MIXED = {"ok": False, "built": True, "error": "_DeviceClash: tensors on two devices meet in one operation",
         "mixed": True, "devices": ["cpu", "meta"], "at": {"line": 12, "code": "c = f * c + i * g"},
         "created": [{"line": 9, "code": "c = torch.zeros(b, h)"}], "attribute": False}


def judged(step: Any) -> Any:
    return check_device(LSTM, ProbeReply(steps={"device": step}))


def rendered(result: Any) -> list[str]:
    texts = [render(result.message, lang) for lang in LANGUAGES]
    if result.diagnosis is not None:
        texts += [render(result.diagnosis, lang) for lang in LANGUAGES]
    return texts


def test_a_clean_report_passes_and_a_mixed_one_names_the_line_that_made_the_cpu_tensor() -> None:
    assert judged(CLEAN).status is Status.PASSED
    mixed = judged(MIXED)
    assert mixed.status is Status.FAILED and mixed.diagnosis.key == "checks.diag.device_created_on_cpu"
    assert (mixed.message.params["line"], mixed.message.params["code"]) == (9, "c = torch.zeros(b, h)")
    assert all(not text.startswith("checks.") for text in rendered(mixed))


@pytest.mark.parametrize("step", [
    None, [], "ok", {"ok": "yes"}, {"ok": 1}, {},
    {"ok": True},                                          # no "built": not a pass
    {"ok": True, "built": True, "output_device": "cpu"},   # the output came back on the CPU
    {"ok": True, "built": True, "output_device": ["meta"]},
    {"ok": True, "built": "true", "output_device": "meta"},
    {"ok": True, "built": True, "output_device": "meta\x1b[2J"},
], ids=repr)
def test_a_report_that_does_not_show_a_clean_run_never_passes(step: Any) -> None:
    result = judged(step)
    assert result.status in (Status.ERROR, Status.FAILED)
    assert all(text and not text.startswith(("checks.", "kernel.")) for text in rendered(result))


@pytest.mark.parametrize("field, value", [
    ("at", {"line": True, "code": "x"}), ("at", {"line": -1, "code": "x"}), ("at", {"line": 10**9, "code": "x"}),
    ("at", {"line": 3, "code": 7}), ("at", "line 3"), ("created", "c = torch.zeros(b, h)"),
    ("created", [{"line": "9", "code": "x"}] * 10_000), ("devices", ["cpu", "<script>", "a" * 500, 3]),
    ("error", ["not", "a", "string"]), ("error", 10**100), ("attribute", "yes"),
])
def test_malformed_fields_of_a_mixed_report_are_dropped_not_trusted(field: str, value: Any) -> None:
    result = judged({**MIXED, field: value})
    assert result.status is Status.FAILED  # the mixing itself was reported; only the broken field goes
    details = result.details
    assert all(isinstance(site["line"], int) and 0 < site["line"] < 10**7 for site in details.get("created_at", []))
    assert len(details.get("created_at", [])) <= 3
    assert set(details.get("devices", [])) <= {"cpu", "meta"}
    assert isinstance(details["error"], str) and len(details["error"]) <= MAX_ERROR_CHARS * 8


def test_text_from_the_kernel_is_bounded_and_loses_its_control_characters() -> None:
    hostile = "x = 1\x1b]0;pwned\x07\u202e" + "y" * 10_000
    result = judged({**MIXED, "created": [{"line": 9, "code": hostile}], "error": hostile})
    code = result.message.params["code"]
    assert "\x1b" not in code and "\x07" not in code and "\u202e" not in code
    assert len(code) <= MAX_CODE_CHARS * 8 and "y" * (MAX_CODE_CHARS + 1) not in code
    assert "\x1b" not in result.details["error"] and "y" * (MAX_ERROR_CHARS + 1) not in result.details["error"]


def test_a_report_that_could_not_run_is_an_error_and_a_lost_kernel_says_so() -> None:
    stopped = judged({"ok": False, "built": True, "error": "RuntimeError: Tensor.item() cannot be called on meta"})
    assert stopped.status is Status.ERROR and stopped.message.key == "checks.device.not_run"
    not_built = judged({"ok": False, "built": False, "mixed": True, "error": "ctor"})
    assert not_built.status is Status.ERROR  # a mixing the class could not even be built for is not trusted
    timeout = check_device(LSTM, ProbeReply(failure=TIMED_OUT, reason="120 s"))
    assert timeout.status is Status.ERROR and timeout.message.key == "checks.kernel.timeout"
