"""Adversarial review of the speed changes after ca3debe: the batch cap, the feature pack, the stand-in
torch._dynamo and the console script's os._exit.

Each test pins a property the review found broken (and the fix that followed) or found to hold.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

# --------------------------------------------------------------------------------------------------------------
# The batch cap ([limits] batch_cap, grader/inkernel/batch_cap.py): students' loop styles inside epoch loops
# --------------------------------------------------------------------------------------------------------------

_SETUP = """import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset
dataset = TensorDataset(torch.arange(40.0))
loader = DataLoader(dataset, batch_size=4)   # 10 batches
num_epochs = 5"""

# Cells a correct notebook may contain; each prints what it saw. Index 0 is _SETUP.
_BREAKS = {
    # The manual-iterator style: as many next() calls as the loader says it has batches.
    "manual_next_over_len_loader": """for epoch in range(num_epochs):
    it = iter(loader)
    for step in range(len(loader)):
        (xb,) = next(it)
print('manual ok')""",
    # Per-epoch validation that compares the loader's predictions with the dataset's own labels.
    "per_epoch_accuracy_against_dataset_labels": """labels = np.array([int(v) % 3 for (v,) in dataset])
for epoch in range(num_epochs):
    preds = []
    for (xb,) in loader:
        preds.extend((xb.long() % 3).tolist())
    acc = (np.array(preds) == labels).mean()
print('accuracy', acc)""",
}
_KEEPS = {
    "while_next_stopiteration": """n = 0
for epoch in range(num_epochs):
    it = iter(loader)
    while True:
        try:
            next(it)
        except StopIteration:
            break
        n += 1
print('while', n)""",
    "nested_epoch_loops_then_full_pass": """n = 0
for run in range(2):
    for epoch in range(num_epochs):
        for _ in loader:
            n += 1
print('nested', n, sum(1 for _ in loader))""",
    "early_stopping_break_then_full_pass": """best, n = None, 0
for epoch in range(num_epochs):
    for _ in loader:
        n += 1
    if epoch == 0:
        break
print('early', n, sum(1 for _ in loader))""",
    "len_dataset_denominator": """for epoch in range(num_epochs):
    correct = sum(int((xb.long() % 2 == 0).sum()) for (xb,) in loader)
    acc = correct / len(dataset)
print('denominator', round(acc, 3))""",
    "generator_helper": """def batches(dl):
    yield from dl
for epoch in range(num_epochs):
    k = sum(1 for _ in batches(loader))
print('generator', k)""",
    "caught_exception_then_full_pass_same_cell": """try:
    for epoch in range(num_epochs):
        for _ in loader:
            raise ValueError('x')
except ValueError:
    pass
print('after caught', sum(1 for _ in loader))""",
}


def _run_styles(folder: Path, batch_cap: int) -> tuple[dict[str, tuple[str, str | None, str]], int]:
    from grader.devices import resolve_device
    from grader.hosting.limits import ExecutionLimits
    from grader.hosting.session import KernelSession

    sources = [_SETUP, *_BREAKS.values(), *_KEEPS.values()]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    limits = ExecutionLimits(cell_timeout_s=30, notebook_timeout_s=120, epoch_cap=2, batch_cap=batch_cap,
                             kill_grace_s=1.5)
    with KernelSession(folder, resolve_device("cpu"), limits) as session:
        result = session.run_notebook(nb)
        broken = session.cells_broken_by_batch_cap()
    names = ["setup", *_BREAKS, *_KEEPS]
    return {name: (cell.status, cell.error_name,
                   "".join(o.get("text", "") for o in result.notebook.cells[i].outputs))
            for i, (name, cell) in enumerate(zip(names, result.cells))}, broken


@pytest.fixture(scope="module")
def loop_styles(tmp_path_factory):
    """The styles under the lab rubric's limits: epoch_cap 2, batch_cap 4."""
    return _run_styles(tmp_path_factory.mktemp("loop-styles"), batch_cap=4)


@pytest.fixture(scope="module")
def loop_styles_uncapped(tmp_path_factory):
    """The same notebook with epoch_cap 2 and no batch cap: the behaviour before 34b4e03."""
    return _run_styles(tmp_path_factory.mktemp("loop-styles-uncapped"), batch_cap=0)


