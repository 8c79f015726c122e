"""How fast `grader grade` is on a mixed class, with --jobs 1 and --jobs 2, beside nbclient as is.

Generates N submissions into bench/out/grade_speed/subs:
  - correct (~60%): the reference with cosmetic changes (a name cell, comments, a renamed local)
    or a correct variant from tests/fixtures/models (other weight orientations);
  - buggy (~25%): the reference with one known mistake from tests/fixtures/models;
  - hostile (the rest, at least one of each): a `while True: pass` cell, `os._exit(1)`, a memory bomb.
Then runs `grader grade SUBS -o OUT --jobs J` in a fresh process with a fresh OUT for J = 1, 2, and
prints side by side:
  - submissions per minute, all and correct-only (correct-only = correct submissions / the wall
    time spent on them, estimated as the batch wall x their share of the summed job durations);
  - per-submission overhead beyond the student's own compute: wall x jobs / N (worker-seconds per
    submission) minus the mean student compute (the summed duration of the notebook's cells);
  - peak RSS per worker: the trusted worker process alone and the worker with its kernel(s),
    sampled with psutil every 0.2 s;
  - the ratio against running each notebook as is with nbclient (bench/check_speed.py's baseline,
    imported, on the reference: the as-is seconds per notebook / grader's seconds per correct one).

The hang cell would wait for the rubric's 180 s cell limit; the bench grades with a copy of the
rubric whose cell limit is --cell-timeout (default 20 s) so a run fits in minutes. Say so when
quoting the figures. Also prints how long the similarity report takes on the batch and on 1000
synthetic submissions.

Usage: OMP_NUM_THREADS=1 .venv/bin/python bench/grade_speed.py [-n 16] [--skip-baseline] [--jobs 1 2]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out" / "grade_speed"
MODELS = ROOT / "tests" / "fixtures" / "models"

from grader.paths import DEFAULT_RUBRIC, TEMPLATE_NOTEBOOK  # noqa: E402

CORRECT_VARIANTS = ["correct_w_at_x.py", "correct_mixed_orientation.py", "correct_x_at_w.py"]
BUGGY = [
    ("lstm_no_input_gate.py", ("CustomLSTM",)), ("lstm_first_step_logits.py", ("CustomLSTM",)),
    ("rnn_detached_hidden.py", ("CustomRNN",)), ("rnn_no_tanh.py", ("CustomRNN",)),
    ("lstm_tanh_on_forget_gate.py", ("CustomLSTM",)), ("rnn_uses_nn_rnn.py", ("CustomRNN",)),
]
HOSTILE = {
    "hang": "# never ends\nwhile True:\n    pass",
    "exit": "import os\nos._exit(1)",
    "membomb": "hog = []\nwhile True:\n    hog.append(bytearray(256 * 2**20))",
}


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


# The fixture builders of `grader check`'s end-to-end tests: one mistake is written once.
FIXTURES = _load(ROOT / "tests" / "notebooks" / "check" / "make_fixtures.py", "make_fixtures")
CHECK_SPEED = _load(ROOT / "bench" / "check_speed.py", "check_speed")


# ---------------------------------------------------------------- the class

def cosmetic(nb: nbformat.NotebookNode, n: int, rng: random.Random) -> nbformat.NotebookNode:
    """What differs between two correct students who did not copy: names, comments, a local's name."""
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(f"Student {n:03d}"))
    for cell in nb.cells:
        if cell.cell_type == "code" and rng.random() < 0.5:
            cell.source = f"# my notes {rng.randrange(10**6)}\n{cell.source}"
        if cell.cell_type == "code" and "class CustomLSTM(" in cell.source:
            cell.source = cell.source.replace("c_hat_t", rng.choice(["g_t", "cand", "c_tilde"]))
    for i, cell in enumerate(nb.cells):
        cell.id = f"bench-{n}-{i}"
    return nb


def make_class(n: int, seed: int = 0) -> dict[str, tuple[str, nbformat.NotebookNode]]:
    """submission id -> (kind, notebook)."""
    rng = random.Random(seed)
    n_hostile = max(len(HOSTILE), round(0.15 * n))
    n_buggy = max(1, round(0.25 * n))
    n_correct = max(1, n - n_hostile - n_buggy)
    subs: dict[str, tuple[str, nbformat.NotebookNode]] = {}
    for i in range(n_correct):
        variant = i % (len(CORRECT_VARIANTS) + 1)
        nb = FIXTURES.reference() if variant == 0 else FIXTURES.with_classes(CORRECT_VARIANTS[variant - 1])
        subs[f"correct_{i:03d}"] = ("correct", cosmetic(nb, i, rng))
    for i in range(n_buggy):
        fixture, names = BUGGY[i % len(BUGGY)]
        subs[f"buggy_{i:03d}_{Path(fixture).stem}"] = ("buggy", cosmetic(FIXTURES.with_classes(fixture, names), i, rng))
    kinds = list(HOSTILE)
    for i in range(n_hostile):
        kind = kinds[i % len(kinds)]
        subs[f"hostile_{i:03d}_{kind}"] = ("hostile", FIXTURES.with_cell_after("CustomLSTM", HOSTILE[kind]))
    return subs


