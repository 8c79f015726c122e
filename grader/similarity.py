"""Flag pairs of submissions whose CustomRNN / CustomLSTM code is suspiciously alike.

The method is the published MOSS idea (Schleimer, Wilkerson, Aiken 2003, "Winnowing"),
written here from its description:

1. take each notebook's class sources (the last definition, as the kernel would hold it);
2. lex them with `tokenize` and normalise: every identifier becomes `V`, every number `N`,
   every string `S`; comments, docstrings, blank lines and line breaks inside brackets
   vanish; keywords, operators and block structure (INDENT/DEDENT/statement end) stay.
   Renaming, reformatting and recommenting therefore change nothing;
3. hash every run of K tokens (a k-gram) and winnow: in each window of W consecutive
   hashes keep the smallest. Any match of at least T = W + K - 1 tokens is guaranteed to
   leave a shared fingerprint; matches shorter than K tokens never do (noise floor);
4. drop every fingerprint whose k-gram occurs in the student template (the skeleton every
   student was given), and every fingerprint shared by too many submissions (code the
   exercise forces on everybody carries no evidence of copying);
5. find candidate pairs with an inverted index (fingerprint -> submissions), so the work
   grows with the number of shared fingerprints, not with n^2;
6. score each class by the Jaccard index of the two fingerprint sets, |A n B| / |A u B|,
   and map the shared fingerprints back to cell and line ranges for a human to look at.

The result is a list for a human to read, never a verdict or a penalty.
See docs/similarity.md for the choice of K, W, the threshold and the limits.

Submissions are hostile input, and one of them must never cost the class its
comparison: each submission's share of the work (class extraction, lexing,
fingerprinting) is bounded (MAX_CLASS_CHARS, MAX_TOKENS, FINGERPRINT_DEADLINE_S)
and isolated; one that exceeds a bound, or whose analysis raises anything, is
left out with a note (`LeftOut`) and the others are compared as usual.

Longer than most modules: the method is one pipeline (normalise, fingerprint, pair,
bound), and its bounds (time, size, common fingerprints) only hold if they are
enforced where each step runs; the class summary reads its result as plain dicts.
"""
from __future__ import annotations

import hashlib
import io
import keyword
import logging
import math
import time
import tokenize
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from grader.errors import GraderError
from grader.lab_api import CLASS_NAMES
from grader.messages import DEFAULT_LANGUAGE, Msg, render
from grader.notebook import (
    MAX_PARSE_CHARS,
    class_block_end,
    class_header_name,
    code_cells,
    find_class_sources,
    python_source,
    read_notebook,
)
from grader.paths import TEMPLATE_NOTEBOOK

log = logging.getLogger(__name__)

# One gate line of the LSTM normalises to ~22 tokens (`V = V . V ( V @ V . V + ... ) ;`).
# K = 15 is below one such statement, so a copied statement always yields k-grams, yet long
# enough that `self.V = V.V(V.V(V, V))`-shaped boilerplate alone does not fill a k-gram.
K = 15
# W = 10 gives the guarantee T = W + K - 1 = 24 tokens: any copied run longer than about one
# LSTM gate line is certain to share a fingerprint, and we keep ~2/(W+1) = 18% of k-grams.
W = 10
# A class is flagged when the Jaccard index of its informative fingerprints reaches this.
# A renamed, reformatted copy scores 0.9-1.0; independent correct solutions in different
# styles score at most 0.26 in our tests; 0.5 still catches a copy padded with as much
# new code again as it copied (docs/similarity.md).
DEFAULT_THRESHOLD = 0.5
# Fewer shared fingerprints than this is too little code to judge (a student who wrote one
# line would otherwise score 1.0 against anyone who wrote the same line).
MIN_SHARED = 6
# A fingerprint found in more than max(MIN_COMMON, COMMON_SHARE * n) submissions is code the
# exercise forces (MOSS's -m option plays the same role): it is ignored.
MIN_COMMON = 10
COMMON_SHARE = 0.05

