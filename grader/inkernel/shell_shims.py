"""Shell escapes in the student's kernel are skipped, not run.

IPython turns `!cmd` into get_ipython().system('cmd'), `x = !cmd` and `%sx`
into getoutput, `%pip`/`%conda` into magics that call system, and `%%bash`,
`%%sh`, `%%script` into ScriptMagics. Replacing those lets the rest of the cell
run. A real `!pip install` would change the grading environment; `!unzip` is
not needed (the grader puts the data in place). The list of what was skipped
comes from a static scan of the notebook (grader.notebook.find_shell_escapes),
not from here, so nothing the student prints can forge it.
"""
from __future__ import annotations

from typing import Any

LINE_MAGICS = ("pip", "conda", "mamba", "micromamba", "uv", "system", "sx", "sc")
CELL_MAGICS = (
    "bash", "sh", "zsh", "script", "system", "sx",
    "perl", "ruby", "python", "python2", "python3", "pypy",
)


def _skip_line(line: str = "") -> None:
    return None


def _skip_cell(line: str = "", cell: str = "") -> None:
    return None


def _no_output(cmd: str = "", split: bool = True, depth: int = 0) -> Any:
    from IPython.utils.text import SList

    return SList()


def _script_magic_names(shell: Any) -> list[str]:
    """Every registered cell magic backed by ScriptMagics (its names vary by platform/config)."""
    names = []
    for name, fn in shell.magics_manager.magics.get("cell", {}).items():
        owner = getattr(fn, "__self__", None)
        if type(owner).__name__ == "ScriptMagics":
            names.append(name)
    return names


def install(shell: Any) -> None:
    shell.system = _skip_line
    shell.system_raw = _skip_line
    shell.system_piped = _skip_line
    shell.getoutput = _no_output
    for name in LINE_MAGICS:
        shell.register_magic_function(_skip_line, "line", name)
    for name in set(CELL_MAGICS) | set(_script_magic_names(shell)):
        shell.register_magic_function(_skip_cell, "cell", name)
