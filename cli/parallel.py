"""Independent AWS reads side by side.

On AWS every call is a network round trip (tens of milliseconds from a CI runner), so a
command waits for the number of calls it makes one after another, not for their total.
Reads that do not need each other's answers go out together through these helpers; the
answers come back in the order asked, and an error is raised as the same calls made one
after another would have raised it: the first in that order.

boto3 clients are thread-safe, and `Aws.client` creates each client once under a lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# At most this many calls in flight from one helper. 1: one after another (the tests compare
# a plan made that way with one made in parallel).
THREADS = 8


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What one call gave: its value, or the error it raised (raised again by `value`)."""

    result: T | None = None
    error: BaseException | None = None

    def value(self) -> T:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


def _settle(fn: Callable[[], T]) -> Outcome[T]:
    try:
        return Outcome(result=fn())
    except Exception as err:  # handed back, raised by Outcome.value
        return Outcome(error=err)


def settled(*calls: Callable[[], Any]) -> list[Outcome[Any]]:
    """Run the calls side by side; each one's outcome, in order, none raised yet. For a
    caller that must look at one answer before it may raise another one's error."""
    if THREADS <= 1 or len(calls) <= 1:
        return [_settle(fn) for fn in calls]
    with ThreadPoolExecutor(max_workers=min(THREADS, len(calls))) as pool:
        return list(pool.map(_settle, calls))


def together(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls side by side; their values in order (the first error in order raised)."""
    return [outcome.value() for outcome in settled(*calls)]


def each(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """fn(item) for every item, side by side; the values in the items' order."""
    listed = list(items)
    return together(*(lambda item=item: fn(item) for item in listed))