@pytest.mark.kernel
@pytest.mark.parametrize("style", list(_BREAKS))
def test_cells_the_batch_cap_breaks_are_counted_for_a_run_without_it(loop_styles, loop_styles_uncapped, style):
    """Found by the review: under batch_cap = 4 a correct cell raises. `manual_next_over_len_loader` calls next()
    len(loader) times on an iterator that ends after 4 batches (StopIteration); `per_epoch_accuracy_against_
    dataset_labels` compares 8 predictions with 40 labels (ValueError). Pinned now: the kernel counts exactly
    those cells (raised after a pass was cut short), and none without the cap, so the pipeline runs the notebook again
    without it (the verdict-level test is test_the_reference_with_manual_next_training_loops_keeps_its_points).
    """
    (uncapped, uncapped_broken), (capped, broken) = loop_styles_uncapped, loop_styles
    assert uncapped[style][0] == "ok", uncapped[style]  # the cell is correct without the cap
    assert capped["setup"][0] == "ok" and capped[style][0] == "error"
    assert (broken, uncapped_broken) == (len(_BREAKS), 0)


@pytest.mark.kernel
def test_a_later_cell_broken_by_what_a_capped_loop_collected_is_counted_and_a_hang_is_not(tmp_path):
    """Pins: once a pass was cut short, a later cell that raises counts too (it may use what the capped loop
    collected), and a cell stopped by the grader's time limit does not (run again, it would only hang again)."""
    from grader.devices import resolve_device
    from grader.hosting.limits import ExecutionLimits
    from grader.hosting.session import KernelSession

    cells = [_SETUP,
             "preds = []\nfor epoch in range(num_epochs):\n    preds = [int(v) for (xb,) in loader for v in xb]",
             "assert len(preds) == len(dataset), (len(preds), len(dataset))",
             "while True:\n    pass"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    limits = ExecutionLimits(cell_timeout_s=3, notebook_timeout_s=60, epoch_cap=2, batch_cap=4, kill_grace_s=1.5)
    with KernelSession(tmp_path, resolve_device("cpu"), limits) as session:
        result = session.run_notebook(nb)
        broken = session.cells_broken_by_batch_cap()
    assert [c.status for c in result.cells][:3] == ["ok", "ok", "error"]
    assert result.cells[3].status != "ok"
    assert broken == 1


@pytest.mark.kernel
def test_batch_cap_leaves_other_loop_styles_and_later_passes_alone(loop_styles):
    """Pins: these styles still run, and no pass after an epoch loop (left by break, by a caught exception, or
    finished) is capped."""
    loop_styles, _ = loop_styles
    bad = {k: v[:2] for k, v in loop_styles.items() if k in _KEEPS and v[0] != "ok"}
    assert not bad
    assert loop_styles["nested_epoch_loops_then_full_pass"][2] == "nested 16 10\n"
    assert loop_styles["early_stopping_break_then_full_pass"][2] == "early 4 10\n"
    assert loop_styles["caught_exception_then_full_pass_same_cell"][2] == "after caught 10\n"


# --------------------------------------------------------------------------------------------------------------
# The feature pack (grader/inkernel/feature_memo.py): librosa's errors kept for calls it does not accept
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture
def pack_dir(small_synthetic_dataset: Path, tmp_path: Path) -> Path:
    from grader.data.features import FeatureCache
    from grader.data.kernel_features import feature_pack

    folder = feature_pack(small_synthetic_dataset, root=tmp_path / "cache", cache=FeatureCache(tmp_path / "mfcc"))
    assert folder is not None
    return folder


def _outcome(call):
    try:
        call()
    except Exception as exc:  # the outcome is the point
        return type(exc).__name__
    return "ok"


@pytest.mark.parametrize("call", ["load(path, None)", "mfcc(y=y, sr=sr, n_mfcc=13.0)"])
def test_the_pack_never_answers_a_call_librosa_refuses(small_synthetic_dataset, pack_dir, call):
    """Found by the review, fixed: librosa 0.11's load takes sr keyword-only and mfcc needs an integer n_mfcc;
    both calls raise TypeError in librosa (and on the student's own machine), and the pack answered them, so a
    notebook with either mistake ran in grading only when a pack existed. The pack must leave them to librosa."""
    import librosa
    import librosa.feature

    from grader.inkernel import feature_memo

    clip = str(sorted((small_synthetic_dataset / "train").glob("*.wav"))[0])
    y, sr = librosa.load(clip, sr=None)
    memo, pack = feature_memo._Memo(), feature_memo.Pack(str(pack_dir))
    load = feature_memo._memo_load(librosa.load, memo, pack)
    mfcc = feature_memo._memo_mfcc(librosa.feature.mfcc, memo, pack)
    if call.startswith("load"):
        got, expected = _outcome(lambda: load(clip, None)), _outcome(lambda: librosa.load(clip, None))
    else:
        got = _outcome(lambda: mfcc(y=y, sr=sr, n_mfcc=13.0))
        expected = _outcome(lambda: librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13.0))
    assert expected == "TypeError"
    assert got == expected


