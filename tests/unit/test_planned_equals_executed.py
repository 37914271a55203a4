"""Planned equals executed: for every resource kind and every action it can plan, the AWS
write calls its apply makes are the calls its plan shows, in order (in-process moto)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sdeliver.operations import reconcile
from sdeliver.plan import Change, Plan, apply_change, matches
from sdeliver.project import Project

EXAMPLE = Path(__file__).parents[2] / "config" / "sdeliver.example.yaml"
BASE = EXAMPLE.read_text().split("\npipeline:")[0] + "\n"
TABLES = """
tables:
  items:
    key: {name: id, type: S}
    ttl: expiresAt
    stream: NEW_AND_OLD_IMAGES
    indexes:
      by-owner: {key: {name: owner}}
"""
S3_CODEBUILD = """pipeline:
  source:
    provider: s3
    bucket: drops
    key: dromedary.zip
  build: codebuild
"""


class Ledger:
    """What each applied change planned and made."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, str]] = set()
        self.mismatches: list[str] = []

    def run(self, project: Project, plan: Plan) -> None:
        for change in plan.pending:
            made = apply_change(project, change, strict=False)
            self.seen.add((change.kind, change.action))
            if not matches(change.calls, [tuple(m.split(".", 1)) for m in made]):  # type: ignore[misc]
                self.mismatches.append(
                    f"{change.action} {change.resource}: planned {change.shown_calls}, made {made}")


def test_explore(make_project) -> None:  # type: ignore[no-untyped-def]
    from sdeliver.local.emulator import _ignore_policy_conditions
    _ignore_policy_conditions()
    project = make_project(BASE + TABLES + S3_CODEBUILD)
    ledger = Ledger()
    ledger.run(project, reconcile.plan(project))
    again = reconcile.plan(project)
    print("PENDING AFTER", [c.resource for c in again.pending])
    ledger.run(project, reconcile.destroy_plan(project, purge=True))
    print(sorted(ledger.seen))
    print("\n".join(ledger.mismatches))
    assert not ledger.mismatches
