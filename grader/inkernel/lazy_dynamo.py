"""`torch._dynamo` imported only when the notebook compiles something, not on the first optimizer.

Every `torch.optim` optimizer imports `torch._dynamo` (torch.compile's tracer) the first time it is built or
stepped, only to mark its methods "not to be traced" and to call `graph_break()`; outside `torch.compile` both
do nothing. The import costs 0.8 s of CPU (measured on the lab's machines, torch 2.13), in every kernel: a tenth
of what grading one notebook costs the machine. The lab never compiles.

So until something else asks for it, `torch._dynamo` is a stand-in module that answers those two calls the way
the real module answers them when nothing is being compiled: `disable(fn)` calls `fn`, `graph_break()` returns.
The first use of any other name (`torch.compile`, `torch._dynamo.config`, a submodule) imports the real module,
replaces the stand-in in `sys.modules` and on `torch`, and from then on both calls go to the real module too.
Nothing can be compiling before the real module is imported, so no call answered by the stand-in could have
been answered differently.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Callable
from typing import Any

NAME = "torch._dynamo"


def _real() -> Any:
    """The real torch._dynamo, imported on first need in place of the stand-in."""
    current = sys.modules.get(NAME)
    if isinstance(current, _StandIn):
        del sys.modules[NAME]
        torch = sys.modules.get("torch")
        if torch is not None and getattr(torch, "_dynamo", None) is current:
            delattr(torch, "_dynamo")
    return importlib.import_module(NAME)


def _imported() -> bool:
    return not isinstance(sys.modules.get(NAME), _StandIn)


class _StandIn(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__") and name != "__path__":
            raise AttributeError(name)  # copy, pickle and inspect probe these: no reason to import for them
        # __path__ too: a submodule (torch._dynamo.config) needs the real package's __init__ to have run
        return getattr(_real(), name)

    def __dir__(self) -> list[str]:
        return dir(_real())

    def disable(self, fn: Callable[..., Any] | None = None, recursive: bool = True, **kwargs: Any) -> Any:
        # Only plain functions are answered here (what the optimizers pass); a module, a class or a decorator
        # factory gets what the real module makes of it.
        if not isinstance(fn, types.FunctionType) or _imported():
            return _real().disable(fn, recursive, **kwargs)
        disabled: list[Callable[..., Any]] = []

        def call(*args: Any, **kw: Any) -> Any:
            if disabled:
                return disabled[0](*args, **kw)
            if _imported():  # compiling may have begun since: from now on, exactly what torch would do
                disabled.append(_real().disable(fn, recursive, **kwargs))
                return disabled[0](*args, **kw)
            return fn(*args, **kw)

        return call

    def graph_break(self, *args: Any, **kwargs: Any) -> None:
        if _imported():
            _real().graph_break(*args, **kwargs)


def install() -> None:
    """Put the stand-in in place; a no-op when torch._dynamo is already imported or torch lacks one."""
    import torch

    spec = None if NAME in sys.modules else importlib.util.find_spec(NAME)
    if spec is None:
        return
    stand_in = _StandIn(NAME, __doc__)
    # what importlib and inspect read without importing: find_spec(NAME) and __file__ answer as for the real one
    stand_in.__spec__ = spec
    stand_in.__file__ = spec.origin
    sys.modules[NAME] = stand_in
    torch._dynamo = stand_in  # type: ignore[attr-defined]