@pytest.mark.kernel
def test_a_kernel_spoiling_its_pack_and_numba_copies_leaves_the_graders_untouched(pack_dir, tmp_path):
    """Pins: the kernel writes, replaces and links its copies of the pack and of the numba cache;
    the grader's own pack (what every later kernel is copied from) is byte for byte the same, and the session
    closes normally."""
    from grader.devices import resolve_device
    from grader.hosting.limits import ExecutionLimits
    from grader.hosting.session import KernelSession

    def digest(folder: Path) -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}

    before = digest(pack_dir)
    attack = textwrap.dedent("""\
        import os
        pack = os.path.join('.cache', 'grader-features')
        print(sorted(os.listdir(pack)))
        with open(os.path.join(pack, 'features.json'), 'w') as fh:
            fh.write('{"format": 1, "n_mfcc": 13, "frames": 1, "load": {}, "mfcc": {}}')
        os.remove(os.path.join(pack, 'features.npy'))
        os.symlink('/etc/passwd', os.path.join(pack, 'features.npy'))
        os.mkfifo(os.path.join(pack, 'extra.fifo'))
        for root, _, files in os.walk(os.environ['NUMBA_CACHE_DIR']):
            for name in files:
                with open(os.path.join(root, name), 'wb') as fh:
                    fh.write(b'planted')
        print('spoilt')""")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(attack)])
    work = tmp_path / "work"
    work.mkdir()
    limits = ExecutionLimits(cell_timeout_s=30, notebook_timeout_s=60, epoch_cap=2)
    with KernelSession(work, resolve_device("cpu"), limits, feature_pack=pack_dir) as session:
        result = session.run_notebook(nb)
    text = "".join(o.get("text", "") for o in result.notebook.cells[0].outputs)
    assert result.cells[0].status == "ok", result.cells[0].traceback
    assert text == "['features.json', 'features.npy']\nspoilt\n"
    assert digest(pack_dir) == before


# --------------------------------------------------------------------------------------------------------------
# The stand-in torch._dynamo (grader/inkernel/lazy_dynamo.py): what a notebook can observe of the module
# --------------------------------------------------------------------------------------------------------------

_DYNAMO_PROBE = """
import importlib.util, json, sys
import torch
if sys.argv[1] == 'stand-in':
    from grader.inkernel import lazy_dynamo
    lazy_dynamo.install()

def attempt(fn):
    try:
        return fn()
    except Exception as exc:
        return 'raised ' + type(exc).__name__

out = {
    'find_spec': attempt(lambda: importlib.util.find_spec('torch._dynamo') is not None),
    'file': attempt(lambda: torch._dynamo.__file__.endswith('__init__.py')),
    'disable_module_is_module': attempt(lambda: isinstance(torch._dynamo.disable(torch.nn.Linear(2, 2)),
                                                           torch.nn.Module)),
}
print(json.dumps(out))
"""


def _dynamo_view(mode: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", _DYNAMO_PROBE, mode], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_stand_in_dynamo_module_looks_like_the_real_one():
    """Found by the review, fixed: with the stand-in, importlib.util.find_spec('torch._dynamo') raised
    ValueError ('__spec__ is None'), torch._dynamo.__file__ raised AttributeError, and
    torch._dynamo.disable(module) returned a plain function instead of a module; the real one answers all three."""
    assert _dynamo_view("stand-in") == _dynamo_view("real")


# --------------------------------------------------------------------------------------------------------------
# The console script's os._exit (grader/cli.py entry)
# --------------------------------------------------------------------------------------------------------------


def test_entry_keeps_the_exit_code_when_stdout_is_closed(tmp_path):
    """Found by the review, fixed: with file descriptor 1 closed (a daemon, `>&-`), sys.stdout is None and
    entry()'s flush raised AttributeError after main() returned: a traceback and exit code 1 ("a check failed")
    instead of main()'s code (2 here, a missing notebook)."""
    code = "import sys; sys.argv = ['grader', 'check', sys.argv[1]]\nfrom grader.cli import entry\nentry()\n"
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "missing.ipynb")],
                          stderr=subprocess.PIPE, text=True, preexec_fn=lambda: os.close(1), timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert "Traceback" not in proc.stderr, proc.stderr[-1500:]
    assert proc.returncode == 2


