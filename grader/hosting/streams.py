"""A cell's stream outputs as a terminal shows them, in linear time."""
from __future__ import annotations

from typing import Any

import nbformat


def coalesce_streams(cell: nbformat.NotebookNode) -> None:
    """One stream output per name, with carriage returns and backspaces applied (as a terminal would).

    What nbclient's coalesce_streams does, in linear time: its regular expressions
    backtrack quadratically on a long line, in the grader's process.
    """
    outputs = cell.get("outputs") or []
    if not outputs:
        return
    merged: list[Any] = []
    streams: dict[str, Any] = {}
    for out in outputs:
        if out.get("output_type") == "stream" and out.get("name") in streams:
            streams[out["name"]]["_parts"].append(out.get("text", ""))
            continue
        if out.get("output_type") == "stream":
            out["_parts"] = [out.get("text", "")]
            streams[out["name"]] = out
        merged.append(out)
    for out in streams.values():
        out["text"] = _terminal_text("".join(out.pop("_parts")))
    cell.outputs = merged


def _terminal_text(text: str) -> str:
    """Backspace deletes the character before it; a carriage return inside a line drops what came before."""
    if "\b" in text:
        kept: list[str] = []
        for ch in text:
            if ch == "\b" and kept and kept[-1] != "\n":
                kept.pop()
            else:
                kept.append(ch)
        text = "".join(kept)
    if "\r" in text:
        lines = text.split("\n")
        for i, line in enumerate(lines):
            cut = line.rfind("\r", 0, len(line) - 1)
            if cut >= 0:
                lines[i] = line[cut + 1:]
        text = "\n".join(lines)
    return text
