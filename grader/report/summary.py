"""The class summary: what a TA wants to know about a whole batch, from stored results.

`summarise(results, similar_pairs=None)` is pure and language-free: the texts
it keeps are message keys (as results store them), rendered by the CSV and
HTML writers in the language asked for.

Decisions:
- Score statistics (histogram, mean, median) cover **graded** submissions
  only: a file that was not a notebook or crashed the grader says nothing about
  what the class learned; those are listed under "problems" instead (and get 0
  in grades.csv).
- Histogram: 10 bins over percent, [0,10), [10,20), ... [90,100]; 100 falls in
  the last bin. Percent is rounded to 6 decimals first so 70 computed as
  69.99999999 lands in 70-80.
- Check pass rates are over graded submissions: passed / total, plus the
  other statuses' counts.
- A diagnosed mistake is counted once per submission, however many checks
  show it (a first-step readout breaks both lstm.forward and lstm.grad, but
  it is one mistake); `checks` says where it showed.
- Problems: every submission whose outcome is not "graded", and graded ones
  whose kernel died, that had a cell stopped by the time limit, or whose
  report could not be rendered (`render_error`, set by grader.report.outputs).
- Similar pairs are shown as "flagged for human review, not a penalty";
  `similar` is None when similarity was not run, [] when it ran and found none.
  Submissions the comparison left out (code too large or too slow to analyse,
  not a notebook: grader.similarity.LeftOut) are listed with the reason, so a
  TA knows who was not compared.
- One malformed similarity entry does not stop the others: it is shown as an
  entry that could not be rendered.

`summary_csv` writes one long-format table (one header, one row per fact) so a
TA can open it in Excel and filter the `section` column, and pandas reads it
directly:

    section,key,value,count,total,text
    overview,submissions,8,,,
    histogram,60-70,,1,7,
    check,lstm.forward,85.71,6,7,
    mistake,first_step_logits,,3,7,logits come from the first time step ...
    problem,bob,bad_input,,,not graded (bad input): ...
    slowest,alice,9.3,,,
    similarity,alice / carol,0.97,,,CustomLSTM; <note>
    similarity_left_out,dave,too_large,,,not compared: a class is too large ...
"""
from __future__ import annotations

import csv
import io
import logging
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from grader.messages import Msg, render, text
from grader.plain_numbers import finite_float
from grader.report.grades_csv import format_number, percent_of, safe_cell
from grader.report.results import StoredCheck, StoredResult, as_dict
from grader.rubric import CHECK_IDS

log = logging.getLogger(__name__)

BINS = 10
SLOWEST = 10
SUMMARY_COLUMNS = ("section", "key", "value", "count", "total", "text")


@dataclass(frozen=True)
class SubmissionRow:
    """One submission as the summary lists it; `index` is its position in the input (for links)."""

    index: int
    submission_id: str
    file: str
    outcome: str
    score: float
    max_score: float
    percent: float
    duration_s: float
    name: str = ""  # from the roster
    grader_score: float | None = None  # the grader's own total, where a TA's override changed it


@dataclass(frozen=True)
class HistogramBin:
    low: int
    high: int
    count: int

    @property
    def label(self) -> str:
        return f"{self.low}-{self.high}"


@dataclass(frozen=True)
class CheckRate:
    check_id: str
    passed: int
    failed: int
    error: int
    skipped: int

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.error + self.skipped

    @property
    def rate(self) -> float | None:
        return self.passed / self.total if self.total else None


@dataclass(frozen=True)
class Mistake:
    """A diagnosed mistake (stable code) and how many submissions made it."""

    code: str
    count: int
    checks: tuple[str, ...]
    message: dict[str, Any] | None  # the diagnosis as a stored Msg, to render in any language
    fallback: str  # the diagnosis text as stored, for results without a message key

    def text(self, lang: str) -> str:
        msg = Msg.from_json(self.message)
        return render(msg, lang) if msg is not None else (self.fallback or self.code)


