"""Student text made safe to show: on a terminal, in JSON on a terminal, in HTML.

Much of what the grader prints came from a notebook: exception names and
values, messages quoting student code, cell output, file names, student ids.
A terminal obeys the control characters in such text: ESC (and its 8-bit C1
forms) starts CSI/OSC/DCS/... sequences that move the cursor, redraw or hide
lines, set the window title, or write the clipboard (OSC 52); CR and BS
overwrite what was printed; bidi overrides and isolates reorder what a reader
sees. So every such string goes through `safe_text` before a terminal gets it.

Visible forms (each made of printable characters only, none of them a quote,
backslash or HTML-special character, so the result is equally safe inside a
JSON string or an HTML page, and sanitising twice changes nothing):

- C0 controls U+0000-U+001F: their Unicode control picture U+2400+n, so ESC
  shows as "␛", BEL as "␇", CR as "␍", LF as "␊", TAB as "␉". In a block
  (`multiline=True`) LF and TAB stay as they are; in a one-line field (the
  default) they become pictures too, so a row stays one row.
- DEL U+007F: "␡".
- C1 controls U+0080-U+009F (8-bit CSI, OSC, DCS, NEL, ...), the bidi
  embeddings, overrides, isolates and marks (U+202A-U+202E, U+2066-U+2069,
  U+200E, U+200F, U+061C), the line and paragraph separators U+2028/U+2029
  and lone surrogates (which a UTF-8 stream cannot even encode): "[U+XXXX]".

Escape sequences, complete or cut short, are neutralised by the first rule:
their introducer (ESC, or the C1 CSI/OSC/DCS/APC/PM/SOS) becomes a visible
picture, so the terminal never sees a sequence start, and the rest of it is
printed as the inert text it then is ("␛]0;title␇"). The reader sees what was
attempted instead of its effect, and nothing needs parsing: one `str.translate`
per string, linear in its length, the same result however a stream's writes
split the text.

`SafeStream` applies this at the printing layer (the CLI wraps stdout and
stderr in it), with `write_control` as the one way for the grader's own
colours and redraws to reach the terminal. `json_safe` does the lossless
equivalent for JSON text; `html_safe` is the jinja2 `finalize` of the HTML
reports, where only the bidi controls need neutralising (autoescape handles
the rest; lone surrogates are marked too, as UTF-8 cannot encode them).
"""
from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any, TextIO

_C0 = range(0x00, 0x20)
_DEL = 0x7F
_C1 = range(0x80, 0xA0)
# Embeddings/overrides, isolates, the LRM/RLM marks and the Arabic letter mark.
BIDI_CONTROLS = (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)
_LINE_SEPARATORS = (0x2028, 0x2029)
_SURROGATES = range(0xD800, 0xE000)


def _marker(code: int) -> str:
    return f"[U+{code:04X}]"


def _build_table(*, keep: str) -> dict[int, str]:
    table = {code: chr(0x2400 + code) for code in _C0}
    table[_DEL] = "\u2421"
    for code in (*_C1, *BIDI_CONTROLS, *_LINE_SEPARATORS, *_SURROGATES):
        table[code] = _marker(code)
    for ch in keep:
        del table[ord(ch)]
    return table


_LINE_TABLE = _build_table(keep="")
_BLOCK_TABLE = _build_table(keep="\n\t")
# Lone surrogates too: a page holding one cannot even be written as UTF-8 (a crash, not a report).
_HTML_TABLE = {code: _marker(code) for code in (*BIDI_CONTROLS, *_SURROGATES)}
# Inside JSON text these code points can only occur within strings (JSON's own
# whitespace is space, tab, LF, CR), so a \\uXXXX escape there is always valid.
_JSON_TABLE = {code: f"\\u{code:04x}" for code in (_DEL, *_C1, *BIDI_CONTROLS, *_LINE_SEPARATORS, *_SURROGATES)}