def write_class(subs: dict[str, tuple[str, nbformat.NotebookNode]], folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for sid, (_, nb) in subs.items():
        nbformat.write(nb, folder / f"{sid}.ipynb")


def bench_rubric(cell_timeout_s: int, folder: Path) -> Path:
    text = DEFAULT_RUBRIC.read_text(encoding="utf-8")
    if "cell_timeout_s = 180" not in text:
        raise SystemExit("rubric has no `cell_timeout_s = 180` line to shorten; update bench/grade_speed.py")
    path = folder / "bench-rubric.toml"
    path.write_text(text.replace("cell_timeout_s = 180", f"cell_timeout_s = {cell_timeout_s}"), encoding="utf-8")
    return path


# ---------------------------------------------------------------- measuring a run

@dataclass
class Sampler:
    """Peak RSS of each grading worker (the grade process's spawned children), alone and with its kernels."""

    root_pid: int
    worker_alone: dict[int, int] = field(default_factory=dict)
    worker_tree: dict[int, int] = field(default_factory=dict)
    coordinator: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.root_pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop.wait(0.2):
            try:
                self.coordinator = max(self.coordinator, root.memory_info().rss)
                children = root.children()
            except psutil.NoSuchProcess:
                return
            for worker in children:
                try:
                    if "resource_tracker" in " ".join(worker.cmdline()):
                        continue
                    alone = worker.memory_info().rss
                    tree = alone + sum(_rss(p) for p in worker.children(recursive=True))
                except psutil.NoSuchProcess:
                    continue
                self.worker_alone[worker.pid] = max(self.worker_alone.get(worker.pid, 0), alone)
                self.worker_tree[worker.pid] = max(self.worker_tree.get(worker.pid, 0), tree)

    def stop(self) -> None:
        self._stop.set()


def _rss(proc) -> int:
    try:
        return proc.memory_info().rss
    except Exception:
        return 0


@dataclass
class RunFigures:
    jobs: int
    wall_s: float
    n: int
    n_correct: int
    per_min: float
    correct_per_min: float
    overhead_s: float
    student_s: float
    worker_peak_mib: float
    worker_tree_peak_mib: float
    coordinator_peak_mib: float
    correct_wall_s: float  # estimated seconds of batch wall per correct submission
    outcomes: dict[str, int]
    scores: dict[str, float]


def grade(subs_dir: Path, out: Path, jobs: int, rubric: Path, kinds: dict[str, str]) -> RunFigures:
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "grader", "grade", str(subs_dir), "-o", str(out), "--jobs", str(jobs),
           "--rubric", str(rubric), "--device", "cpu", "--lang", "en"]
    began = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = Sampler(proc.pid)
    thread = threading.Thread(target=sampler.run, daemon=True)
    thread.start()
    log, _ = proc.communicate()
    wall = time.monotonic() - began
    sampler.stop()
    thread.join()
    (out.parent / f"grade-jobs{jobs}.log").write_text(log, encoding="utf-8")
    if proc.returncode not in (0, 1):
        raise SystemExit(f"grader grade --jobs {jobs} failed ({proc.returncode}):\n{log[-3000:]}")
    results = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((out / "results").glob("*.json"))]
    return figures(results, wall, jobs, kinds, sampler)


def figures(results: list[dict], wall: float, jobs: int, kinds: dict[str, str], sampler: Sampler) -> RunFigures:
    n = len(results)
    student = [sum(c.get("duration_s") or 0.0 for c in r.get("cells", [])) for r in results]
    durations = {r["submission_id"]: float(r.get("duration_s") or 0.0) for r in results}
    correct = [r["submission_id"] for r in results if kinds.get(r["submission_id"]) == "correct"]
    total = sum(durations.values()) or 1.0
    correct_wall = wall * sum(durations[s] for s in correct) / total
    outcomes: dict[str, int] = {}
    for r in results:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
    mib = 2**20
    return RunFigures(
        jobs=jobs, wall_s=wall, n=n, n_correct=len(correct),
        per_min=60 * n / wall, correct_per_min=60 * len(correct) / correct_wall if correct_wall else 0.0,
        overhead_s=wall * jobs / n - sum(student) / n, student_s=sum(student) / n,
        worker_peak_mib=max(sampler.worker_alone.values(), default=0) / mib,
        worker_tree_peak_mib=max(sampler.worker_tree.values(), default=0) / mib,
        coordinator_peak_mib=sampler.coordinator / mib,
        correct_wall_s=correct_wall / max(1, len(correct)),
        outcomes=outcomes, scores={r["submission_id"]: r["score"] for r in results},
    )