@dataclass(frozen=True)
class Problem:
    """A submission that was not graded, or was graded after a kernel death or a cell timeout."""

    row: SubmissionRow
    kinds: tuple[str, ...]  # outcome ("bad_input", "crashed", "timeout"), "kernel_died", "cell_timeout", "render_error"
    cells: tuple[int, ...]  # the cells stopped by the time limit
    error: str | None


@dataclass(frozen=True)
class SimilarPair:
    """A pair from grader.similarity (its `to_dict()`): for a human to compare, never a penalty."""

    a: str
    b: str
    score: float
    classes: tuple[str, ...]
    note: str
    note_message: dict[str, Any] | None = None  # `note_i18n`: the note as a stored Msg

    def note_text(self, lang: str) -> str:
        msg = Msg.from_json(self.note_message)
        return render(msg, lang) if msg is not None else self.note


@dataclass(frozen=True)
class LeftOutOfSimilarity:
    """A submission the similarity comparison left out (grader.similarity.LeftOut.to_dict())."""

    submission_id: str
    reason: str
    note: str
    note_message: dict[str, Any] | None = None

    def note_text(self, lang: str) -> str:
        msg = Msg.from_json(self.note_message)
        return render(msg, lang) if msg is not None else self.note


@dataclass(frozen=True)
class ClassSummary:
    submissions: tuple[SubmissionRow, ...]
    histogram: tuple[HistogramBin, ...]
    mean_percent: float | None
    median_percent: float | None
    mean_score: float | None
    median_score: float | None
    checks: tuple[CheckRate, ...]
    mistakes: tuple[Mistake, ...]
    problems: tuple[Problem, ...]
    slowest: tuple[SubmissionRow, ...]
    similar: tuple[SimilarPair, ...] | None = None
    max_score: float | None = None
    graded_count: int = 0
    similarity_left_out: tuple[LeftOutOfSimilarity, ...] = ()

    @property
    def count(self) -> int:
        return len(self.submissions)


def _row(index: int, result: StoredResult) -> SubmissionRow:
    score = float(result.get("score") or 0.0)
    max_score = float(result.get("max_score") or 0.0)
    return SubmissionRow(
        index=index, submission_id=str(result["submission_id"]), file=str(result.get("file") or ""),
        outcome=str(result.get("outcome") or "graded"), score=score, max_score=max_score,
        percent=round(percent_of(score, max_score), 6), duration_s=float(result.get("duration_s") or 0.0),
        name=str(result.get("student_name") or "")[:200],
        grader_score=finite_float(result.get("grader_score")) if result.get("overridden") else None)


