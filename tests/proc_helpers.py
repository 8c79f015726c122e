"""Helpers shared by tests that start real processes (kernels, workers, batches)."""
from __future__ import annotations

import os
from pathlib import Path


def processes_mentioning(fragment: str) -> list[int]:
    """Live processes whose command line mentions `fragment` (kernels name their connection file)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fragment in cmdline:
            found.append(int(entry.name))
    return found
