"""data.loaders, loop.train, loop.eval: judged from the notebook's code and how its cells ran.

These checks read the student's code statically (the AST of each cell) and
use the execution record only to tell whose fault a crash was: a training
or evaluation cell written correctly that crashes inside the model's
`forward` still passes; the model's own checks carry that mistake.
"""
from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass

import nbformat

from grader.messages import Msg
from grader.notebook import ParseBudget, code_cells, parse_cell
from grader.result import CheckResult, Status

# Words on a line, for the "is there a `for ... <loader>` here" pre-filter. A `\w+` run cannot
# backtrack, unlike the `\bfor\b[^\n]*\b<loader>\b` search it replaces, which went back over
# the rest of the line at every `for` (a line of 100,000 `for` took minutes).
_WORD = re.compile(r"\w+")

MODEL_NAMES = {"rnn": ("model", "rnn_model"), "lstm": ("lstm_model",)}
OPTIMIZER_STEPS = ("zero_grad", "backward", "step")


@dataclass(frozen=True)
class CellRun:
    """How one cell ran: `ok`, `error`, `timeout` or `not_run`, and its traceback text."""

    status: str
    traceback: str = ""
    # A frame of its traceback (never the exception's message) is in a `forward` method
    # (grader/hosting/records.py CellRecord.model_frames).
    model_frames: bool = False


# ---------------------------------------------------------------- helpers


def _calls(node: ast.AST) -> list[ast.Call]:
    return [n for n in ast.walk(node) if isinstance(n, ast.Call)]


def _method_name(call: ast.Call) -> str | None:
    return call.func.attr if isinstance(call.func, ast.Attribute) else None


