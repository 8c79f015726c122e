"""IPython AST transformers installed in the student's kernel.

IPython silently drops a transformer that raises, so every transformer here is
wrapped in `Total`: it works on a copy and returns the node unchanged on any
failure. They apply to cell code, not to strings given to exec(); that is an
accepted gap. Code the grader sends itself starts with PROBE_MARKER and is left
alone (its own loops must not be capped).
"""
from __future__ import annotations

import ast
import copy
import re
from collections.abc import Callable

PROBE_MARKER = "__grader_probe__"

_NPU_STRING = re.compile(r"npu(?::\d+)?")
_NPU_FSTRING_HEAD = re.compile(r"npu:?")


class Total:
    """Run a NodeTransformer made by `factory` on a copy; on any error keep the original."""

    def __init__(self, factory: Callable[[], ast.NodeTransformer]) -> None:
        self.factory = factory

    def visit(self, node: ast.AST) -> ast.AST:
        try:
            if is_probe(node):
                return node
            new: ast.AST = self.factory().visit(copy.deepcopy(node))
            return ast.fix_missing_locations(new)
        except Exception:
            return node


def is_probe(node: ast.AST) -> bool:
    """True for grader-sent code: a module whose first statement is the marker string."""
    body = getattr(node, "body", None)
    if not isinstance(body, list) or not body:
        return False
    first = body[0]
    return (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and first.value.value == PROBE_MARKER
    )


def _is_npu_string(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and _NPU_STRING.fullmatch(node.value) is not None
    )


def _is_npu_fstring(node: ast.AST) -> bool:
    """f'npu:{i}': a constant head 'npu:' followed by a single formatted value."""
    if not isinstance(node, ast.JoinedStr) or len(node.values) != 2:
        return False
    head, tail = node.values
    return (
        isinstance(head, ast.Constant)
        and isinstance(head.value, str)
        and _NPU_FSTRING_HEAD.fullmatch(head.value) is not None
        and isinstance(tail, ast.FormattedValue)
    )


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


class NpuToDevice(ast.NodeTransformer):
    """'npu', 'npu:N', f'npu:{i}', torch.device('npu', N) and x.npu(...) -> the grading device."""

    def __init__(self, device: str) -> None:
        self.device = device

    def _device_constant(self, like: ast.AST) -> ast.Constant:
        return ast.copy_location(ast.Constant(self.device), like)

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        return self._device_constant(node) if _is_npu_string(node) else node

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        return self._device_constant(node) if _is_npu_fstring(node) else self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if _called_name(node) == "device":
            self._drop_npu_index(node)
        node = self.generic_visit(node)  # type: ignore[assignment]
        if isinstance(node.func, ast.Attribute) and node.func.attr == "npu":
            # x.npu(0) -> x.to(device): the index names an NPU that is not there.
            node.func = ast.copy_location(
                ast.Attribute(value=node.func.value, attr="to", ctx=ast.Load()), node.func
            )
            node.args = [self._device_constant(node)]
            node.keywords = []
        return node

    def _drop_npu_index(self, node: ast.Call) -> None:
        """torch.device('npu', 0) and torch.device(type='npu', index=0): the index goes."""
        type_kw = next((k for k in node.keywords if k.arg == "type"), None)
        if node.args and _is_npu_string(node.args[0]):
            node.args = node.args[:1]
            node.keywords = [k for k in node.keywords if k.arg != "index"]
        elif type_kw is not None and _is_npu_string(type_kw.value):
            node.keywords = [k for k in node.keywords if k.arg != "index"]


def _mentions_epoch(node: ast.AST) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and "epoch" in sub.id.lower():
            return True
        if isinstance(sub, ast.Attribute) and "epoch" in sub.attr.lower():
            return True
    return False


class EpochCap(ast.NodeTransformer):
    """`for epoch in range(num_epochs)` -> `for epoch in islice(range(num_epochs), cap)`.

    A loop is an epoch loop when its target or its iterable names something
    with "epoch" in it; that leaves `for t in range(seq_len)` and
    `for x, y in loader` alone. The cap must be >= 2: the lab divides by the
    last epoch index. With a batch cap, the loop goes through batch_cap.epochs
    instead, which also caps the DataLoader passes made inside it.
    """

    def __init__(self, cap: int, batch_cap: int = 0) -> None:
        self.cap = cap
        self.batch_cap = batch_cap

    def visit_For(self, node: ast.For) -> ast.AST:
        self.generic_visit(node)
        if _mentions_epoch(node.target) or _mentions_epoch(node.iter):
            node.iter = ast.copy_location(self._capped(node.iter), node.iter)
        return node

    def _capped(self, iterable: ast.expr) -> ast.Call:
        # __import__ rather than a name: the student's namespace may lack or shadow `itertools`.
        if self.batch_cap > 0:
            helper = _imported_attribute(BATCH_CAP_MODULE, "epochs")
        else:
            helper = _imported_attribute("itertools", "islice")
        return ast.Call(func=helper, args=[iterable, ast.Constant(self.cap)], keywords=[])


# The kernel-side module the capped epoch loops call (imported by the startup before the first cell).
BATCH_CAP_MODULE = "grader.inkernel.batch_cap"


def _imported_attribute(module: str, name: str) -> ast.Attribute:
    """`__import__(module, fromlist=[name]).name`: the module's attribute, whatever the student's names are."""
    imported = ast.Call(
        func=ast.Name(id="__import__", ctx=ast.Load()),
        args=[ast.Constant(module)],
        keywords=[ast.keyword(arg="fromlist", value=ast.List(elts=[ast.Constant(name)], ctx=ast.Load()))],
    )
    return ast.Attribute(value=imported, attr=name, ctx=ast.Load())


def npu_transformer(device: str) -> Total:
    return Total(lambda: NpuToDevice(device))


def epoch_cap_transformer(cap: int, batch_cap: int = 0) -> Total:
    return Total(lambda: EpochCap(cap, batch_cap))
