"""Plans as data: what reconcile (or destroy) will do, shown, checked and executed alike.

A `Change` says which resource, what action, which fields go from what to what, and the API
calls it will make; its `apply` does exactly that. `reconcile --check`, `--dry-run` and
`--json` print the same list that `reconcile` executes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .project import Project

Action = Literal["create", "update", "delete", "none"]


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any
    new: Any

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "from": self.old, "to": self.new}


@dataclass
class Change:
    kind: str  # the resource kind, e.g. "lambda-function"
    name: str  # the resource's name in AWS
    action: Action
    fields: list[FieldChange] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)  # e.g. "lambda.CreateFunction"
    apply: Callable[[Project], None] | None = field(default=None, repr=False, compare=False)

    @property
    def resource(self) -> str:
        return f"{self.kind} {self.name}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "action": self.action,
            "fields": [f.to_json() for f in self.fields],
            "calls": list(self.calls),
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


def unchanged(kind: str, name: str) -> Change:
    return Change(kind, name, "none")