def _func_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _is_const(node: ast.expr | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def _loops_over(tree: ast.Module, loader: str) -> list[ast.For]:
    """`for ... in <loader>` loops (also `enumerate(<loader>)`, `tqdm(<loader>)`)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.For) and loader in {n.id for n in ast.walk(node.iter) if isinstance(n, ast.Name)}:
            found.append(node)
    return found


def _crash_is_models_fault(run: CellRun) -> bool:
    """A traceback that passes through a `forward` method blames the model, not the loop."""
    return run.model_frames


# ---------------------------------------------------------------- data.loaders


def _last_assignment(nb: nbformat.NotebookNode, target: str) -> tuple[int, ast.expr] | None:
    found = None
    budget = ParseBudget()
    for cell in code_cells(nb):
        tree = parse_cell(cell.source, budget)
        if tree is None:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == target for t in node.targets):
                found = (cell.index, node.value)
    return found


def _loader_problems(value: ast.expr, *, shuffled: bool) -> list[str]:
    if not (isinstance(value, ast.Call) and _func_name(value) == "DataLoader"):
        return ["not_a_dataloader"]
    problems = []
    shuffle = _keyword(value, "shuffle")
    if len(value.args) >= 3:  # DataLoader(dataset, batch_size, shuffle, ...)
        shuffle = value.args[2]
    if shuffled and not _is_const(shuffle, True):
        problems.append("train_not_shuffled")
    if not shuffled and shuffle is not None and not _is_const(shuffle, False):
        problems.append("test_shuffled")
    collate = _keyword(value, "collate_fn")
    if collate is None:
        problems.append("no_collate_fn")
    return problems


def check_loaders(nb: nbformat.NotebookNode, runs: dict[int, CellRun]) -> CheckResult:
    problems: list[Msg] = []
    for name, shuffled in (("train_loader", True), ("test_loader", False)):
        found = _last_assignment(nb, name)
        if found is None:
            return CheckResult("data.loaders", Status.FAILED, Msg("loops.loader_missing", {"name": name}))
        cell_index, value = found
        problems += [Msg(f"loops.problem_{p}", {"name": name}) for p in _loader_problems(value, shuffled=shuffled)]
        run = runs.get(cell_index)
        if run is not None and run.status != "ok" and not problems:
            return CheckResult(
                "data.loaders", Status.FAILED, Msg("loops.loader_cell_failed", {"cell": cell_index + 1}),
                details={"cell": cell_index + 1},
            )
    if problems:
        return CheckResult(
            "data.loaders", Status.FAILED,
            Msg("loops.loader_problems", {"problems": problems}),
            details={"problems": [p.key.removeprefix("loops.problem_") for p in problems]},
        )
    return CheckResult("data.loaders", Status.PASSED, Msg("loops.loaders_ok"))


# ---------------------------------------------------------------- loop.train / loop.eval


@dataclass(frozen=True)
class LoopCell:
    cell_index: int
    model: str          # "rnn" or "lstm"
    loop: ast.For


def _model_called(loop: ast.For) -> str | None:
    """Which lab model the loop calls: `model(...)` is the RNN's, `lstm_model(...)` the LSTM's."""
    for call in _calls(loop):
        if isinstance(call.func, ast.Name):
            for kind, names in MODEL_NAMES.items():
                if call.func.id in names:
                    return kind
    return None


def _mentions_loop_over(source: str, loader: str) -> bool:
    """Some line has the word `for` and, after it, the word `loader` (linear in the source)."""
    if loader not in source:
        return False
    for line in source.split("\n"):
        if loader in line:
            words = _WORD.findall(line)
            if "for" in words and loader in words[words.index("for") + 1 :]:
                return True
    return False


def _find_loop_cells(nb: nbformat.NotebookNode, loader: str) -> tuple[dict[str, LoopCell], list[int]]:
    """The last loop over `loader` for each model, and the cells that cannot be analysed
    (not Python, or too large or too complex to parse: grader.notebook.parse_source)."""
    cells: dict[str, LoopCell] = {}
    unparsed: list[int] = []
    budget = ParseBudget()
    for cell in code_cells(nb):
        if not _mentions_loop_over(cell.source, loader):
            continue
        tree = parse_cell(cell.source, budget)
        if tree is None:
            unparsed.append(cell.index)
            continue
        for loop in _loops_over(tree, loader):
            kind = _model_called(loop)
            if kind is not None:
                cells[kind] = LoopCell(cell.index, kind, loop)
    return cells, unparsed


def _int_constants(call: ast.Call) -> list[int]:
    """Integer arguments of a call, also from a tuple/list argument: permute(1, 0, 2) or permute(x, (1, 0, 2))."""
    values: list[int] = []
    for arg in call.args:
        items = arg.elts if isinstance(arg, (ast.Tuple, ast.List)) else [arg]
        values += [e.value for e in items if isinstance(e, ast.Constant) and type(e.value) is int]
    return values


def _permutes_to_seq_first(loop: ast.For) -> bool:
    for call in _calls(loop):
        name = _method_name(call) or _func_name(call)
        ints = _int_constants(call)
        if name == "permute" and ints == [1, 0, 2]:
            return True
        if name in ("transpose", "swapaxes", "swapdims", "movedim") and sorted(ints) == [0, 1]:
            return True
    return False


def _step_order_problems(loop: ast.For) -> list[str]:
    positions: dict[str, int] = {}
    for call in _calls(loop):
        name = _method_name(call)
        if name in OPTIMIZER_STEPS and name not in positions:
            positions[name] = (call.lineno, call.col_offset)  # type: ignore[assignment]
    missing = [f"no_{name}" for name in OPTIMIZER_STEPS if name not in positions]
    if missing:
        return missing
    order = sorted(OPTIMIZER_STEPS, key=lambda n: positions[n])
    return [] if order == list(OPTIMIZER_STEPS) else ["wrong_order"]


def _takes_argmax(loop: ast.For) -> bool:
    for call in _calls(loop):
        name = _method_name(call) or _func_name(call)
        if name == "argmax":
            return True
        if name == "max" and (call.args[1:] or _keyword(call, "dim") is not None):
            return True  # torch.max(logits, 1) returns (values, indices)
    return False


def _judge_loop(check_id: str, loader: str, nb: nbformat.NotebookNode, runs: dict[int, CellRun],
                problems_of: Callable[[ast.For], list[str]],
                faulty_models: frozenset[str] = frozenset()) -> CheckResult:
    cells, unparsed = _find_loop_cells(nb, loader)
    failures: list[tuple[str, str]] = []
    for kind in ("rnn", "lstm"):
        if kind not in cells:
            failures.append((kind, "missing"))
            continue
        cell = cells[kind]
        problems = problems_of(cell.loop)
        run = runs.get(cell.cell_index)
        crashed = run is not None and run.status in ("error", "timeout")
        if run is not None and not problems and crashed and kind not in faulty_models \
                and not _crash_is_models_fault(run):
            problems = [f"cell_{run.status}"]
        failures += [(kind, p) for p in problems]
    if len(failures) == 2 and all(p == "missing" for _, p in failures):
        msg = Msg("loops.loops_unfilled", {"cells": ", ".join(str(i + 1) for i in unparsed) or "-"})
        return CheckResult(check_id, Status.FAILED, msg, details={"unparsed_cells": [i + 1 for i in unparsed]})
    if failures:
        messages = [Msg(f"loops.problem_{p}", {"model": Msg(f"loops.model_{kind}")}) for kind, p in failures]
        return CheckResult(check_id, Status.FAILED, Msg("loops.loop_problems", {"problems": messages}),
                           details={"problems": [f"{kind}:{p}" for kind, p in failures]})
    return CheckResult(check_id, Status.PASSED, Msg("loops.loop_ok"))


def _train_problems(loop: ast.For) -> list[str]:
    return ([] if _permutes_to_seq_first(loop) else ["no_permute"]) + _step_order_problems(loop)


def _eval_problems(loop: ast.For) -> list[str]:
    return ([] if _permutes_to_seq_first(loop) else ["no_permute"]) + ([] if _takes_argmax(loop) else ["no_argmax"])


def check_loops(nb: nbformat.NotebookNode, runs: dict[int, CellRun],
                faulty_models: frozenset[str] = frozenset()) -> list[CheckResult]:
    """loop.train and loop.eval, each judging both the RNN's and the LSTM's cell.

    The loops are judged from their code; a cell's crash counts against a loop whose code is right only when
    the crash is not the model's: `faulty_models` ("rnn", "lstm") failed their model checks (a wrong output
    shape breaks `criterion(logits, labels)`, plain tensors leave `Adam` an empty parameter list), or a frame
    of the traceback is in a `forward` method.
    """
    return [
        _judge_loop("loop.train", "train_loader", nb, runs, _train_problems, faulty_models),
        _judge_loop("loop.eval", "test_loader", nb, runs, _eval_problems, faulty_models),
    ]