# ---------------------------------------------------------------- report

def print_table(runs: list[RunFigures], baseline_s: float | None) -> None:
    rows = [
        ("wall time, s", lambda r: f"{r.wall_s:.1f}"),
        ("submissions / min (all)", lambda r: f"{r.per_min:.1f}"),
        ("submissions / min (correct only)", lambda r: f"{r.correct_per_min:.1f}"),
        ("student compute per submission, s", lambda r: f"{r.student_s:.1f}"),
        ("overhead per submission beyond it, s", lambda r: f"{r.overhead_s:.1f}"),
        ("peak RSS per worker (worker alone), MiB", lambda r: f"{r.worker_peak_mib:.0f}"),
        ("peak RSS per worker (with its kernel), MiB", lambda r: f"{r.worker_tree_peak_mib:.0f}"),
        ("peak RSS coordinator, MiB", lambda r: f"{r.coordinator_peak_mib:.0f}"),
        ("wall per correct submission, s", lambda r: f"{r.correct_wall_s:.1f}"),
    ]
    if baseline_s is not None:
        rows.append(("nbclient as is / grader, per correct notebook",
                     lambda r: f"{baseline_s / r.correct_wall_s:.1f}x"))
    head = f"{'':<48}" + "".join(f"{'--jobs ' + str(r.jobs):>12}" for r in runs)
    print(head)
    for label, cell in rows:
        print(f"{label:<48}" + "".join(f"{cell(r):>12}" for r in runs))
    for r in runs:
        print(f"--jobs {r.jobs}: {r.n} submissions ({r.n_correct} correct), outcomes {r.outcomes}")
    if baseline_s is not None:
        print(f"nbclient, reference notebook as is (50 epochs x 2 models): {baseline_s:.1f} s")


def similarity_timing(subs: dict[str, tuple[str, nbformat.NotebookNode]]) -> None:
    from grader.similarity import find_similar

    template = nbformat.read(TEMPLATE_NOTEBOOK, as_version=4)
    began = time.monotonic()
    pairs = find_similar({sid: nb for sid, (_, nb) in subs.items()}, template)
    print(f"similarity on this batch ({len(subs)}): {time.monotonic() - began:.2f} s, {len(pairs)} pairs flagged")
    big = {f"s{i:04d}": nb for i, (_, nb) in enumerate(make_class(1000, seed=1).values())}
    began = time.monotonic()
    pairs = find_similar(big, template)
    print(f"similarity on 1000 generated submissions: {time.monotonic() - began:.2f} s, {len(pairs)} pairs flagged")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=16, help="submissions to generate (default 16)")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cell-timeout", type=int, default=20)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--generate-only", action="store_true")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"
    subs = make_class(args.n)
    subs_dir = OUT / "subs"
    write_class(subs, subs_dir)
    kinds = {sid: kind for sid, (kind, _) in subs.items()}
    print(f"wrote {len(subs)} submissions to {subs_dir}: "
          + ", ".join(f"{k} {sum(1 for v in kinds.values() if v == k)}" for k in ("correct", "buggy", "hostile")))
    if args.generate_only:
        return
    rubric = bench_rubric(args.cell_timeout, OUT)
    # Warm the shared caches first (dataset, MFCCs, numba), so neither run pays for them.
    from grader.default_data import default_dataset_dir

    data_dir = default_dataset_dir()
    runs = []
    for jobs in args.jobs:
        run = grade(subs_dir, OUT / f"out-jobs{jobs}", jobs, rubric, kinds)
        print(f"--jobs {jobs}: {run.wall_s:.1f} s", flush=True)
        runs.append(run)
    baseline = None if args.skip_baseline else CHECK_SPEED.as_is_baseline(Path(data_dir))
    print()
    print_table(runs, baseline)
    wrong = {sid: s for sid, s in runs[0].scores.items()
             if (kinds[sid] == "correct" and s != 100) or (kinds[sid] == "buggy" and s == 100)}
    if wrong:
        print(f"unexpected scores (correct should score 100, buggy less): {wrong}")
    similarity_timing(subs)


if __name__ == "__main__":
    main()
