"""User-facing text: one catalogue per language.

Every string a user reads comes from `grader/locale/<lang>/*.toml`. Each file
of a language is one area (data, exec, checks, cli, ...); keys are dotted,
`<area>.<name>`, and every key must exist in every language (a test enforces
it). Code passes around `Msg(key, params)` and renders it at the edge, so the
JSON result, the terminal and the HTML report can each choose a language.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import tomllib

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANGUAGES = ("en", "zh")
DEFAULT_LANGUAGE = "zh"


@dataclass(frozen=True)
class Msg:
    """A message key and the values for its placeholders (str.format syntax)."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, Msg):
                return value.to_json()
            if isinstance(value, (list, tuple)):
                return [plain(v) for v in value]
            return value

        return {"key": self.key, "params": {k: plain(v) for k, v in self.params.items()}}

    @classmethod
    def from_json(cls, data: Any) -> Msg | None:
        """The inverse of to_json; None for anything that is not a stored message."""
        if not isinstance(data, dict) or not isinstance(data.get("key"), str):
            return None
        params = data.get("params")
        params = params if isinstance(params, dict) else {}

        def revive(value: Any) -> Any:
            if isinstance(value, dict) and "key" in value and "params" in value:
                return cls.from_json(value)
            if isinstance(value, list):
                return [revive(v) for v in value]
            return value

        return cls(data["key"], {str(k): revive(v) for k, v in params.items()})


@cache
def catalogue(lang: str) -> dict[str, str]:
    """All messages of one language, keyed `<file stem>.<key>`."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; choose one of {', '.join(LANGUAGES)}")
    merged: dict[str, str] = {}
    for path in sorted((LOCALE_DIR / lang).glob("*.toml")):
        with path.open("rb") as fh:
            for key, text in _flatten(tomllib.load(fh), path.stem).items():
                merged[key] = text
    return merged


def _flatten(table: dict[str, Any], prefix: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in table.items():
        full = f"{prefix}.{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, full))
        else:
            out[full] = str(value)
    return out


def render(msg: Msg | str | None, lang: str = DEFAULT_LANGUAGE) -> str:
    """The message's text in `lang`; a plain str passes through unchanged."""
    if msg is None:
        return ""
    if isinstance(msg, str):
        return msg
    params = {name: _render_param(value, lang) for name, value in msg.params.items()}
    template = catalogue(lang).get(msg.key)
    if template is None:
        # A missing key is a bug caught by tests; never hide the information from the user.
        return f"{msg.key} {params}" if params else msg.key
    try:
        return template.format(**params)
    except (KeyError, IndexError, ValueError):
        return f"{template} {params}"


def _render_param(value: Any, lang: str) -> Any:
    """Nested messages (or lists of them) render in the same language."""
    if isinstance(value, Msg):
        return render(value, lang)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, Msg) for v in value):
        return "; ".join(render(v, lang) for v in value)
    return value


def text(key: str, lang: str = DEFAULT_LANGUAGE, **params: Any) -> str:
    """Shorthand for render(Msg(key, params), lang)."""
    return render(Msg(key, params), lang)
