"""The grader's exception hierarchy.

Every error a user can cause or meet is a GraderError carrying a one-line
message fit for a terminal and the exit code the CLI returns for it. The CLI
is the only place that catches them (see grader.cli.main).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from grader.messages import DEFAULT_LANGUAGE, Msg, render

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3


_E = TypeVar("_E", bound="GraderError")


class GraderError(Exception):
    """Base class: a failure with a message meant for the user.

    Raised with `of(Msg, ...)`, it keeps the message keys, so the CLI shows it in the
    language the user chose (`text_in`) even when the raiser did not know that language.
    """

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, *, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details or [])
        self.msg: Msg | None = None
        self.detail_msgs: list[Msg] = []

    @classmethod
    def of(cls: type[_E], msg: Msg, details: Sequence[Msg] = ()) -> _E:
        error = cls(render(msg, DEFAULT_LANGUAGE), details=[render(d, DEFAULT_LANGUAGE) for d in details])
        error.msg, error.detail_msgs = msg, list(details)
        return error

    def text_in(self, lang: str) -> tuple[str, list[str]]:
        """(message, details) in `lang` when raised from messages, else as raised."""
        if self.msg is None:
            return self.message, self.details
        return render(self.msg, lang), [render(d, lang) for d in self.detail_msgs] or self.details


class BadInputError(GraderError):
    """The user gave us something we cannot use: a file, a folder, an option."""

    exit_code = EXIT_BAD_INPUT


class NotANotebookError(BadInputError):
    """The file is not a readable Jupyter notebook."""


class DatasetError(BadInputError):
    """The dataset is missing, malformed or unreadable; `details` lists every problem."""


class RubricError(BadInputError):
    """The rubric file is malformed."""


class SandboxUnavailableError(BadInputError):
    """--require-sandbox was given, and this machine cannot provide every layer."""


class InternalError(GraderError):
    """The grader itself failed (a bug, or a broken installation)."""

    exit_code = EXIT_INTERNAL
