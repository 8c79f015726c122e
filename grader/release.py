"""`grader release OUT -o DIR`: one report per student, for the student, from a graded class's store.

A released report is the TA's report of the same result (the same templates),
with what students must not see taken out of the data before rendering:
- each check as its rubric's `release` says (grader/rubric.py RELEASES): `full`,
  `score` (the status and points; no message, hint, diagnosis or data: a hidden
  check's inputs and expected values stay hidden), or `none` (not listed; the
  points it holds are named in the receipt so the total still adds up);
- nothing about other students (no similarity flags), nor the grader's internals
  (which protections were active, timings);
- a receipt: the notebook's SHA-256, when it was graded, the grader's version,
  the rubric's SHA-256 and the device, so a dispute can start from facts.
One self-contained HTML per student, named by id, and release.csv mapping each
id to its file. The grader's secret (OUT/.grader-secret) never leaves OUT.
"""
from __future__ import annotations

import copy
import csv
import io
from dataclasses import dataclass
from pathlib import Path

from grader.batch.ledger import open_store
from grader.batch.store import now_iso
from grader.errors import BadInputError
from grader.messages import text
from grader.report.grades_csv import safe_cell, write_csv_text
from grader.report.html import render_submission_html
from grader.report.outputs import safe_names
from grader.report.results import Receipt, StoredCheck, StoredResult
from grader.roster import join
from grader.rubric import Rubric

RELEASE_CSV = "release.csv"


@dataclass(frozen=True)
class Released:
    folder: Path
    files: list[Path]
    index: Path


def redact(result: StoredResult, rubric: Rubric, receipt: Receipt) -> StoredResult:
    """The result as its student may see it (see the module docstring)."""
    released = copy.deepcopy(result)
    kept: list[StoredCheck] = []
    hidden_points = 0.0
    for check in released["checks"]:
        spec = rubric.checks.get(str(check["id"]))
        policy = spec.released_as if spec is not None else "score"
        if policy == "none":
            hidden_points += float(check["score"])
            continue
        if policy == "score":
            check["message"], check["hint"], check["diagnosis"], check["details"] = "", "", None, {}
            check["i18n"] = {"message": None, "diagnosis": None, "hint": None}
            check.pop("override", None)  # a TA's reason may quote what the check found
        kept.append(check)
    for check in kept:  # the seed every secret input of the run is drawn from: never the student's to see
        check["details"].pop("seed", None)
    released["checks"] = kept
    released["protections"] = None
    released["timings"] = {}
    for key in ("on_roster", "notebook_sha256", "render_error", "grader_score", "overridden", "needs_review"):
        released.pop(key, None)  # type: ignore[misc]
    visible_overrides = [c for c in kept if "override" in c]
    if visible_overrides:  # what the page shows of the TA's changes: only those of the checks it lists
        released["overridden"] = len(visible_overrides)
        released["grader_score"] = float(result["score"]) - sum(
            c["override"]["points"] - c["override"]["grader_score"] for c in visible_overrides)
    released["receipt"] = {**receipt, "not_shown_points": round(hidden_points, 6)}
    return released


def release(out: Path, dest: Path, lang: str, rubric: Rubric) -> Released:
    """Write every student's released report into `dest` (created), and release.csv."""
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise BadInputError(text("release.dest_not_folder", lang, dest=str(dest)))
    with open_store(out, lang) as store:
        results = join(store.results_for_outputs(), store.roster(), rubric, lang)
        hashes = store.notebook_hashes()
        graded_at = {row["id"]: str(row["graded_at"]) for row in store.rows()}
    other = sorted({str(r.get("rubric_sha256") or "") for r in results} - {rubric.sha256, ""})
    if other:  # what a check may show is the rubric's say: another rubric's would release the wrong things
        raise BadInputError(text("release.other_rubric", lang, rubric=str(rubric.path), count=len(other)))
    dest.mkdir(parents=True, exist_ok=True)
    ids = [r["submission_id"] for r in results]
    names = safe_names(ids)
    released_at = now_iso()
    files: list[Path] = []
    for result, name in zip(results, names, strict=True):
        sid = result["submission_id"]
        receipt: Receipt = {
            "notebook_sha256": hashes.get(sid, ""), "graded_at": graded_at.get(sid, ""),
            "grader_version": str(result.get("grader_version") or ""),
            "rubric_sha256": str(result.get("rubric_sha256") or ""), "device": str(result.get("device") or ""),
            "released_at": released_at, "not_shown_points": 0.0,
        }
        path = dest / f"{name}.html"
        path.write_text(render_submission_html(redact(result, rubric, receipt), lang), encoding="utf-8")
        files.append(path)
    index = write_csv_text(_index_csv(results, files), dest / RELEASE_CSV)
    return Released(dest, files, index)


def _index_csv(results: list[StoredResult], files: list[Path]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["id", "name", "file", "score", "max_score", "outcome"])
    for result, path in zip(results, files, strict=True):
        writer.writerow([safe_cell(result["submission_id"]), safe_cell(result.get("student_name", "")), path.name,
                         f"{float(result['score']):g}", f"{float(result['max_score']):g}",
                         str(result.get("outcome") or "graded")])
    return buffer.getvalue()
