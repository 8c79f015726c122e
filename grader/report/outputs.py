"""Every output of a batch, written in one call (what `grader report` and `grader grade` use).

    out_dir/
      summary.html              the class summary (links to reports/<name>.html)
      summary.csv               the same facts as one long-format table
      grades.csv                one row per submission, max points first (LMS import)
      junit.xml                 every submission as a JUnit test suite (CI)
      reports/<name>.html       one report per submission (grader.report.html)
      gradescope/<name>/results.json
      results/<name>.json       the results themselves, as `--format json` prints them,
                                so `grader report out_dir/results -o ...` re-renders without regrading

`<name>` is the submission id made safe as a file name (`safe_names`): ids come
from students' file names and may hold path separators, `..`, control
characters, or be very long, and two submissions may share an id. Names are
unique per batch, also where the file system ignores case, and stable: the
same ids in the same order always give the same names.

Existing files in `out_dir` that this batch does not produce are left alone.

One result never costs the class its outputs. Results carry text and numbers a
notebook controls, and a renderer may trip over them; so every output is made in
isolation. Each submission's own files (results/, gradescope/, reports/) are
rendered one by one, and one that raises is replaced by an error entry for that
submission (a minimal page or JSON saying the report could not be rendered).
Before the class files are written, each result is rendered alone by every
class-level renderer (grades.csv row, junit suite, summary); one that raises is
replaced there by its error entry (`error_entry`: id, file, points where they
are plain numbers, and why). Every failure is logged with the submission id,
and the summary lists the submission under problems (kind `render_error`).
"""
from __future__ import annotations

import html
import json
import logging
import re
import sys
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, cast
from urllib.parse import quote

from grader.messages import text
from grader.plain_numbers import finite_float
from grader.report.grades_csv import grades_rows, write_csv_text, write_grades_csv
from grader.report.grades_xlsx import write_grades_xlsx
from grader.report.gradescope import write_gradescope_json
from grader.report.junit import junit_xml, write_junit_xml
from grader.report.results import OUTCOMES, SCHEMA, StoredResult, dumps, neutral_keys, title
from grader.report.summary import summarise, summary_csv, summary_rows
from grader.report.summary_html import summary_html, write_summary_html
from grader.safe_text import safe_line

logger = logging.getLogger(__name__)  # not `log`: _Guard.log is the batch's log file

MAX_NAME_BYTES = 100  # room for a "-NNN" suffix and ".html" / ".json" under every file system's 255
FALLBACK_NAME = "submission"
# Windows refuses these as file names (with any extension); a batch may be zipped and opened there.
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}
_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f/\\:*?"<>|]+')


@dataclass
class OutputPaths:
    """What `write_outputs` wrote; the per-submission lists follow the input order."""

    out_dir: Path
    summary_html: Path
    summary_csv: Path
    grades_csv: Path
    junit_xml: Path
    grades_xlsx: Path
    names: list[str] = field(default_factory=list)
    reports: list[Path] = field(default_factory=list)
    gradescope: list[Path] = field(default_factory=list)
    results: list[Path] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # what could not be rendered (also logged)

    def summary_files(self) -> list[Path]:
        """The class-level files (what a command lists after writing a batch)."""
        return [self.summary_html, self.summary_csv, self.grades_csv, self.grades_xlsx, self.junit_xml]

    def folders(self) -> list[Path]:
        """The per-submission folders: reports/, gradescope/, results/."""
        return [self.out_dir / "reports", self.out_dir / "gradescope", self.out_dir / "results"]

    def all(self) -> list[Path]:
        return [*self.summary_files(), *self.reports, *self.gradescope, *self.results]


def _truncate_utf8(name: str, limit: int) -> str:
    return name.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def safe_name(submission_id: Any) -> str:
    """One path component that names the submission and cannot escape its folder."""
    name = unicodedata.normalize("NFC", str(submission_id))
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn"))
    name = _UNSAFE.sub("_", name)
    name = re.sub(r"\.{2,}", ".", name)  # no ".." anywhere, so no component can mean "parent"
    name = re.sub(r"\s+", " ", name).strip(" .")  # Windows drops trailing dots/spaces; leading dot = hidden
    name = _truncate_utf8(name, MAX_NAME_BYTES).strip(" .")
    if not name:
        return FALLBACK_NAME
    if name.split(".")[0].lower() in _RESERVED:
        name = "_" + name
    return name