# Bounds on one submission's share of the work. The reference's CustomLSTM is 3.6 KB and
# 522 tokens; a class past either bound is not a lab answer, and lexing and hashing it
# would only spend the class's time.
MAX_CLASS_CHARS = MAX_PARSE_CHARS
MAX_TOKENS = 20_000
# Wall time for one submission's extraction and fingerprinting (an honest one takes ~10 ms).
# Checked between cells and every _CLOCK_EVERY tokens; no single step in between is slow,
# since each works on at most MAX_CLASS_CHARS (parsing: grader.notebook.parse_source).
FINGERPRINT_DEADLINE_S = 5.0
_CLOCK_EVERY = 512

# Why a submission was left out of the comparison (LeftOut.reason).
NOT_A_NOTEBOOK = "not_a_notebook"
TOO_LARGE = "too_large"
DEADLINE = "deadline"
FAILED = "failed"


@dataclass(frozen=True)
class Token:
    """A normalised token and the class-relative lines it came from (1-based)."""

    text: str
    first_line: int
    last_line: int


@dataclass(frozen=True)
class ClassSource:
    """One class's source and where it sits in the notebook."""

    name: str
    text: str
    cell: int  # index among all cells
    line: int  # 1-based line of the class's first line within the cell


@dataclass(frozen=True)
class Fingerprint:
    hash: int
    cell: int
    first_line: int  # 1-based, within the cell
    last_line: int


@dataclass(frozen=True)
class LineRange:
    cell: int
    start: int
    end: int

    def to_dict(self) -> dict[str, int]:
        return {"cell": self.cell, "start": self.start, "end": self.end}

    def label(self) -> str:
        lines = f"{self.start}" if self.start == self.end else f"{self.start}-{self.end}"
        return f"{self.cell}:{lines}"


@dataclass(frozen=True)
class ClassMatch:
    """How much of one class two submissions share, and where."""

    name: str
    score: float
    shared: int
    a_lines: tuple[LineRange, ...]
    b_lines: tuple[LineRange, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "score": self.score, "shared": self.shared,
                "a_lines": [r.to_dict() for r in self.a_lines],
                "b_lines": [r.to_dict() for r in self.b_lines]}


@dataclass(frozen=True)
class SimilarPair:
    """Two submissions whose class code is alike enough for a human to compare."""

    a: str
    b: str
    score: float  # the highest class score, 0..1
    classes: tuple[str, ...]  # the classes above the threshold
    note: str  # one line for a human, in the language asked for
    matches: tuple[ClassMatch, ...] = ()
    note_msg: Msg | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "score": self.score, "classes": list(self.classes),
                "note": self.note, "matches": [m.to_dict() for m in self.matches],
                "note_i18n": self.note_msg.to_json() if self.note_msg else None}


