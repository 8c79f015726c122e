"""What `run_autograder` runs inside Gradescope: grade one submission, always write results.json.

    python -m grader.distribution.gradescope_run --submission DIR --results FILE --secret FILE [--data ZIP]

The notebook graded is the submission's `lab.ipynb`, else its only `.ipynb`, else the
newest one. TA grading (`check --full`: the live reference, secret inputs drawn from
the autograder's secret and the notebook's bytes, hidden checks too), on the CPU.
Whatever goes wrong (no notebook, a file that is not one, a bug of ours), results.json
is written: a zero score and the reason, in the rubric's language, never a traceback.
"""
from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import sys
import time
from pathlib import Path

from grader.errors import GraderError
from grader.report.gradescope import gradescope_json
from grader.report.results import StoredResult, ungraded_result
from grader.rubric import Rubric, load_rubric
from grader.safe_text import json_safe

log = logging.getLogger(__name__)
NOTEBOOK_NAME = "lab.ipynb"
MAX_NOTEBOOKS_LOOKED_AT = 200


def pick_notebook(submission: Path) -> Path | None:
    """lab.ipynb, else the only .ipynb, else the newest one (searched to two levels).

    A link (a file or a folder on the way) is never followed: a submission with `sub -> /autograder/source`
    would otherwise have the reference graded as its own work."""
    root = submission.resolve()

    def inside(path: Path) -> bool:
        return (path.is_file() and not path.is_symlink() and not path.parent.is_symlink()
                and path.resolve().is_relative_to(root) and ".ipynb_checkpoints" not in path.parts)

    # islice: a submission of a million files is listed no further than needed
    found = [p for p in itertools.islice(submission.glob("*.ipynb"), MAX_NOTEBOOKS_LOOKED_AT) if inside(p)]
    found += [p for p in itertools.islice(submission.glob("*/*.ipynb"), MAX_NOTEBOOKS_LOOKED_AT) if inside(p)]
    if not found:
        return None
    named = [p for p in found if p.name == NOTEBOOK_NAME]
    if named:
        return named[0]
    return max(found, key=lambda p: p.stat().st_mtime)


def grade(submission: Path, secret: bytes, data: Path | None, rubric: Rubric) -> StoredResult:
    """The stored result of the submission's notebook, or an ungraded one saying why."""
    from grader.pipeline import CheckOptions, check_notebook
    from grader.report.json_report import report_to_json

    lang = rubric.meta.language
    began = time.monotonic()
    notebook = pick_notebook(submission)
    if notebook is None:
        reason = "没有找到 .ipynb 文件 / no .ipynb file was submitted"
        return ungraded_result(submission_id="submission", file="", outcome="bad_input", error=reason,
                               rubric=rubric, lang=lang)
    try:
        report = check_notebook(notebook, CheckOptions(data=data, device="cpu", rubric=rubric.path, secret=secret),
                                lang=lang)
        report.submission_id, report.notebook = notebook.stem, notebook.name
        return report_to_json(report, rubric, lang)
    except GraderError as exc:  # the notebook or the data: the reason, as the CLI would print it
        message, _ = exc.text_in(lang)
        outcome = "bad_input" if exc.exit_code == 2 else "crashed"
        return ungraded_result(submission_id=notebook.stem, file=notebook.name, outcome=outcome, error=message,
                               rubric=rubric, lang=lang, duration_s=time.monotonic() - began)
    except Exception as exc:  # a bug of ours must still leave a results.json for the course
        log.exception("grading %s failed", notebook.name)
        return ungraded_result(submission_id=notebook.stem, file=notebook.name, outcome="crashed",
                               error=f"{type(exc).__name__}: {str(exc)[:300]}", rubric=rubric, lang=lang,
                               duration_s=time.monotonic() - began)


def write_results(result: StoredResult, rubric: Rubric, path: Path) -> None:
    body = gradescope_json(result, rubric.meta.language, hidden_as=rubric.meta.gradescope_hidden)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")  # a run killed mid-write leaves no half a results.json
    partial.write_text(json_safe(json.dumps(body, ensure_ascii=False, indent=2)) + "\n", encoding="utf-8")
    os.replace(partial, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gradescope_run")
    parser.add_argument("--submission", type=Path, required=True)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--secret", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--rubric", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    rubric = load_rubric(args.rubric)
    try:
        secret = args.secret.read_bytes()
    except OSError:
        secret = b""
    if len(secret) < 16:  # a broken zip: grading with known inputs would let a notebook game them
        reason = ("评分包缺少评分密钥，请重新生成 / the autograder zip has no grading secret; rebuild it with "
                  "`grader gradescope-autograder`")
        result = ungraded_result(submission_id="submission", file="", outcome="crashed", error=reason,
                                 rubric=rubric, lang=rubric.meta.language)
    else:
        result = grade(args.submission, secret, args.data, rubric)
    write_results(result, rubric, args.results)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
