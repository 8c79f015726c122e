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
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import quote

from grader.messages import text
from grader.report.gradescope import write_gradescope_json
from grader.report.grades_csv import write_csv_text, write_grades_csv
from grader.report.junit import write_junit_xml
from grader.report.results import dumps, title
from grader.report.summary import summarise, summary_csv
from grader.report.summary_html import write_summary_html

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
    names: list[str] = field(default_factory=list)
    reports: list[Path] = field(default_factory=list)
    gradescope: list[Path] = field(default_factory=list)
    results: list[Path] = field(default_factory=list)

    def summary_files(self) -> list[Path]:
        """The class-level files (what a command lists after writing a batch)."""
        return [self.summary_html, self.summary_csv, self.grades_csv, self.junit_xml]

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


def write_outputs(results: list[dict[str, Any]], out_dir: Path, lang: str, *,
                  similar_pairs: list[dict[str, Any]] | None = None) -> OutputPaths:
    """Write every output for these (validated) results into `out_dir`; the paths written."""
    from grader.report.html import write_submission_html  # its own module; imported where used

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = safe_names([r["submission_id"] for r in results])
    paths = OutputPaths(out_dir=out_dir, summary_html=out_dir / "summary.html", summary_csv=out_dir / "summary.csv",
                        grades_csv=out_dir / "grades.csv", junit_xml=out_dir / "junit.xml", names=names)
    for folder in paths.folders():  # the promised layout, even for an empty batch
        folder.mkdir(exist_ok=True)
    for result, name in zip(results, names):
        paths.results.append(_write_text(out_dir / "results" / f"{name}.json", dumps(result) + "\n"))
        paths.gradescope.append(write_gradescope_json(result, out_dir / "gradescope" / name / "results.json", lang))
        report = out_dir / "reports" / f"{name}.html"
        write_submission_html(result, report, lang)
        paths.reports.append(report)
    summary = summarise(results, similar_pairs)
    heading = text("summary.title", lang) + (f" — {title(results[0], lang)}" if results else "")
    write_summary_html(summary, paths.summary_html, lang, [report_href(n) for n in names], heading)
    write_csv_text(summary_csv(summary, lang), paths.summary_csv)
    write_grades_csv(results, paths.grades_csv, lang)
    write_junit_xml(results, paths.junit_xml, lang)
    return paths