@dataclass(frozen=True)
class LeftOut:
    """A submission the comparison could not include, and why, for the class summary."""

    id: str
    reason: str  # NOT_A_NOTEBOOK, TOO_LARGE, DEADLINE or FAILED
    note_msg: Msg

    def to_dict(self, lang: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
        return {"id": self.id, "reason": self.reason, "note": render(self.note_msg, lang),
                "note_i18n": self.note_msg.to_json()}


@dataclass(frozen=True)
class SimilarityReport:
    """The flagged pairs, and the submissions left out of the comparison."""

    pairs: list[SimilarPair]
    left_out: list[LeftOut]


class _Unanalysable(Exception):
    """One submission's code cannot be compared (a bound was reached): it is left out."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Deadline:
    at: float

    @classmethod
    def after(cls, seconds: float) -> _Deadline:
        return cls(time.monotonic() + seconds)

    def check(self) -> None:
        if time.monotonic() > self.at:
            raise _Unanalysable(DEADLINE)


_NO_DEADLINE = _Deadline(math.inf)


def left_out_note(reason: str, error: str = "") -> Msg:
    """The summary's note for a submission left out of the comparison."""
    params: dict[str, Any] = {"limit": MAX_CLASS_CHARS, "tokens": MAX_TOKENS,
                              "seconds": FINGERPRINT_DEADLINE_S, "error": error}
    return Msg(f"similarity.left_out_{reason}", params)


# ---------------------------------------------------------------- class sources


def class_sources(nb: nbformat.NotebookNode, names: Iterable[str] = CLASS_NAMES, *,
                  deadline: _Deadline = _NO_DEADLINE) -> dict[str, ClassSource]:
    """Each named class's last definition, with its cell and line.

    Parseable cells go through grader.notebook.find_class_sources (the definition the
    kernel would hold). A class in a cell that does not parse (the template's
    `x = # TODO` gaps, a half-finished submission) is cut out by indentation instead,
    since tokenize, unlike ast, does not need the cell to be valid Python.
    """
    names = list(names)
    found: dict[str, ClassSource] = {}
    for name, segment in find_class_sources(nb, names).items():
        located = _locate(nb, segment, deadline)
        if located is not None:
            found[name] = ClassSource(name, segment, *located)
    for name in names:
        if name not in found:
            loose = _loose_class(nb, name, deadline)
            if loose is not None:
                found[name] = loose
    return found


def _locate(nb: nbformat.NotebookNode, segment: str, deadline: _Deadline) -> tuple[int, int] | None:
    """(cell index, 1-based line) of the last cell holding `segment`."""
    for cell in reversed(code_cells(nb)):
        deadline.check()
        text = python_source(cell.source)
        at = text.rfind(segment)
        if at >= 0:
            return cell.index, text.count("\n", 0, at) + 1
    return None


def _loose_class(nb: nbformat.NotebookNode, name: str, deadline: _Deadline) -> ClassSource | None:
    """The last `class name` block found by indentation alone."""
    last: ClassSource | None = None
    for cell in code_cells(nb):
        deadline.check()
        if name not in cell.source:
            continue
        lines = cell.source.splitlines()
        for start, line in enumerate(lines):
            if class_header_name(line) == name:
                last = ClassSource(name, "\n".join(lines[start : class_block_end(lines, start)]), cell.index, start + 1)
    return last


# ---------------------------------------------------------------- tokens

_DROP = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER}
_STATEMENT_END = ";"


def normalise(source: str, *, deadline: _Deadline = _NO_DEADLINE, max_tokens: int | None = None) -> list[Token]:
    """The class's tokens with names, numbers and strings replaced by placeholders.

    With `max_tokens`, a class with more tokens than that raises _Unanalysable (as does
    the deadline passing): lexing stops there, so the work is bounded either way.
    """
    raw: list[Token] = []
    for count, tok in enumerate(_lex(source), 1):
        if count % _CLOCK_EVERY == 0:
            deadline.check()
        if tok.type in _DROP:
            continue
        raw.append(Token(_placeholder(tok), tok.start[0], tok.end[0]))
        if max_tokens is not None and len(raw) > max_tokens:
            raise _Unanalysable(TOO_LARGE)
    return _drop_docstrings(raw)


def _lex(source: str) -> Iterable[tokenize.TokenInfo]:
    """tokenize's tokens, stopping quietly where the source stops being Python."""
    try:
        yield from tokenize.generate_tokens(io.StringIO(source + "\n").readline)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return


def _placeholder(tok: tokenize.TokenInfo) -> str:
    if tok.type == tokenize.NAME:
        return tok.string if keyword.iskeyword(tok.string) else "V"
    if tok.type == tokenize.NUMBER:
        return "N"
    if tok.type == tokenize.STRING:
        return "S"
    if tok.type == tokenize.NEWLINE or tok.string == ";":
        return _STATEMENT_END
    if tok.type == tokenize.INDENT:
        return "{"
    if tok.type == tokenize.DEDENT:
        return "}"
    return tok.string


def _drop_docstrings(tokens: list[Token]) -> list[Token]:
    """A string that is a whole statement is documentation: it goes, like a comment."""
    out: list[Token] = []
    skip_end = False
    for i, tok in enumerate(tokens):
        if skip_end and tok.text == _STATEMENT_END:
            skip_end = False  # the statement end of a dropped docstring
            continue
        skip_end = False
        before = out[-1].text if out else _STATEMENT_END
        after = tokens[i + 1].text if i + 1 < len(tokens) else _STATEMENT_END
        if tok.text == "S" and before in (_STATEMENT_END, "{", "}") and after == _STATEMENT_END:
            skip_end = True
            continue
        out.append(tok)
    return out