def safe_text(value: object, *, multiline: bool = False) -> str:
    """`value` as text a terminal shows literally (the visible forms are in the module docstring).

    `multiline=False` (a table cell, an id, a file name): no line breaks or tabs
    survive. `multiline=True` (a block the grader prints as several lines): LF
    and TAB are kept, every other control is made visible, CR included.
    """
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():
        return text  # the common case: nothing to replace, no copy
    return text.translate(_BLOCK_TABLE if multiline else _LINE_TABLE)


def safe_line(value: object) -> str:
    """A one-line field: `safe_text(value)`."""
    return safe_text(value)


def safe_block(value: object) -> str:
    """A multi-line block: `safe_text(value, multiline=True)`."""
    return safe_text(value, multiline=True)


def json_safe(json_text: str) -> str:
    """JSON text with DEL, C1, bidi controls, line separators and lone surrogates as \\uXXXX escapes.

    Lossless: `json.loads` gives back the same data, as it does from json.dumps'
    own output (a lone high surrogate followed by a lone low one reads back, in
    both, as the one character the pair encodes). json.dumps already escapes C0
    controls inside strings, even with ensure_ascii=False, but not these.
    """
    if json_text.isascii() and "\x7f" not in json_text:
        return json_text  # the common case; DEL is ASCII but still needs escaping
    return json_text.translate(_JSON_TABLE)


def html_safe(value: Any) -> Any:
    """jinja2 `finalize`: bidi controls (and lone surrogates) in any printed value become "[U+XXXX]".

    Autoescape makes student text inert as markup but leaves bidi overrides,
    which reorder what a reader sees of it. Markup (our own SVG charts) stays
    Markup; the markers contain no HTML-special character.
    """
    from markupsafe import Markup  # here: the terminal side of this module needs no jinja2

    if isinstance(value, Markup):
        return Markup(str(value).translate(_HTML_TABLE))
    if isinstance(value, str):
        return value.translate(_HTML_TABLE)
    return value  # numbers, None, and jinja2's Undefined (which must still raise when printed)


class SafeStream:
    """A text stream whose `write` shows student text literally; `write_control` is for the grader's own codes.

    Everything written through `write` is `safe_text(..., multiline=True)`:
    newlines and tabs pass, every other control is made visible. Anything else
    (isatty, flush, encoding, fileno, ...) is the wrapped stream's.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    @property
    def wrapped(self) -> TextIO:
        return self._stream

    def write(self, text: str) -> int:
        self._stream.write(safe_text(text, multiline=True))
        return len(text)

    def write_control(self, code: str) -> None:
        """Write the grader's own escape code (a colour, a redraw) unchanged. Never pass student text here."""
        write_control(self._stream, code)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def terminal_stream(stream: TextIO) -> TextIO:
    """`stream` wrapped in a SafeStream, unless it already is one (or is None: no console at all)."""
    if stream is None or isinstance(stream, SafeStream):
        return stream
    return SafeStream(stream)  # type: ignore[return-value]  # duck-typed: everything else is delegated


def write_control(stream: TextIO, code: str) -> None:
    """The grader's own escape code, raw, on `stream`: through a SafeStream's control channel if it is one."""
    if isinstance(stream, SafeStream):
        stream.write_control(code)
    else:
        stream.write(code)


def redraw_line(stream: TextIO, line: str) -> None:
    """Replace the terminal's current line with `line` (made safe): the grader's progress lines."""
    write_control(stream, "\r")
    stream.write(safe_line(line))
    write_control(stream, "\x1b[K")  # erase to the end: the line shrinks cleanly when it gets shorter
    stream.flush()


@contextlib.contextmanager
def safe_std_streams() -> Iterator[None]:
    """sys.stdout and sys.stderr wrapped in SafeStreams for the duration: every print is sanitised."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = terminal_stream(saved[0]), terminal_stream(saved[1])
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
