"""How operations report what they are doing without printing: the command renders it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol


class Progress(Protocol):
    def step(self, message: str) -> None: ...

    def detail(self, message: str) -> None: ...

    def warn(self, message: str) -> None: ...

    def waiting(self, message: str) -> contextlib.AbstractContextManager[None]: ...

    def output(self, line: str) -> None: ...


class Silent:
    """Progress that goes nowhere (tests, the pipeline worker's quiet paths)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def step(self, message: str) -> None:
        self.lines.append(message)

    def detail(self, message: str) -> None:
        self.lines.append(message)

    def warn(self, message: str) -> None:
        self.lines.append(f"warning: {message}")

    @contextlib.contextmanager
    def waiting(self, message: str) -> Iterator[None]:
        self.lines.append(message)
        yield

    def output(self, line: str) -> None:
        self.lines.append(line)