# ---------------------------------------------------------------- fingerprints

def kgram_hashes(tokens: list[Token], k: int = K) -> list[int]:
    """A stable 64-bit hash of every run of k tokens (the same in every process)."""
    texts = [t.text for t in tokens]
    return [
        int.from_bytes(hashlib.blake2b("\x1f".join(texts[i : i + k]).encode(), digest_size=8).digest(), "big")
        for i in range(len(texts) - k + 1)
    ]


def winnow(hashes: list[int], w: int = W) -> list[int]:
    """Positions chosen by winnowing: the rightmost minimum of each window of w hashes.

    A list shorter than one window still contributes its minimum, so a short class
    is not invisible.
    """
    if not hashes:
        return []
    if len(hashes) <= w:
        return [min(range(len(hashes)), key=lambda i: (hashes[i], -i))]
    chosen: list[int] = []
    for start in range(len(hashes) - w + 1):
        window = range(start, start + w)
        pick = min(window, key=lambda i: (hashes[i], -i))
        if not chosen or chosen[-1] != pick:
            chosen.append(pick)
    return chosen


def fingerprints(source: ClassSource, ignore: set[int], k: int = K, w: int = W, *,
                 deadline: _Deadline = _NO_DEADLINE) -> list[Fingerprint]:
    """The class's winnowed fingerprints, less those whose k-gram is in `ignore`, placed in the cell.

    A class over MAX_CLASS_CHARS or MAX_TOKENS raises _Unanalysable: it is not compared.
    """
    if len(source.text) > MAX_CLASS_CHARS:
        raise _Unanalysable(TOO_LARGE)
    tokens = normalise(source.text, deadline=deadline, max_tokens=MAX_TOKENS)
    deadline.check()
    hashes = kgram_hashes(tokens, k)
    offset = source.line - 1
    out = []
    for i in winnow(hashes, w):
        if hashes[i] in ignore:
            continue
        out.append(Fingerprint(hashes[i], source.cell, tokens[i].first_line + offset,
                               tokens[i + k - 1].last_line + offset))
    return out


def template_kgrams(template: nbformat.NotebookNode, names: Iterable[str] = CLASS_NAMES, k: int = K) -> set[int]:
    """Every k-gram (not only winnowed ones) of the template's class skeletons.

    All k-grams, so that any student fingerprint falling entirely inside template code
    is recognised whatever the winnowing picked in the template itself.
    """
    found: set[int] = set()
    for source in class_sources(template, names).values():
        found.update(kgram_hashes(normalise(source.text), k))
    return found


# ---------------------------------------------------------------- comparison

@dataclass
class _Submission:
    id: str
    # class name -> hash -> where it occurs (a hash may occur more than once)
    classes: dict[str, dict[int, list[Fingerprint]]]


def find_similar(submissions: Mapping[str, nbformat.NotebookNode], template: nbformat.NotebookNode, *,
                 threshold: float = DEFAULT_THRESHOLD, min_shared: int = MIN_SHARED,
                 common_limit: int | None = None, names: Iterable[str] = CLASS_NAMES,
                 lang: str = DEFAULT_LANGUAGE) -> list[SimilarPair]:
    """Pairs of submissions with a class scoring at least `threshold`, highest score first.

    `common_limit`: a fingerprint found in more submissions than this is ignored as code
    the exercise forces (default max(10, 5% of the class)). Submissions that cannot be
    compared are left out (`compare` says which).
    """
    return compare(submissions, template, threshold=threshold, min_shared=min_shared,
                   common_limit=common_limit, names=names, lang=lang).pairs


