"""Code that runs inside the student's kernel process, and nothing else.

The trust boundary of the grader is this folder's boundary. Everything here is
imported or executed in the student's process, beside hostile code, so:
- it never imports the rest of the grader (only the standard library, numpy,
  torch and relative imports of this package; tests/test_inkernel_boundary.py
  proves it), since the kernel gets a copy of these files alone;
- it never raises into the student's session (a failing shim is worse than none);
- what it reports back is the student's word, re-checked on the grader side.

- startup.py      installed by the kernel's IPython startup file: the shims below, one torch thread
- transforms.py   IPython AST transformers: npu -> grading device, epoch cap
- shell_shims.py  `!cmd`, `%pip`, `%%bash`, ... are skipped instead of run
- feature_memo.py  librosa.load / librosa.feature.mfcc memoised by content within the kernel (epochs repeat them)
- fakes/          a stand-in torch_npu package, put on sys.path without an NPU
- probe.py        the model probes' code (sent as text by grader/harvest.py)
- selfcheck_stub.py  `grader.selfcheck` as the grading kernel sees it (a check cell costs nothing)
- train_probe.py  the lstm.train protocol's code (sent as text by grader/checks/training.py)

The grader side that hosts the kernel (launching, limits, the watchdog, the
client) is grader/hosting/.
"""
from __future__ import annotations

from pathlib import Path

# Where these files are, for the grader side: it copies them into each kernel's run folder and sends the
# probes' text (the kernel never reads the grader's tree).
INKERNEL_DIR = Path(__file__).resolve().parent
PROBE_SOURCE = INKERNEL_DIR / "probe.py"
TRAIN_PROBE_SOURCE = INKERNEL_DIR / "train_probe.py"
