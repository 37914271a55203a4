"""How results look: a plan as a table for people, as data for --json."""

from __future__ import annotations

import json
from typing import Any

from rich.table import Table

from .output import console
from .plan import Plan

ACTION_STYLE = {"create": "green", "update": "yellow", "delete": "red", "none": "dim"}


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def plan_table(plan: Plan, *, show_unchanged: bool = False) -> None:
    changes = plan.changes if show_unchanged else plan.pending
    if not changes:
        console().print("No changes: AWS matches sdeliver.yaml.")
        return
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("resource")
    table.add_column("action")
    table.add_column("changes")
    table.add_column("AWS calls")
    for change in changes:
        detail = "; ".join(
            f"{f.field}: {_short(f.old)} → {_short(f.new)}"
            if change.action == "update"
            else f.field
            for f in change.fields
        )
        style = ACTION_STYLE[change.action]
        calls = ", ".join(c.short for c in change.calls)
        table.add_row(change.resource, f"[{style}]{change.action}[/]", detail, calls)
    console().print(table)
    if any(c.when or c.each for change in changes for c in change.calls):
        console().print("AWS calls: ? only when needed, * as many times as needed "
                        "(--json says when).")
    counts = plan.counts()
    console().print(
        f"Plan: {counts['create']} to create, {counts['update']} to update, "
        f"{counts['delete']} to delete, {counts['none']} unchanged."
    )
