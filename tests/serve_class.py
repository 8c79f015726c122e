"""A graded class in a real store, built from the stored-result fixtures (no kernel, no notebook run), for
`grader serve`'s tests and its bench (bench/serve_class.py).

Each student is one of the fixture results under another id; the store gets a roster (with a student who
never submitted and names a student chose), an override, one made against an older notebook (needs review),
and a stored similarity pass with one flagged pair whose classes are kept, as `grader grade` keeps them.
"""
from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from grader.batch.store import Store, now_iso
from grader.overrides import SET, Override
from grader.paths import DEFAULT_RUBRIC
from grader.roster import Roster, Student
from grader.rubric import load_rubric

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "results"
KINDS = ("passes_all_reference", "fails_lstm_first_step_logits", "fails_rnn_grad_detached_hidden",
         "scores_zero_untouched_template", "ungraded_not_a_notebook", "hostile_cell_html_script")
HOSTILE_NAME = '<script>document.title="pwned"</script>\u202eevil'
LSTM_A = '''class CustomLSTM(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.W_f = nn.Parameter(torch.randn(input_size, hidden_size) * 0.1)
        self.U_f = nn.Parameter(torch.randn(hidden_size, hidden_size) * 0.1)
    def forward(self, x):
        h = torch.zeros(x.size(0), self.hidden_size)
        for t in range(x.size(1)):
            f = torch.sigmoid(x[:, t] @ self.W_f + h @ self.U_f)
            h = f * torch.tanh(h)
        return h  # </pre><script>alert(1)</script>'''
LSTM_B = "# my own comment\n" + LSTM_A.replace("self.hidden_size", "self.hs")


@dataclass(frozen=True)
class ServedClass:
    out: Path
    ids: tuple[str, ...]           # the stored submissions, in order
    missing: str                   # on the roster, never submitted
    overridden: str                # has an override in force (made on the graded notebook)
    review: str                    # has an override made against another notebook: needs review
    pair: tuple[str, str]          # the flagged pair
    kinds: dict[str, str]          # id -> fixture it was made from


def fixture(kind: str) -> dict:
    return json.loads((FIXTURES / f"{kind}.json").read_text(encoding="utf-8"))


def build_class(out: Path, count: int = 8, *, prefix: str = "s") -> ServedClass:
    """`count` (6 or more) stored results (the fixtures in turn) in out/grades.sqlite, and the roster, ledger
    and pairs."""
    rubric = load_rubric(DEFAULT_RUBRIC)
    bases = {kind: fixture(kind) for kind in KINDS}
    ids = tuple(f"{prefix}{i:04d}" for i in range(1, count + 1))
    kinds = {sid: KINDS[i % len(KINDS)] for i, sid in enumerate(ids)}
    missing = f"{prefix}9999"
    with Store.open(out, "en") as store:
        run = store.begin_run("0.1.0", rubric.sha256)
        for sid in ids:
            result = copy.deepcopy(bases[kinds[sid]])
            result.update(submission_id=sid, file=f"{sid}.ipynb", rubric_sha256=rubric.sha256)
            store.save_result(result, notebook_sha256=_sha(sid), run_id=run, data_sha256="d", calibration_sha256="")
        students = [Student(sid, HOSTILE_NAME if i == 2 else f"Student {i}", "A" if i % 2 else "B")
                    for i, sid in enumerate(ids)]
        store.save_roster(Roster((*students, Student(missing, "Never Submitted", "A"))))
        overridden, review = ids[1], ids[4]
        store.record_override(Override(overridden, "lstm.forward", SET, 5.0, "partial credit", "ta", now_iso(),
                                       _sha(overridden)))
        store.record_override(Override(review, "notebook.runs", SET, 1.0, "ran for me", "ta", now_iso(), "older"))
        pair = (ids[0], ids[3])
        store.save_similarity(run, [_pair(*pair)], [])
        store.save_class_sources({pair[0]: (_sha(pair[0]), [{"name": "CustomLSTM", "text": LSTM_A, "cell": 7,
                                                              "line": 3}]),
                                  pair[1]: (_sha(pair[1]), [{"name": "CustomLSTM", "text": LSTM_B, "cell": 9,
                                                              "line": 1}])})
        store.end_run(run)
    return ServedClass(Path(out), ids, missing, overridden, review, pair, kinds)


def _pair(a: str, b: str) -> dict:
    match = {"name": "CustomLSTM", "score": 0.93, "shared": 12,
             "a_lines": [{"cell": 7, "start": 7, "end": 12}], "b_lines": [{"cell": 9, "start": 6, "end": 11}]}
    return {"a": a, "b": b, "score": 0.93, "classes": ["CustomLSTM"], "note": "CustomLSTM 0.93",
            "matches": [match], "note_i18n": None}


def _sha(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()
