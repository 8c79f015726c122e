"""`grader demo` (what `make demo` runs): the main job on the embedded default data.

It grades a small class the way a TA does (`grader grade`): the reference
notebook and the untouched student template, on the synthetic dataset, into a
results store with HTML reports, the class summary and the exports. Then it
checks the two facts the course depends on: the reference earns every point
and the template earns none.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from grader.batch.run import GradeOptions, grade
from grader.batch.store import Store
from grader.default_data import default_dataset_dir
from grader.paths import REFERENCE_NOTEBOOK, TEMPLATE_NOTEBOOK
from grader.report.terminal import print_report
from grader.rubric import load_rubric


def run_demo(out: Path, *, lang: str) -> int:
    rubric = load_rubric()
    print(f"[demo] synthetic dataset: {default_dataset_dir()}")
    submissions = out / "submissions"
    submissions.mkdir(parents=True, exist_ok=True)
    expected = {"reference": rubric.max_score, "template": 0.0}
    for name, notebook in (("reference", REFERENCE_NOTEBOOK), ("template", TEMPLATE_NOTEBOOK)):
        shutil.copyfile(notebook, submissions / f"{name}.ipynb")
    print(f"[demo] grader grade {submissions} -o {out}\n")
    summary = grade(GradeOptions(submissions=submissions, out=out, lang=lang))
    with Store.open(out, lang) as store:
        results = {r["submission_id"]: r for r in store.all_results()}
    ok = summary.exit_code == 0
    for name, want in expected.items():
        result = results.get(name)
        print()
        if result is None:
            print(f"[demo] {name}: no result in the store")
            ok = False
            continue
        print_report(result, lang)
        good = result["score"] == want
        ok &= good
        print(f"[demo] {name}: {result['score']:g}/{rubric.max_score:g} (expected {want:g}) "
              f"{'OK' if good else 'UNEXPECTED'} -> {out / 'reports' / (name + '.html')}")
    print(f"\n[demo] class summary: {out / 'summary.html'}")
    return 0 if ok else 1
