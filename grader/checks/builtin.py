"""`*.no_builtin`: the student wrote the recurrence, not nn.LSTM & co.

Two independent looks: the module tree the probe reported (classes and their
bases, so a subclass of nn.LSTM is caught), and a static scan of the class
source from the notebook (catches ops that create no module: torch._VF.lstm,
torch.lstm_cell, getattr(nn, "LSTM"), ...).
"""
from __future__ import annotations

import ast
import re
from typing import Any

from grader.checks.common import names, result
from grader.harvest import ProbeReply
from grader.lab_api import BUILTIN_RNN_MODULES, BUILTIN_RNN_OPS, ModelSpec
from grader.notebook import parse_cell
from grader.result import CheckResult, Status

# Bases through which the recurrent ops are reachable.
_OP_OWNERS = frozenset({"torch", "_VF", "F", "functional", "aten", "ops", "_C", "_VariableFunctions"})
# The scan for source that cannot be parsed. Linear: every quantifier is over a class
# disjoint from what follows it, so no character is tried twice from one start.
_FALLBACK = re.compile(
    r"\b(?:nn\.|torch\.nn\.)?(?:RNN|LSTM|GRU)(?:Cell)?\s*\(|\b_VF\b"
    r"|\btorch\.(?:lstm|gru|rnn_tanh|rnn_relu)(?:_cell)?\b"
)


def builtin_modules(reply: ProbeReply) -> list[str]:
    """Qualified names of built-in recurrent classes in the module tree (incl. as bases)."""
    found: list[str] = []
    for mro in reply.steps.get("modules", {}).get("modules", []):
        for qualname in mro:
            module, _, name = str(qualname).rpartition(".")
            if name in BUILTIN_RNN_MODULES and module.startswith("torch.") and qualname not in found:
                found.append(qualname)
    return found


def scan_source(source: str) -> list[str]:
    """Built-in recurrent modules/ops the class source refers to.

    Source the grader cannot analyse (not Python, or too large or deep to parse)
    is scanned by a regular expression instead, so padding a class cannot hide it.
    """
    tree = parse_cell(source)
    if tree is None:
        return sorted(set(m.group(0).rstrip("( \t\n\r\f\v") for m in _FALLBACK.finditer(source)))
    hits: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            owner = _last_name(node.value)
            if node.attr in BUILTIN_RNN_MODULES:
                hits.add(f"{owner}.{node.attr}" if owner else node.attr)
            elif node.attr == "_VF" or (node.attr in BUILTIN_RNN_OPS and owner in _OP_OWNERS):
                hits.add(f"{owner}.{node.attr}")
        elif isinstance(node, ast.Name) and (node.id in BUILTIN_RNN_MODULES or node.id == "_VF"):
            hits.add(node.id)
        elif isinstance(node, ast.alias) and (node.name.split(".")[-1] in BUILTIN_RNN_MODULES | {"_VF"}):
            hits.add(node.name)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in BUILTIN_RNN_MODULES:
            # getattr(nn, "LSTM")
            hits.add(repr(node.value))
    return sorted(hits)


def _last_name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


# What the probe may report it saw (grader/inkernel/probe.py `_observe`): names are re-checked here, so a forged
# report can only ever cost its own notebook points.
_RUNTIME_NAMES = ("lstm", "gru", "rnn_tanh", "rnn_relu", "cudnn_rnn", "miopen_rnn", "mkldnn_rnn", "rnn_layer")
_MAX_EVIDENCE = 20
_MAX_NAME_CHARS = 100


def runtime_ops(observed: Any) -> tuple[list[str], bool]:
    """(recurrent functions/operators the watched forward ran, whether the watching itself worked)."""
    if not isinstance(observed, dict) or not isinstance(observed.get("recurrent"), list):
        return [], False
    names = [n[:_MAX_NAME_CHARS] for n in observed["recurrent"][:_MAX_EVIDENCE]
             if isinstance(n, str) and any(k in n.lower() for k in _RUNTIME_NAMES)]
    return sorted(set(names)), observed.get("ok") is True


def notebook_hits(cell_sources: list[str]) -> dict[str, list[str]]:
    """Built-in recurrent layers or ops written anywhere in the notebook, per class prefix ("rnn", "lstm").

    A helper in another cell can do the work for a class, so every cell is scanned. A hit is charged to the class
    its name belongs to (LSTM names to lstm, RNN names to rnn); a GRU, _VF or a base class could serve either.
    """
    found: dict[str, set[str]] = {"rnn": set(), "lstm": set()}
    for source in cell_sources:
        for hit in scan_source(source):
            for prefix in _families(hit):
                found[prefix].add(hit)
    return {prefix: sorted(hits)[:_MAX_EVIDENCE] for prefix, hits in found.items()}


def _families(hit: str) -> tuple[str, ...]:
    low = hit.lower()
    if "lstm" in low:
        return ("lstm",)
    if "rnn" in low and "base" not in low:
        return ("rnn",)
    return ("rnn", "lstm")


def check_no_builtin(spec: ModelSpec, reply: ProbeReply, source: str | None, *,
                     elsewhere: list[str] | None = None, observed: Any = None) -> CheckResult:
    """Fails on any of: a built-in recurrent module in the model, one named in the class's source or elsewhere in
    the notebook, or a recurrent function or operator that ran during a watched forward pass. Names the evidence."""
    check_id = f"{spec.prefix}.no_builtin"
    modules = builtin_modules(reply)
    in_source = scan_source(source) if source else []
    other_cells = [h for h in (elsewhere or []) if h not in in_source]
    ran, watched = runtime_ops(observed)
    details = {"modules": modules, "source": in_source, "elsewhere": other_cells, "runtime": ran,
               "runtime_observed": watched, "source_scanned": source is not None,
               "module_tree_scanned": bool(reply.steps.get("modules", {}).get("ok"))}
    evidence = modules + in_source
    if other_cells:
        evidence.append(f"{', '.join(other_cells)} (in another cell)")
    if ran:
        evidence.append(f"{', '.join(ran)} (ran during forward)")
    if evidence:
        return result(check_id, Status.FAILED, "no_builtin.found", details=details,
                      cls=spec.class_name, names=names(evidence))
    return result(check_id, Status.PASSED, "no_builtin.ok", details=details, cls=spec.class_name)
