"""The watchdog: one thread per kernel that kills its process group at a deadline or when a budget trips.

nbclient's interrupt is not enough on its own: a loop that swallows KeyboardInterrupt hung nbclient forever.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

BudgetCheck = tuple[str, Callable[[], bool]]


class Watchdog:
    """Kills the kernel's process group when a deadline passes, or when a check trips.

    One thread per session. `checks` are (name, function) pairs run every tick;
    the first function to return True names the reason (`tripped`) and the
    kernel is killed: "disk" (its files outgrew their budget), "flood" (it sent
    a message over the size limit).
    """

    def __init__(self, kill: Callable[[], None], checks: list[BudgetCheck] | None = None) -> None:
        self._kill = kill
        self._checks = list(checks or [])
        self._deadline: float | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.fired = False
        self.tripped: str | None = None
        self._thread = threading.Thread(target=self._run, name="grader-watchdog", daemon=True)
        self._thread.start()

    def arm(self, deadline: float) -> None:
        with self._lock:
            self._deadline = deadline
            self.fired = False

    def disarm(self) -> None:
        with self._lock:
            self._deadline = None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            with self._lock:
                due = self._deadline is not None and time.monotonic() > self._deadline
                if due:
                    self._deadline = None
                    self.fired = True
            if due:
                self._kill()
            if self.tripped is None:
                for name, check in self._checks:
                    try:
                        hit = check()
                    except Exception:  # a failing check must not stop the deadline; it leaves a line
                        log.exception("watchdog check %r failed; the kernel runs on under its other limits", name)
                        hit = False
                    if hit:
                        self.tripped = name
                        self._kill()
                        break
