"""The training check's inputs, prepared on another thread while the student's notebook runs.

`lstm.train` needs the train split's MFCCs and a held-out set; on the default data that set is drawn fresh for
every notebook (grader/checks/heldout.py), which imports librosa's feature stack into the grader's process. Done
after the notebook, it was 1.6 s of a 12 s `grader check` (measured) while the second core sat idle: the grader's
process only waits while the kernel runs. Nothing here touches the kernel or anything it wrote: the inputs come
from the trusted dataset and the grading seed, so preparing them early changes no verdict and shows the kernel
nothing (the held-out clips stay in this process's memory until the training check writes them for the probe).
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from grader.threads import limit_torch_threads

if TYPE_CHECKING:  # imported on the prefetch's own thread: numpy, soundfile and librosa stay off the start path
    from grader.checks.heldout import HeldOut
    from grader.checks.training import TrainingData

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingInputs:
    data: TrainingData
    heldout: HeldOut


def prepare_training_inputs(data_dir: Path, *, synthetic: bool, seed: int) -> TrainingInputs:
    """What `lstm.train` learns from and measures on; the same for the same data and seed."""
    from grader.checks.heldout import choose_heldout
    from grader.checks.training import load_training_data

    heldout = choose_heldout(data_dir, synthetic=synthetic, seed=seed)
    return TrainingInputs(load_training_data(data_dir, heldout=heldout), heldout)


class TrainingPrefetch:
    """`prepare_training_inputs` on a daemon thread, after importing torch there for the grader's later stages.

    `result()` waits for it and gives back what it returned, or raises what it raised (a bad dataset's
    DatasetError reaches the CLI exactly as it did when the stage computed it itself).
    """

    def __init__(self, data_dir: Path, *, synthetic: bool, seed: int) -> None:
        self._args = (Path(data_dir), synthetic, seed)
        self._inputs: TrainingInputs | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="training-prefetch", daemon=True)

    def start(self) -> TrainingPrefetch:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            limit_torch_threads()  # the model checks and the live reference need it first
        except Exception:  # an unimportable torch is reported where it is needed, not here
            log.debug("background import of torch failed", exc_info=True)
        data_dir, synthetic, seed = self._args
        try:
            self._inputs = prepare_training_inputs(data_dir, synthetic=synthetic, seed=seed)
        except BaseException as exc:  # handed to the caller of result(), on its own thread
            self._error = exc

    def result(self) -> TrainingInputs:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._inputs is not None
        return self._inputs
