"""grader.safe_text: student text shown literally on a terminal, in JSON, in HTML (issue #12, part 6).

Every category a terminal obeys (C0, DEL, C1, escape sequences complete or cut
short, bidi controls) comes out visible; ordinary text (CJK, emoji, marks)
comes out unchanged; the work is linear (1 MB of the worst input is quick).
"""
from __future__ import annotations

import io
import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from grader.safe_text import (
    BIDI_CONTROLS,
    SafeStream,
    html_safe,
    json_safe,
    safe_block,
    safe_line,
    safe_std_streams,
    safe_text,
    terminal_stream,
    write_control,
)

ESC = "\x1b"
BEL = "\x07"
ST = ESC + "\\"
BIDI = [chr(c) for c in BIDI_CONTROLS]
SEPARATORS = ["\u2028", "\u2029"]


def forbidden(ch: str, *, multiline: bool = False) -> bool:
    """A code point a terminal (or a reader's eye) could be driven by; what must never come out."""
    code = ord(ch)
    if multiline and ch in "\n\t":
        return False
    return (code < 0x20 or 0x7F <= code <= 0x9F or ch in BIDI or ch in SEPARATORS
            or 0xD800 <= code <= 0xDFFF)


def assert_clean(text: str, *, multiline: bool = False) -> None:
    bad = sorted({f"U+{ord(ch):04X}" for ch in text if forbidden(ch, multiline=multiline)})
    assert not bad, bad


# ---------------------------------------------------------------- every category


@pytest.mark.parametrize("code", range(0x20))
def test_every_c0_control_becomes_its_picture(code):
    assert safe_line(f"a{chr(code)}b") == f"a{chr(0x2400 + code)}b"


def test_named_c0_pictures_read_well():
    assert safe_line("\x1b\x07\r\n\t\x08\x00") == "␛␇␍␊␉␈␀"


def test_del_becomes_a_picture():
    assert safe_line("a\x7fb") == "a␡b"


@pytest.mark.parametrize("code", range(0x80, 0xA0))
def test_every_c1_control_is_shown_by_its_code(code):
    assert safe_line(f"a{chr(code)}b") == f"a[U+{code:04X}]b"


@pytest.mark.parametrize("ch", BIDI)
def test_every_bidi_control_is_shown_by_its_code(ch):
    assert safe_line(f"a{ch}b") == f"a[U+{ord(ch):04X}]b"


def test_the_bidi_list_is_the_whole_set():
    expected = {*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C}
    assert set(BIDI_CONTROLS) == expected


def test_line_separators_and_lone_surrogates_are_shown():
    assert safe_line("a\u2028b\u2029c\ud800") == "a[U+2028]b[U+2029]c[U+D800]"
    # a lone surrogate would have made the write itself fail (UnicodeEncodeError: exit 3)
    safe_line("\udfff").encode("utf-8")


@pytest.mark.parametrize("sequence, shown", [
    (ESC + "]0;grader: 100/100 all passed" + BEL, "␛]0;grader: 100/100 all passed␇"),       # OSC 0, BEL
    (ESC + "]2;title" + ST, "␛]2;title␛\\"),                                               # OSC 2, ST
    (ESC + "]52;c;ZWNobyBwd25lZCB8IHNo" + BEL, "␛]52;c;ZWNobyBwd25lZCB8IHNo␇"),             # OSC 52
    (ESC + "[2A" + ESC + "[2K", "␛[2A␛[2K"),                                                # CSI cursor up, erase
    (ESC + "[31;1m", "␛[31;1m"),                                                           # SGR
    (ESC + "P1$r0m" + ST, "␛P1$r0m␛\\"),                                                   # DCS
    (ESC + "_apc" + ST + ESC + "^pm" + ST + ESC + "Xsos" + ST, "␛_apc␛\\␛^pm␛\\␛Xsos␛\\"),  # APC, PM, SOS
    (ESC + "c", "␛c"),                                                                     # RIS: full reset
    (ESC + "7" + ESC + "8", "␛7␛8"),                                                       # save/restore cursor
    ("\x9b2A\x9d0;t\x9c\x90q\x9c", "[U+009B]2A[U+009D]0;t[U+009C][U+0090]q[U+009C]"),       # 8-bit CSI, OSC, DCS
])
def test_escape_sequences_are_shown_not_obeyed(sequence, shown):
    assert safe_line("x" + sequence + "y") == "x" + shown + "y"


@pytest.mark.parametrize("partial", [ESC, ESC + "[", ESC + "[12;", ESC + "]0;no terminator", ESC + "P", "\x9b", "\x9d0;"])
def test_partial_sequences_at_the_end_are_shown(partial):
    out = safe_line("ok" + partial)
    assert_clean(out)
    assert out.startswith("ok") and len(out) >= len(partial) + 2