def test_entry_keeps_the_exit_code_when_the_reader_of_stdout_is_gone(tmp_path):
    """Pins: a closed pipe at the final flush leaves main()'s exit code (before os._exit it was 120
    with an 'Exception ignored' message)."""
    read, write = os.pipe()
    os.close(read)
    code = ("import sys; sys.argv = ['grader', 'check', sys.argv[1]]\n"
            "print('x' * 100, end='')\n"
            "from grader.cli import entry\nentry()\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # stdout block-buffered, as in a pipe
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "missing.ipynb")], stdout=write,
                          stderr=subprocess.PIPE, text=True, timeout=120, env={**env, "OMP_NUM_THREADS": "1"})
    os.close(write)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-1500:]


_BATCH_LOOP = "    for features, labels in train_loader:\n"
_MANUAL_LOOP = ("    batches = iter(train_loader)\n"
                "    for step in range(len(train_loader)):\n"
                "        features, labels = next(batches)\n")


@pytest.mark.kernel
def test_the_reference_with_manual_next_training_loops_keeps_its_points(tmp_path):
    """Found by the review, fixed: the reference with its two training loops written as `for step in
    range(len(train_loader)): features, labels = next(batches)` (a correct notebook: it passes everything
    without the batch cap) lost notebook.runs and loop.train (10 of 100 points) under the lab rubric's
    batch_cap = 4: the fifth next() raised StopIteration out of the training cell. The pipeline now runs such a
    notebook again without the cap, and grades that run."""
    from advkit import check_in_process, reference, write
    from rubric_edit import lab_rubric_with

    nb = reference()
    changed = 0
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.startswith("losses = []") and _BATCH_LOOP in cell.source:
            cell.source = cell.source.replace(_BATCH_LOOP, _MANUAL_LOOP)
            changed += 1
    assert changed == 2
    notebook = write(nb, tmp_path, "manual_next")
    lab = {"cell_timeout_s": 60.0, "notebook_timeout_s": 300.0}
    uncapped = check_in_process(notebook, lab_rubric_with(tmp_path / "uncapped.toml", batch_cap=0, **lab))
    assert {"notebook.runs", "loop.train"} - uncapped.not_passed == {"notebook.runs", "loop.train"}
    capped = check_in_process(notebook, lab_rubric_with(tmp_path / "capped.toml", **lab))
    assert {"notebook.runs", "loop.train"} & capped.not_passed == set(), capped.statuses
    # the graded run is the one without the cap, and the result says so
    assert capped.result["batch_cap"] == 0 and "rerun_without_batch_cap_s" in capped.result["timings"]
    assert uncapped.result["batch_cap"] == 0 and "rerun_without_batch_cap_s" not in uncapped.result["timings"]


@pytest.mark.kernel
@pytest.mark.parametrize(("claim", "expected"), [
    ("lambda: 'not a number'", 0),
    ("lambda: 1 / 0", 0),
    ("lambda: print('9' * 3_000_000) or 5", 0),  # the flood truncates the output: the answer's line is lost
    ("lambda: 10 ** 30", 0),
    ("lambda: 3", 3),
])
def test_what_the_kernel_says_about_broken_cells_is_read_bounded(tmp_path, claim, expected):
    """Pins: the count is the kernel's word, read from its own line of output with a bound; a claim that is not a
    small integer, a crash or a flood reads as 0, never as an error in the grader."""
    from grader.devices import resolve_device
    from grader.hosting.limits import ExecutionLimits
    from grader.hosting.session import KernelSession

    cell = f"import grader.inkernel.batch_cap as m\nm.broken_cells = {claim}"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])
    limits = ExecutionLimits(cell_timeout_s=30, notebook_timeout_s=60, epoch_cap=2, batch_cap=4, kill_grace_s=1.5)
    with KernelSession(tmp_path, resolve_device("cpu"), limits) as session:
        session.run_notebook(nb)
        count = session.cells_broken_by_batch_cap()
    assert count == expected


@pytest.mark.kernel
def test_a_notebook_that_claims_broken_cells_is_run_again_once_and_still_graded(tmp_path):
    """Pins: a notebook lying that the cap broke its cells costs itself one more run, no more (the second run is
    uncapped and not asked), and is graded as the reference it otherwise is."""
    from advkit import check_in_process, reference, with_cells, write
    from rubric_edit import lab_rubric_with

    nb = with_cells(reference(), "import grader.inkernel.batch_cap as m\nm.broken_cells = lambda: 7",
                    "raise ValueError('a failing cell, so that the grader asks')")
    checked = check_in_process(write(nb, tmp_path, "claims"), lab_rubric_with(
        tmp_path / "lab.toml", cell_timeout_s=60.0, notebook_timeout_s=300.0))
    assert checked.result["batch_cap"] == 0 and "rerun_without_batch_cap_s" in checked.result["timings"]
    assert checked.not_passed == {"notebook.runs"}, checked.statuses
