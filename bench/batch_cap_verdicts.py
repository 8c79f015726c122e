"""What the batch cap does to every verdict, and to the time: one class graded with and without it.

The class: bench/grade_speed.py's generated one (correct, buggy and hostile submissions), every fixture
notebook of `grader check`'s end-to-end tests (tests/notebooks/check/), and the reference with its training
loops written as `for step in range(len(train_loader)): features, labels = next(batches)`, a style the cap
breaks (the grader then runs the notebook again without it). It is graded twice by
`grader grade --jobs 2 --device cpu`, with the same grading secret (OUT/.grader-secret, so the same seeds),
once with the rubric's `batch_cap` and once with `batch_cap = 0` (every batch of every capped epoch). Printed:
  - every check whose verdict (status and score) differs between the two, submission by submission;
  - the wall time, submissions per minute and the students' own compute per submission, side by side.

The hang submission would wait for the rubric's 180 s cell limit: the cell limit is cut to --cell-timeout
(default 20 s) in both runs, as in bench/grade_speed.py.

Usage: OMP_NUM_THREADS=1 .venv/bin/python bench/batch_cap_verdicts.py [-n 16]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out" / "batch_cap_verdicts"


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


GRADE_SPEED = _load(ROOT / "bench" / "grade_speed.py", "grade_speed")
from grader.seeds import SECRET_FILE  # noqa: E402

_BATCH_LOOP = "    for features, labels in train_loader:\n"
_MANUAL_LOOP = ("    batches = iter(train_loader)\n"
                "    for step in range(len(train_loader)):\n"
                "        features, labels = next(batches)\n")


def write_submissions(n: int, folder: Path) -> None:
    GRADE_SPEED.write_class(GRADE_SPEED.make_class(n), folder)
    for fixture in sorted((ROOT / "tests" / "notebooks" / "check").glob("*.ipynb")):
        nbformat.write(nbformat.read(fixture, as_version=4), folder / f"fixture_{fixture.stem}.ipynb")
    manual = GRADE_SPEED.FIXTURES.reference()
    for cell in manual.cells:
        if cell.cell_type == "code" and cell.source.startswith("losses = []"):
            cell.source = cell.source.replace(_BATCH_LOOP, _MANUAL_LOOP)
    nbformat.write(manual, folder / "correct_manual_next_loops.ipynb")


def rubric_with(batch_cap: int, cell_timeout_s: int, folder: Path) -> Path:
    base = GRADE_SPEED.bench_rubric(cell_timeout_s, folder).read_text(encoding="utf-8")
    line = next((line for line in base.splitlines() if line.startswith("batch_cap =")), None)
    if line is None:
        raise SystemExit("rubric has no `batch_cap =` line; update bench/batch_cap_verdicts.py")
    path = folder / f"rubric-batch-cap-{batch_cap}.toml"
    path.write_text(base.replace(line, f"batch_cap = {batch_cap}"), encoding="utf-8")
    return path


def grade(subs: Path, out: Path, rubric: Path, secret: Path) -> tuple[float, dict[str, dict]]:
    shutil.rmtree(out, ignore_errors=True)
    # `grade` keeps its secret beside its store: both runs get the same one, so every seed is the same
    out.mkdir(parents=True)
    shutil.copyfile(secret, out / SECRET_FILE)
    (out / SECRET_FILE).chmod(0o600)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "grader", "grade", str(subs), "-o", str(out), "--jobs", "2",
           "--rubric", str(rubric), "--device", "cpu", "--lang", "en"]
    began = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.monotonic() - began
    if proc.returncode not in (0, 1):
        raise SystemExit(f"grader grade failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    results = {}
    for path in sorted((out / "results").glob("*.json")):
        result = json.loads(path.read_text(encoding="utf-8"))
        results[result["submission_id"]] = result
    return wall, results


def verdicts(result: dict) -> dict[str, tuple[str, float]]:
    return {c["id"]: (c["status"], c["score"]) for c in result.get("checks", [])}


def student_compute(result: dict) -> float:
    return sum(c.get("duration_s") or 0.0 for c in result.get("cells", []))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=16, help="generated submissions besides the fixtures (default 16)")
    parser.add_argument("--cell-timeout", type=int, default=20)
    args = parser.parse_args()
    subs = OUT / "subs"
    shutil.rmtree(OUT, ignore_errors=True)
    subs.mkdir(parents=True)
    write_submissions(args.n, subs)
    secret = OUT / "secret"
    secret.write_text(os.urandom(32).hex() + "\n", encoding="ascii")
    secret.chmod(0o600)
    from grader.rubric import load_rubric

    cap = load_rubric().limits.batch_cap
    runs = {}
    for batch_cap in (0, cap):  # uncapped first: a warm cache favours the second run, never the cap's
        wall, results = grade(subs, OUT / f"out-{batch_cap}", rubric_with(batch_cap, args.cell_timeout, OUT), secret)
        runs[batch_cap] = (wall, results)
    (wall0, before), (wall1, after) = runs[0], runs[cap]
    n = len(before)
    print(f"{n} submissions ({args.n} generated, {n - args.n - 1} check fixtures, 1 manual-next style), "
          "grade --jobs 2, cpu")
    reruns = sorted(sid for sid, r in after.items() if "rerun_without_batch_cap_s" in r.get("timings", {}))
    print(f"run again without the cap (a cell it broke): {', '.join(reruns) or 'none'}")
    print(f"\n| | batch_cap = 0 | batch_cap = {cap} |\n|---|---:|---:|")
    print(f"| wall time, s | {wall0:.1f} | {wall1:.1f} |")
    print(f"| submissions / min | {60 * n / wall0:.1f} | {60 * n / wall1:.1f} |")
    mean0 = sum(map(student_compute, before.values())) / n
    mean1 = sum(map(student_compute, after.values())) / n
    print(f"| students' own compute per submission, s | {mean0:.2f} | {mean1:.2f} |")
    differences = []
    for sid in sorted(before):
        old, new = verdicts(before[sid]), verdicts(after.get(sid, {}))
        for check in sorted(set(old) | set(new)):
            if old.get(check) != new.get(check):
                differences.append((sid, check, old.get(check), new.get(check)))
        if before[sid]["score"] != after.get(sid, {}).get("score"):
            differences.append((sid, "(score)", before[sid]["score"], after.get(sid, {}).get("score")))
    checks = sum(len(verdicts(r)) for r in before.values())
    print(f"\nverdicts compared: {checks} checks over {n} submissions; differing: {len(differences)}")
    for sid, check, old, new in differences:
        print(f"  {sid}  {check}: {old} -> {new}")


if __name__ == "__main__":
    main()