def compare(submissions: Mapping[str, nbformat.NotebookNode], template: nbformat.NotebookNode, *,
            threshold: float = DEFAULT_THRESHOLD, min_shared: int = MIN_SHARED,
            common_limit: int | None = None, names: Iterable[str] = CLASS_NAMES,
            lang: str = DEFAULT_LANGUAGE, deadline_s: float = FINGERPRINT_DEADLINE_S) -> SimilarityReport:
    """`find_similar`'s pairs, and the submissions left out (each alone: the others are compared)."""
    names = tuple(names)
    ignore = template_kgrams(template, names)
    subs: list[_Submission] = []
    left_out: list[LeftOut] = []
    for sid, nb in sorted(submissions.items()):
        done = _try_fingerprint(sid, nb, ignore, names, deadline_s)
        (left_out if isinstance(done, LeftOut) else subs).append(done)  # type: ignore[arg-type]
    return SimilarityReport(_pairs(subs, threshold, min_shared, common_limit, lang), left_out)


def _pairs(subs: list[_Submission], threshold: float, min_shared: int, common_limit: int | None,
           lang: str) -> list[SimilarPair]:
    if common_limit is None:
        common_limit = max(MIN_COMMON, math.ceil(COMMON_SHARE * len(subs)))
    index = _inverted_index(subs)
    common = {key for key, owners in index.items() if len(owners) > common_limit}
    shared = _shared_counts(index, common)
    pairs = []
    for (i, j), per_class in shared.items():
        pair = _judge(subs[i], subs[j], per_class, common, threshold, min_shared, lang)
        if pair is not None:
            pairs.append(pair)
    pairs.sort(key=lambda p: (-p.score, p.a, p.b))
    return pairs


def _try_fingerprint(sid: str, nb: nbformat.NotebookNode, ignore: set[int], names: tuple[str, ...],
                     deadline_s: float) -> _Submission | LeftOut:
    """The submission's fingerprints, or why it is left out. Never raises: a bug or a resource
    error on one submission's code must not cost the class its comparison."""
    try:
        return _fingerprint_submission(sid, nb, ignore, names, _Deadline.after(deadline_s))
    except _Unanalysable as exc:
        return LeftOut(sid, exc.reason, left_out_note(exc.reason))
    except Exception as exc:
        log.warning("fingerprinting %s failed; it is left out of the comparison", sid, exc_info=True)
        return LeftOut(sid, FAILED, left_out_note(FAILED, type(exc).__name__))


def _fingerprint_submission(sid: str, nb: nbformat.NotebookNode, ignore: set[int],
                            names: tuple[str, ...], deadline: _Deadline = _NO_DEADLINE) -> _Submission:
    classes: dict[str, dict[int, list[Fingerprint]]] = {}
    for name, source in class_sources(nb, names, deadline=deadline).items():
        by_hash: dict[int, list[Fingerprint]] = defaultdict(list)
        for fp in fingerprints(source, ignore, deadline=deadline):
            by_hash[fp.hash].append(fp)
        classes[name] = dict(by_hash)
    deadline.check()
    return _Submission(sid, classes)


def _inverted_index(subs: list[_Submission]) -> dict[tuple[str, int], list[int]]:
    """(class, hash) -> the submissions holding it, each once, in order."""
    index: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, sub in enumerate(subs):
        for name, by_hash in sub.classes.items():
            for h in by_hash:
                index[(name, h)].append(i)
    return index