def test_a_one_line_field_keeps_no_line_break_a_block_keeps_lf_and_tab_only():
    text = "a\nb\tc\r\nd\x0b\x0ce"
    assert safe_line(text) == "a␊b␉c␍␊d␋␌e"
    assert safe_block(text) == "a\nb\tc␍\nd␋␌e"
    assert safe_text(text, multiline=True) == safe_block(text)


@pytest.mark.parametrize("text", ["", "plain ascii", "第 4 个单元格出错（ValueError）", "✓ ✗ — … 🙂 👨‍👩‍👧",
                                  "ümlaut café ñ", "עברית العربية", "a\u00a0b", "zero\u200bwidth"])
def test_ordinary_text_is_unchanged(text):
    assert safe_line(text) == text


def test_non_strings_are_shown_as_their_str():
    assert safe_line(3.5) == "3.5"
    assert safe_line(None) == "None"


# ---------------------------------------------------------------- properties


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec=None, categories=None)))
def test_no_control_survives_and_twice_is_once(text):
    line, block = safe_line(text), safe_block(text)
    assert_clean(line)
    assert_clean(block, multiline=True)
    assert safe_line(line) == line and safe_block(block) == block
    assert block.count("\n") == text.count("\n")
    line.encode("utf-8")  # always writable to a UTF-8 terminal


_HOSTILE = st.sampled_from([ESC, BEL, "\r", "\n", "\t", "\x7f", "\x9b", "\x9d", "\x85", "\ud800", *BIDI, *SEPARATORS,
                            "[", "]", ";", "0", "m", "\\", "a", "界"])


@settings(max_examples=300, deadline=None)
@given(st.lists(_HOSTILE, max_size=200).map("".join))
def test_dense_hostile_text_comes_out_clean(text):
    assert_clean(safe_line(text))
    assert_clean(safe_block(text), multiline=True)


@pytest.mark.parametrize("unit", [
    "\x1b",                                   # every character replaced
    "\x1b[" + "1;" * 50,                      # a never-ending CSI
    "\x1b]0;" + "a" * 100,                    # a never-terminated OSC
    "\u202e\u2066\x9b\ud800",                 # multi-character replacements
    "plain text without controls ",          # the fast path
])
def test_linear_one_megabyte_is_quick(unit):
    text = (unit * (2**20 // len(unit) + 1))[: 2**20]
    began = time.perf_counter()
    out = safe_line(text)
    elapsed = time.perf_counter() - began
    assert elapsed < 1.0, elapsed
    assert_clean(out)
    # and twice the input takes about twice as long, not four times (generous: a busy machine)
    doubled = text * 2
    began = time.perf_counter()
    safe_line(doubled)
    assert time.perf_counter() - began < max(3 * elapsed, 0.2) + 0.5


# ---------------------------------------------------------------- JSON


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(st.characters(codec=None, categories=None)),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12))
def test_json_safe_is_lossless_and_clean(value):
    text = json_safe(json.dumps(value, ensure_ascii=False, indent=2))
    # json's own round trip: it too reads two adjacent lone surrogates as the one character they encode
    assert json.loads(text) == json.loads(json.dumps(value))
    assert_clean(text, multiline=True)  # indent's newlines only: json.dumps already escapes C0 in strings
    assert safe_block(text) == text      # so a SafeStream passes it untouched


def test_json_safe_escapes_ascii_del_too():
    assert json_safe('{"a\x7f": "\x7f\u202e\x9b"}') == '{"a\\u007f": "\\u007f\\u202e\\u009b"}'
    assert json.loads(json_safe('{"a\x7f": 1}')) == {"a\x7f": 1}


# ---------------------------------------------------------------- HTML


def test_html_safe_marks_bidi_and_keeps_markup_markup():
    assert html_safe("invoice\u202etxt.exe") == "invoice[U+202E]txt.exe"
    marked = html_safe(Markup("<text>a\u2066b</text>"))
    assert isinstance(marked, Markup) and marked == Markup("<text>a[U+2066]b</text>")
    assert html_safe(42) == 42 and html_safe(None) is None


# ---------------------------------------------------------------- streams


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_safe_stream_shows_student_text_and_passes_the_graders_codes():
    raw = _Tty()
    stream = SafeStream(raw)
    print("row \x1b[2A\u202e", file=stream)
    write_control(stream, "\x1b[32m")
    stream.write("✓\r")
    write_control(stream, "\x1b[0m")
    assert raw.getvalue() == "row ␛[2A[U+202E]\n\x1b[32m✓␍\x1b[0m"
    assert stream.isatty() and stream.wrapped is raw
    assert terminal_stream(stream) is stream


def test_safe_std_streams_wraps_and_restores(capsys):
    import sys

    before = sys.stdout, sys.stderr
    with safe_std_streams():
        print("\x1b]0;pwn\x07")
        print("\x9b31m", file=sys.stderr)
    assert (sys.stdout, sys.stderr) == before
    out = capsys.readouterr()
    assert out.out == "␛]0;pwn␇\n" and out.err == "[U+009B]31m\n"