def safe_names(submission_ids: Sequence[Any]) -> list[str]:
    """`safe_name` of each id, made unique (case-insensitively) with -2, -3, ... in input order."""
    taken: set[str] = set()
    names = []
    for submission_id in submission_ids:
        base = safe_name(submission_id)
        name, n = base, 1
        while name.lower() in taken:
            n += 1
            name = f"{base}-{n}"
        taken.add(name.lower())
        names.append(name)
    return names


def report_href(name: str) -> str:
    """The summary's relative link to a report (percent-encoded: names may hold spaces, '#', '%')."""
    return "reports/" + quote(f"{name}.html")


def _write_text(path: Path, content: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    return path


def write_outputs(results: list[StoredResult], out_dir: Path, lang: str, *,
                  similar_pairs: list[dict[str, Any]] | None = None,
                  similarity_left_out: Sequence[dict[str, Any]] = (),
                  log: TextIO | None = None) -> OutputPaths:
    """Write every output for these (validated) results into `out_dir`; the paths written.

    A result that makes a renderer raise gets an error entry instead, logged to `log`
    (stderr by default) with its submission id; the others are written as usual.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ids = [submission_id_of(r, i) for i, r in enumerate(results)]
    names = safe_names(ids)
    paths = OutputPaths(out_dir=out_dir, summary_html=out_dir / "summary.html", summary_csv=out_dir / "summary.csv",
                        grades_csv=out_dir / "grades.csv", junit_xml=out_dir / "junit.xml",
                        grades_xlsx=out_dir / "grades.xlsx", names=names)
    for folder in paths.folders():  # the promised layout, even for an empty batch
        folder.mkdir(exist_ok=True)
    guard = _Guard(lang, log if log is not None else sys.stderr, paths.failures)
    listed = [_write_submission_files(result, sid, name, paths, lang, guard)
              for result, sid, name in zip(results, ids, names)]
    _write_class_files(listed, paths, lang, guard, similar_pairs, similarity_left_out)
    return paths


# ---------------------------------------------------------------- isolation


@dataclass
class _Guard:
    """Runs one rendering step; when it raises, logs it with the submission id and says so."""

    lang: str
    log: TextIO
    failures: list[str]

    def attempt(self, what: str, sid: str | None, step: Callable[[], Any]) -> tuple[bool, Any]:
        """(True, what `step` returned), or (False, the exception) after logging it.
        `sid` None: a class-level file, not one submission's."""
        try:
            return True, step()
        except Exception as exc:
            if sid is None:
                line = text("outputs.log_class_failed", self.lang, what=what, error=_error_name(exc))
            else:
                line = text("outputs.log_failed", self.lang, what=what, id=safe_line(sid), error=_error_name(exc))
            logger.debug("%s", line, exc_info=True)  # the line names the error; a bug of ours needs where
            self.failures.append(line)
            try:
                print(line, file=self.log, flush=True)
            except Exception:  # the failure is still in self.failures; the log itself is what broke
                logger.warning("could not write to the report log", exc_info=True)
            return False, exc


def _error_name(exc: BaseException) -> str:
    detail = safe_line(str(exc))[:200]
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def submission_id_of(result: Any, index: int) -> str:
    """The result's id as text; a placeholder naming its position when it has none."""
    value = result.get("submission_id") if isinstance(result, dict) else None
    return str(value) if value is not None and value != "" else f"{FALLBACK_NAME}-{index + 1}"


def _write_submission_files(result: StoredResult, sid: str, name: str, paths: OutputPaths, lang: str,
                            guard: _Guard) -> StoredResult:
    """results/, gradescope/ and reports/ for one submission, each in isolation; the result as
    the class files should list it (its error entry when it makes a class-level renderer raise)."""
    from grader.report.html import render_submission_html  # its own module; imported where used

    failed: list[str] = []

    def step(what: str, produce: Callable[[], Path], fallback: Callable[[], Path]) -> Path:
        ok, written = guard.attempt(what, sid, produce)
        if ok:
            return Path(written)
        failed.append(what)
        return fallback()

    out = paths.out_dir
    result_path = out / "results" / f"{name}.json"
    paths.results.append(step("results/*.json", lambda: _write_text(result_path, dumps(result) + "\n"),
                              lambda: _write_text(result_path, dumps(error_entry(result, sid, lang)) + "\n")))
    gradescope_path = out / "gradescope" / name / "results.json"
    paths.gradescope.append(step("gradescope/*/results.json",
                                 lambda: write_gradescope_json(result, gradescope_path, lang),
                                 lambda: _write_text(gradescope_path, gradescope_error(result, sid, lang))))
    report_path = out / "reports" / f"{name}.html"
    paths.reports.append(step("reports/*.html", lambda: _write_text(report_path, render_submission_html(result, lang)),
                              lambda: _write_text(report_path, error_page(sid, lang))))
    ok, _ = guard.attempt("grades.csv / junit.xml / summary", sid, lambda: _render_class_level_alone(result, lang))
    if not ok:
        return error_entry(result, sid, lang, [*failed, "class"])
    if failed:
        listed: StoredResult = {**result, "render_error": failed}
        return listed
    return result


def _render_class_level_alone(result: StoredResult, lang: str) -> None:
    """Every class-level renderer on this result alone: what would raise for the whole class."""
    grades_rows([result])
    junit_xml([result], lang)
    summary = summarise([result])
    summary_rows(summary, lang)
    summary_html(summary, lang, [None])


def _write_class_files(listed: list[StoredResult], paths: OutputPaths, lang: str, guard: _Guard,
                       similar_pairs: list[dict[str, Any]] | None,
                       similarity_left_out: Sequence[dict[str, Any]]) -> None:
    """summary.html, summary.csv, grades.csv, junit.xml. Each result already renders alone, so
    these should not fail; if one still does (a bug of ours), it is logged and written again in
    its plainest form (error entries only, no similarity), so the file exists and lists everybody."""
    hrefs = [report_href(n) for n in paths.names]
    plain = [error_entry(r, submission_id_of(r, i), lang, ["class"]) for i, r in enumerate(listed)]

    def summary_files(entries: list[StoredResult]) -> None:
        degraded = entries is plain
        summary = summarise(entries, None if degraded else similar_pairs, () if degraded else similarity_left_out)
        heading = text("summary.title", lang) + (f" — {title(entries[0], lang)}" if entries else "")
        write_summary_html(summary, paths.summary_html, lang, hrefs, heading)
        write_csv_text(summary_csv(summary, lang), paths.summary_csv)

    writers: list[tuple[str, Callable[[list[StoredResult]], Any]]] = [
        ("summary.html / summary.csv", summary_files),
        ("grades.csv", lambda entries: write_grades_csv(entries, paths.grades_csv, lang)),
        ("grades.xlsx", lambda entries: write_grades_xlsx(entries, paths.grades_xlsx)),
        ("junit.xml", lambda entries: write_junit_xml(entries, paths.junit_xml, lang)),
    ]
    for what, write in writers:
        ok, _ = guard.attempt(what, None, lambda write=write: write(listed))  # type: ignore[misc]
        if not ok:
            guard.attempt(what, None, lambda write=write: write(plain))  # type: ignore[misc]


# ---------------------------------------------------------------- error entries




def error_entry(result: object, sid: str, lang: str, parts: Sequence[str] = ()) -> StoredResult:
    """A minimal result standing in for one a renderer could not take.

    It keeps what identifies the submission and its points when they are plain finite
    numbers (the grade is not lost because its report could not be drawn), lists no
    checks, and says why in `error`; `render_error` makes the summary list it as a problem.
    """
    data = result if isinstance(result, dict) else {}
    file = data.get("file")
    file = file if isinstance(file, str) else ""
    outcome = data.get("outcome")
    score, max_score = finite_float(data.get("score")), finite_float(data.get("max_score"))
    entry = {
        **neutral_keys(), "schema": SCHEMA, "submission_id": sid, "file": file, "notebook": file,
        "outcome": outcome if outcome in OUTCOMES else "crashed",
        "error": text("outputs.render_failed", lang),
        "score": score if score is not None else 0.0,
        "max_score": max_score if max_score is not None else 0.0,
        "checks": [], "lang": lang, "render_error": list(parts) or ["class"],
    }
    return cast(StoredResult, entry)


def error_page(sid: str, lang: str) -> str:
    """The minimal report page for a result whose report could not be rendered (no template)."""
    heading = html.escape(text("outputs.report_failed_title", lang))
    body = html.escape(text("outputs.report_failed", lang, id=safe_line(sid)))
    return (f'<!DOCTYPE html>\n<html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'\">"
            f"<title>{heading}</title></head>\n<body><h1>{heading}</h1>\n<p>{body}</p></body></html>\n")


def gradescope_error(result: Any, sid: str, lang: str) -> str:
    """Gradescope's results.json for a result that could not be rendered: its points when plain."""
    entry = error_entry(result, sid, lang)
    body = {"score": entry["score"], "output": text("outputs.report_failed", lang, id=safe_line(sid)), "tests": []}
    return json.dumps(body, ensure_ascii=True, indent=2) + "\n"