def _shared_counts(index: dict[tuple[str, int], list[int]],
                   common: set[tuple[str, int]]) -> dict[tuple[int, int], dict[str, int]]:
    """Candidate pairs: those sharing at least one informative fingerprint, counted per class.

    Common fingerprints are skipped before pairing, which also bounds the work per
    fingerprint at common_limit^2 pairs.
    """
    counts: dict[tuple[int, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for key, owners in index.items():
        if len(owners) < 2 or key in common:
            continue
        name = key[0]
        for x in range(len(owners)):
            for y in range(x + 1, len(owners)):
                counts[(owners[x], owners[y])][name] += 1
    return counts


def _judge(a: _Submission, b: _Submission, per_class: dict[str, int], common: set[tuple[str, int]],
           threshold: float, min_shared: int, lang: str) -> SimilarPair | None:
    matches = []
    for name, count in sorted(per_class.items()):
        if count < min_shared:
            continue
        size_a = sum(1 for h in a.classes[name] if (name, h) not in common)
        size_b = sum(1 for h in b.classes[name] if (name, h) not in common)
        # Jaccard, not containment: in this fill-in-the-gaps lab much of a small class is
        # forced by the template, so containment of the smaller side flagged independent
        # RNNs (0.53); Jaccard puts them at 0.26 and verbatim copies at 0.9-1.0.
        score = count / max(1, size_a + size_b - count)
        if score >= threshold:
            matches.append(_class_match(a, b, name, round(min(score, 1.0), 3), count, common))
    if not matches:
        return None
    note = Msg("similarity.note", {"classes": ", ".join(m.name for m in matches),
                                   "percent": round(100 * max(m.score for m in matches)),
                                   "where": "; ".join(_where(m) for m in matches)})
    return SimilarPair(a=a.id, b=b.id, score=max(m.score for m in matches),
                       classes=tuple(m.name for m in matches), note=render(note, lang),
                       matches=tuple(matches), note_msg=note)


def _class_match(a: _Submission, b: _Submission, name: str, score: float, shared: int,
                 common: set[tuple[str, int]]) -> ClassMatch:
    keys = {h for h in a.classes[name].keys() & b.classes[name].keys() if (name, h) not in common}
    return ClassMatch(name, score, shared,
                      merge_ranges(fp for h in keys for fp in a.classes[name][h]),
                      merge_ranges(fp for h in keys for fp in b.classes[name][h]))


def merge_ranges(fps: Iterable[Fingerprint]) -> tuple[LineRange, ...]:
    """Overlapping or adjacent fingerprint spans, joined into line ranges per cell."""
    spans = sorted((fp.cell, fp.first_line, fp.last_line) for fp in fps)
    merged: list[list[int]] = []
    for cell, start, end in spans:
        if merged and merged[-1][0] == cell and start <= merged[-1][2] + 1:
            merged[-1][2] = max(merged[-1][2], end)
        else:
            merged.append([cell, start, end])
    return tuple(LineRange(c, s, e) for c, s, e in merged)


def _where(match: ClassMatch) -> str:
    a = ",".join(r.label() for r in match.a_lines)
    b = ",".join(r.label() for r in match.b_lines)
    return f"{match.name} [{a}] ~ [{b}]"


@dataclass(frozen=True)
class BatchSimilarity:
    """A batch's comparison as the class summary takes it: plain dicts."""

    pairs: list[dict[str, Any]]     # SimilarPair.to_dict() of each flagged pair
    left_out: list[dict[str, Any]]  # LeftOut.to_dict() of each submission not compared


def similarity_for_files(files: Mapping[str, Path], *, template: Path = TEMPLATE_NOTEBOOK,
                         lang: str = DEFAULT_LANGUAGE) -> BatchSimilarity:
    """`compare` for a batch's files. A file that is not a readable notebook is left out
    (its own verdict says why), as is one whose reading fails in any other way."""
    notebooks: dict[str, nbformat.NotebookNode] = {}
    left_out: list[LeftOut] = []
    for sid, path in files.items():
        try:
            notebooks[sid] = read_notebook(Path(path))
        except GraderError:
            left_out.append(LeftOut(sid, NOT_A_NOTEBOOK, left_out_note(NOT_A_NOTEBOOK)))
        except Exception as exc:
            log.warning("reading %s failed; it is left out of the comparison", sid, exc_info=True)
            left_out.append(LeftOut(sid, FAILED, left_out_note(FAILED, type(exc).__name__)))
    report = compare(notebooks, read_notebook(template), lang=lang)
    everyone_left_out = sorted(left_out + report.left_out, key=lambda item: item.id)
    return BatchSimilarity([pair.to_dict() for pair in report.pairs],
                           [item.to_dict(lang) for item in everyone_left_out])


def similar_pairs_for_files(files: Mapping[str, Path], *, template: Path = TEMPLATE_NOTEBOOK,
                            lang: str = DEFAULT_LANGUAGE) -> list[dict[str, Any]]:
    """The flagged pairs of `similarity_for_files` (`to_dict()` of each pair)."""
    return similarity_for_files(files, template=template, lang=lang).pairs
