"""At most `cap` batches from a DataLoader pass made inside one of the notebook's capped epoch loops.

The grader judges the student's loops from their code and trains the LSTM itself (lstm.train), so the
notebook's own training only has to run, not to learn: two epochs of a few batches show every line of the
loop working. The epoch loops are found in the code (transforms.EpochCap); the batches are capped here, at
run time, because the loop over batches is often somewhere the code does not show it: `enumerate(loader)`,
`tqdm(loader)`, `next(iter(loader))` or a helper `train_one_epoch(model, loader)` called from the epoch loop.

`epochs` wraps each capped epoch loop and counts how many are running; `DataLoader.__iter__` hands out a
capped iterator only while one is. A loop over the test set after training is not inside an epoch loop and
runs whole. The count is reset before every cell, so an epoch loop left by an exception in an odd way cannot
cap a later cell's loops.

A correct cell can still break under the cap: `for step in range(len(loader)): next(it)` meets the end of the
batches early, and a per-epoch accuracy that compares the predictions with the dataset's labels gets fewer
predictions, in the same cell or in a later one that uses what the loop collected. So once a pass has been cut
short, every cell that raises is counted (`broken_cells`); the grader asks for the count after the notebook and
runs the notebook again without the cap when it is not zero (grader/pipeline.py), so the cap never costs a
verdict. The grader's own interrupt (a cell over its time limit) is not counted: a hang would only hang again; nor is a
MemoryError, which fewer batches cannot cause.
The count is the student's word: claiming a break only costs their own time (one more run), hiding one only
keeps their own error.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

_state = {"depth": 0, "cap": 0, "cut": 0, "broken_cells": 0}  # cut: a pass was cut short, in any cell so far


def epochs(iterable: Iterable[Any], epoch_cap: int) -> Iterator[Any]:
    """The first `epoch_cap` items of the epoch loop's iterable; DataLoader passes made meanwhile are capped."""
    for item in itertools.islice(iterable, epoch_cap):
        _state["depth"] += 1
        try:
            yield item
        finally:  # also when the loop breaks or raises: the for statement drops (and so closes) this generator
            _state["depth"] = max(0, _state["depth"] - 1)


class _CappedBatches:
    """The loader's own iterator, ending after `cap` batches; len() says how many it will give."""

    def __init__(self, batches: Any, cap: int) -> None:
        self._batches = batches
        self._left = cap
        self._cap = cap
        try:
            self._cuts = len(batches) > cap
        except TypeError:  # an iterable dataset of unknown length: counted as cut when the cap ends it
            self._cuts = True

    def __iter__(self) -> _CappedBatches:
        return self

    def __next__(self) -> Any:
        if self._left <= 0:
            if self._cuts:
                _state["cut"] = 1
            raise StopIteration
        self._left -= 1
        return next(self._batches)

    def __len__(self) -> int:
        return min(len(self._batches), self._cap)


def _reset(*_args: Any) -> None:
    _state["depth"] = 0


def _after_cell(result: Any) -> None:
    error = getattr(result, "error_in_exec", None)
    # Not MemoryError: fewer batches never need more memory, and running a memory bomb again costs the machine.
    if _state["cut"] and isinstance(error, Exception) and not isinstance(error, MemoryError):
        _state["broken_cells"] += 1


def broken_cells() -> int:
    """How many cells raised once a DataLoader pass had been cut short (the grader's question after the notebook)."""
    return int(_state["broken_cells"])


def install(shell: Any, cap: int) -> None:
    from torch.utils.data import DataLoader

    _state["cap"] = cap
    original = DataLoader.__iter__

    def __iter__(self: Any) -> Any:
        batches = original(self)
        if _state["depth"] > 0 and _state["cap"] > 0:
            return _CappedBatches(batches, _state["cap"])
        return batches

    __iter__.__wrapped__ = original  # type: ignore[attr-defined]
    DataLoader.__iter__ = __iter__  # type: ignore[method-assign]
    shell.events.register("pre_execute", _reset)
    shell.events.register("post_run_cell", _after_cell)
