"""Plans as data: what reconcile (or destroy) will do, shown, checked and executed alike.

A `Change` says which resource, what action, which fields go from what to what, and the
AWS write calls it will make (`Call`s, in order); its `run` makes them. A change is only
ever made through `Change.apply` (`execute` applies a plan's changes in order), which
records the write calls `run` really makes (at `Aws.call`, so botocore's own retries count
once): where they differ from the calls the change planned — what `reconcile --check`,
`--dry-run` and `--json` printed — it says so (strict, as in the tests: raises
`PlanMismatch`; otherwise one line at -v).

What counts as a made call: every `Aws.call` whose operation writes (not Get*, List*,
Describe*, Head*...), whether AWS answered, refused it or an `ignore=` code swallowed it.
Waiters, paginated lists and reads are not calls of the plan. A call made only when AWS
answers a certain way (a retry after a lost answer, the adoption of what that answer
created, a write that S3's defaults make unnecessary) is planned with `when=` (made at
most once); a call made once per item found at run time (a batch of objects) with
`each=` (any number of times). What works around an emulator's gaps lives in the emulator
(`local/quirks.py`), never as extra calls.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .aws import is_write
from .errors import SdeliverError

if TYPE_CHECKING:
    from .project import Project

Action = Literal["create", "update", "delete", "none"]

# Set (to anything but "" or "0") to make `execute` raise when a change's calls differ from
# its plan: the tests do; a user never needs to.
STRICT_ENV = "SDELIVER_STRICT_PLANS"


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any
    new: Any

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "from": self.old, "to": self.new}


@dataclass(frozen=True)
class Call:
    """One AWS write call a change makes: boto3's service name and the API's operation name.

    when: the call is made only in that case (at most once), e.g. "unless S3's default".
    each: the call is made once per such item found at run time (any number of times)."""

    service: str
    operation: str
    when: str = ""
    each: str = ""

    def __str__(self) -> str:
        name = f"{self.service}.{self.operation}"
        if self.each:
            return f"{name} (each {self.each})"
        return f"{name} ({self.when})" if self.when else name

    @property
    def short(self) -> str:
        """As the plan's table shows it: "CreateStage", "CreateStage?" (when), "DeleteObjects*"
        (each)."""
        return self.operation + ("*" if self.each else "?" if self.when else "")


def call(name: str, *, when: str = "", each: str = "") -> Call:
    """A Call from "service.Operation", as plans show it."""
    service, _, operation = name.partition(".")
    return Call(service, operation, when=when, each=each)


@dataclass
class Change:
    kind: str  # the resource kind, e.g. "lambda-function"
    name: str  # the resource's name in AWS
    action: Action
    fields: list[FieldChange] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    # What makes the calls; run only through `apply`, which checks them against `calls`.
    run: Callable[[Project], None] | None = field(default=None, repr=False, compare=False)

    @property
    def resource(self) -> str:
        return f"{self.kind} {self.name}"

    def apply(self, project: Project, *, strict: bool | None = None) -> list[str]:
        """Make the change, checking its write calls against its plan (`apply_change`)."""
        return apply_change(project, self, strict=strict)

    @property
    def shown_calls(self) -> list[str]:
        """The calls as the plan shows them: "lambda.CreateFunction", conditions in brackets."""
        return [str(c) for c in self.calls]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "action": self.action,
            "fields": [f.to_json() for f in self.fields],
            "calls": self.shown_calls,
        }


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.action != "none"]

    @property
    def converged(self) -> bool:
        return not self.pending

    def extend(self, changes: Iterable[Change]) -> None:
        self.changes.extend(changes)

    def counts(self) -> dict[str, int]:
        counts = {"create": 0, "update": 0, "delete": 0, "none": 0}
        for change in self.changes:
            counts[change.action] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return {
            "converged": self.converged,
            "counts": self.counts(),
            "changes": [c.to_json() for c in self.changes],
        }


def diff_fields(desired: dict[str, Any], actual: dict[str, Any] | None) -> list[FieldChange]:
    """Field-by-field difference; only the fields sdeliver declares are compared."""
    actual = actual or {}
    return [
        FieldChange(key, actual.get(key), value)
        for key, value in desired.items()
        if actual.get(key) != value
    ]


# -- the executor ---------------------------------------------------------------------------


class PlanMismatch(SdeliverError):
    """A change made other write calls than it planned: the plan shown was not the truth."""


class Recorder:
    """The write calls made through one `Aws` while a change applies (any thread)."""

    def __init__(self) -> None:
        self.made: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, service: str, operation: str) -> None:
        if is_write(operation):
            with self._lock:
                self.made.append((service.partition("@")[0], operation))

    @property
    def names(self) -> list[str]:
        return [f"{service}.{operation}" for service, operation in self.made]


def matches(planned: Sequence[Call], made: Sequence[tuple[str, str]]) -> bool:
    """Whether the calls made are the planned ones in order: each plain call exactly once, a
    `when` call at most once, an `each` call any number of times."""

    # The planned calls as a pattern, run over the calls made: `states` holds every position
    # in the plan the calls so far can have reached (no recursion: a bucket emptied in
    # thousands of batches is thousands of calls).
    def skip_optional(states: set[int]) -> set[int]:
        todo, reached = list(states), set(states)
        while todo:
            i = todo.pop()
            if i < len(planned) and (planned[i].when or planned[i].each) and i + 1 not in reached:
                reached.add(i + 1)
                todo.append(i + 1)
        return reached

    states = skip_optional({0})
    for made_call in made:
        states = skip_optional({
            i if planned[i].each else i + 1
            for i in states
            if i < len(planned) and (planned[i].service, planned[i].operation) == made_call
        })
    return len(planned) in states


def strict_default() -> bool:
    return os.environ.get(STRICT_ENV, "") not in ("", "0")


def apply_change(project: Project, change: Change, *, strict: bool | None = None) -> list[str]:
    """Apply one change, recording its write calls; check them against its plan. Returns the
    calls made ("service.Operation")."""
    recorder = Recorder()
    project.aws.observers.append(recorder)
    try:
        if change.run is not None:
            change.run(project)
    finally:
        project.aws.observers.remove(recorder)
    if not matches(change.calls, recorder.made):
        message = (
            f"{change.action} {change.resource}: made {recorder.names or 'no write calls'}, "
            f"planned {change.shown_calls or 'none'}"
        )
        if strict_default() if strict is None else strict:
            raise PlanMismatch(message, hint="a bug in sdeliver: please report it")
        project.aws.log(f"plan mismatch: {message}")
    return recorder.names


def execute(project: Project, plan: Plan, *, strict: bool | None = None) -> None:
    """Apply each pending change of the plan in order, checking its calls against its plan."""
    for change in plan.pending:
        project.progress.step(f"{change.action} {change.resource}")
        change.apply(project, strict=strict)
