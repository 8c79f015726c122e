"""`grader demo` (what `make demo` runs): the main job on the embedded default data.

It grades the reference notebook and the untouched student template against
the synthetic dataset and checks the two facts the course depends on: the
reference earns every point and the template earns none.
"""
from __future__ import annotations

from pathlib import Path

from grader.default_data import default_dataset_dir
from grader.paths import REFERENCE_NOTEBOOK, TEMPLATE_NOTEBOOK
from grader.pipeline import CheckOptions, check_notebook
from grader.report.json_report import report_to_json
from grader.report.outputs import write_outputs
from grader.report.terminal import print_report
from grader.rubric import load_rubric


def run_demo(out: Path, *, lang: str) -> int:
    out.mkdir(parents=True, exist_ok=True)
    rubric = load_rubric()
    data = default_dataset_dir()
    print(f"[demo] synthetic dataset: {data}")
    outcomes = {}
    results = []
    for name, notebook, expected in (("reference", REFERENCE_NOTEBOOK, rubric.max_score),
                                     ("template", TEMPLATE_NOTEBOOK, 0.0)):
        print(f"\n[demo] grading the {name} notebook: {notebook}")
        report = check_notebook(notebook, CheckOptions(), lang=lang)
        report.submission_id = name
        result = report_to_json(report, rubric, lang)
        print_report(result, lang)
        results.append(result)
        outcomes[name] = (report.score, expected, out / "reports" / f"{name}.html")
    written = write_outputs(results, out, lang)
    print()
    ok = True
    for name, (score, expected, path) in outcomes.items():
        good = score == expected
        ok &= good
        print(f"[demo] {name}: {score:g}/{rubric.max_score:g} (expected {expected:g}) {'OK' if good else 'UNEXPECTED'} -> {path}")
    print(f"[demo] class summary: {written.summary_html}")
    return 0 if ok else 1