def histogram(percents: Iterable[float]) -> tuple[HistogramBin, ...]:
    width = 100 // BINS
    counts = [0] * BINS
    for p in percents:
        # A tampered result can make a percentage nan (no bin: int() raises) or infinite (the end bins).
        if p != p:
            continue
        counts[min(int(min(max(p, 0.0), 100.0) // width), BINS - 1)] += 1
    return tuple(HistogramBin(i * width, (i + 1) * width, n) for i, n in enumerate(counts))


def check_rates(graded: Sequence[StoredResult]) -> tuple[CheckRate, ...]:
    tallies: dict[str, Counter[str]] = {c: Counter() for c in CHECK_IDS}
    for result in graded:
        for check in result["checks"]:
            tallies.setdefault(str(check["id"]), Counter())[str(check.get("status"))] += 1
    return tuple(CheckRate(cid, t["passed"], t["failed"], t["error"], t["skipped"])
                 for cid, t in tallies.items() if cid in CHECK_IDS or t.total())


def mistakes(graded: Sequence[StoredResult]) -> tuple[Mistake, ...]:
    counts: Counter[str] = Counter()
    where: dict[str, list[str]] = {}
    first: dict[str, StoredCheck] = {}
    for result in graded:
        seen: set[str] = set()
        for check in result["checks"]:
            details = check.get("details")
            code = details.get("diagnosis") if isinstance(details, dict) else None
            if not isinstance(code, str) or not code:
                continue
            seen.add(code)
            first.setdefault(code, check)
            if check["id"] not in where.setdefault(code, []):
                where[code].append(str(check["id"]))
        counts.update(seen)
    out = []
    for code, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        check = first[code]
        message = as_dict(check.get("i18n")).get("diagnosis")
        out.append(Mistake(code, count, tuple(where[code]), message if isinstance(message, dict) else None,
                           str(check.get("diagnosis") or "")))
    return tuple(out)


def problem(row: SubmissionRow, result: StoredResult) -> Problem | None:
    kinds: list[str] = [] if row.outcome == "graded" else [row.outcome]
    if result.get("kernel_died"):
        kinds.append("kernel_died")
    if result.get("render_error"):  # grader.report.outputs: an error entry stands in for its report
        kinds.append("render_error")
    if result.get("on_roster") is False:  # grader.roster: a submission the roster does not list
        kinds.append("not_on_roster")
    if result.get("needs_review") is True:  # grader.overrides: a TA's override predates the notebook graded
        kinds.append("needs_review")
    cells = tuple(int(c.get("index", -1)) for c in result.get("cells") or []
                  if isinstance(c, dict) and c.get("status") == "timeout")
    if cells:
        kinds.append("cell_timeout")
    return Problem(row, tuple(kinds), cells, result.get("error")) if kinds else None


def similar(pairs: Iterable[dict[str, Any]]) -> tuple[SimilarPair, ...]:
    out = [_similar_pair(p) for p in pairs]
    return tuple(sorted(out, key=lambda p: (-p.score, p.a, p.b)))


def _similar_pair(p: Any) -> SimilarPair:
    """One pair; a malformed one becomes an entry saying it could not be rendered."""
    try:
        score = float(p.get("score", 0.0))
        if score != score:  # nan would make the sort order meaningless
            raise ValueError("score is nan")
        return SimilarPair(str(p["a"]), str(p["b"]), score,
                           tuple(str(c) for c in p.get("classes") or ()), str(p.get("note") or ""),
                           p["note_i18n"] if isinstance(p.get("note_i18n"), dict) else None)
    except Exception:  # a stored entry edited by hand, or a bug of ours: the traceback says which
        log.debug("a similarity entry could not be rendered", exc_info=True)
        return SimilarPair(_field(p, "a"), _field(p, "b"), 0.0, (), "",
                           Msg("summary.similarity_entry_error").to_json())


def _field(entry: Any, key: str) -> str:
    value = entry.get(key) if isinstance(entry, dict) else None
    return "?" if value is None else str(value)


def left_out_of_similarity(entries: Iterable[dict[str, Any]]) -> tuple[LeftOutOfSimilarity, ...]:
    out = []
    for entry in entries:
        message = entry.get("note_i18n") if isinstance(entry, dict) else None
        if not isinstance(message, dict):
            message = Msg("summary.similarity_entry_error").to_json()
        out.append(LeftOutOfSimilarity(_field(entry, "id"), _field(entry, "reason"),
                                       _field(entry, "note"), message))
    return tuple(sorted(out, key=lambda item: item.submission_id))


def _mean_median(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), statistics.median(values)


def summarise(results: Sequence[StoredResult], similar_pairs: Sequence[dict[str, Any]] | None = None,
              similarity_left_out: Sequence[dict[str, Any]] = ()) -> ClassSummary:
    """The class summary of stored (validated) results, in the order given.

    `similarity_left_out`: grader.similarity's LeftOut entries (`to_dict()`), shown
    only when similarity ran (`similar_pairs` is not None).
    """
    rows = [_row(i, r) for i, r in enumerate(results)]
    graded_pairs = [(row, r) for row, r in zip(rows, results) if row.outcome == "graded"]
    graded = [r for _, r in graded_pairs]
    mean_p, median_p = _mean_median([row.percent for row, _ in graded_pairs])
    mean_s, median_s = _mean_median([row.score for row, _ in graded_pairs])
    problems = [p for p in (problem(row, r) for row, r in zip(rows, results)) if p is not None]
    slowest = sorted(rows, key=lambda row: (-row.duration_s, row.submission_id, row.index))[:SLOWEST]
    return ClassSummary(
        submissions=tuple(rows),
        histogram=histogram(row.percent for row, _ in graded_pairs),
        mean_percent=mean_p, median_percent=median_p, mean_score=mean_s, median_score=median_s,
        checks=check_rates(graded), mistakes=mistakes(graded), problems=tuple(problems),
        slowest=tuple(slowest),
        similar=None if similar_pairs is None else similar(similar_pairs),
        max_score=rows[0].max_score if rows else None,
        graded_count=len(graded),
        similarity_left_out=() if similar_pairs is None else left_out_of_similarity(similarity_left_out),
    )


def problem_text(p: Problem, lang: str) -> str:
    """What went wrong, in `lang`: each kind's label, then the stored error."""
    parts = [text(f"summary.kind_{kind}", lang) for kind in p.kinds]
    if p.cells:
        parts.append(text("summary.cells", lang, cells=", ".join(str(c) for c in p.cells)))
    if p.error:
        parts.append(str(p.error))
    return "; ".join(parts)


def _num(value: float | None, decimals: int = 2) -> str:
    return "" if value is None else format_number(value, decimals)


def summary_rows(summary: ClassSummary, lang: str) -> list[list[str]]:
    """The long-format table described in the module docstring (header first)."""
    graded = str(summary.graded_count)
    rows: list[list[str]] = [list(SUMMARY_COLUMNS)]
    overview = (("submissions", str(summary.count)), ("graded", graded),
                ("max_score", _num(summary.max_score, 4)),
                ("mean_percent", _num(summary.mean_percent)), ("median_percent", _num(summary.median_percent)),
                ("mean_score", _num(summary.mean_score)), ("median_score", _num(summary.median_score)))
    rows += [["overview", key, value, "", "", text(f"summary.overview_{key}", lang)] for key, value in overview]
    rows += [["histogram", b.label, "", str(b.count), graded, ""] for b in summary.histogram]
    rows += [["check", c.check_id, _num(None if c.rate is None else 100 * c.rate), str(c.passed), str(c.total), ""]
             for c in summary.checks]
    rows += [["mistake", m.code, "", str(m.count), graded, f"{m.text(lang)} ({', '.join(m.checks)})"]
             for m in summary.mistakes]
    rows += [["problem", safe_cell(p.row.submission_id), " ".join(p.kinds), "", "", safe_cell(problem_text(p, lang))]
             for p in summary.problems]
    rows += [["slowest", safe_cell(s.submission_id), _num(s.duration_s, 3), "", "", ""] for s in summary.slowest]
    if summary.similar is None:
        rows.append(["similarity", "not_run", "", "", "", text("summary.similarity_not_run", lang)])
    elif not summary.similar:
        rows.append(["similarity", "none", "", "", "", text("summary.similarity_none", lang)])
    else:
        rows += [["similarity", safe_cell(f"{s.a} / {s.b}"), _num(s.score, 4), "", "",
                  safe_cell("; ".join(x for x in (", ".join(s.classes), s.note_text(lang)) if x))]
                 for s in summary.similar]
    rows += [["similarity_left_out", safe_cell(item.submission_id), safe_cell(item.reason), "", "",
              safe_cell(item.note_text(lang))] for item in summary.similarity_left_out]
    return rows


def summary_csv(summary: ClassSummary, lang: str) -> str:
    """The summary as CSV text (no BOM; `grades_csv.write_csv_text` adds it when writing)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(summary_rows(summary, lang))
    return buffer.getvalue()
