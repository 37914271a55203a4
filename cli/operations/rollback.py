"""Rollback: put an environment back on its previous release as the ledger records it
(not "version minus one": the alias may have jumped), or on the release named.

Alias, stage deployment and site content (byte-identical, from the release's artifacts)
are restored, then a `rollback` entry is appended.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import OperationFailed
from ..ledger import Entry, Ledger, parse_iso
from ..lock import Lease
from ..project import Project
from ..release import ReleaseStore
from .deploy import put_back
from .environment import Pointers, move_alias, point_stage, publish_site, read_pointers, run_e2e
from .moves import Move, describe, expected_site
from .result import ReleaseResult


@dataclass
class RollbackPlan:
    env: str
    current: Entry
    target: Entry
    changes: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "from": {"seq": self.current.seq, "release": self.current.release},
            "to": {"seq": self.target.seq, "release": self.target.release},
            "changes": self.changes,
        }


def choose_target(ledger: Ledger, current: Entry, to: str | None) -> Entry:
    if to is None:
        target = ledger.previous_release(current)
        if target is None:
            raise OperationFailed(
                f"{ledger.env} has no earlier release to roll back to "
                f"(it runs {current.release}, its first)"
            )
        return target
    found = ledger.find(to)
    if found is None:  # a Lambda version number: the newest live entry that ran it
        found = next(
            (e for e in ledger.entries() if e.live and e.lambda_version == to.lstrip("v")), None
        )
    if found is None or found.lambda_version is None:
        raise OperationFailed(
            f"{to!r} is no release, ledger entry or version that {ledger.env} has run",
            hint=f"see 'sdeliver history --env {ledger.env}'",
        )
    return found


def _finished_by(project: Project, env: str, dead: Lease | None) -> ReleaseResult | None:
    """A rollback that died after recording its entry (before releasing its lease) is done:
    running it again must not roll back a second time."""
    if dead is None or dead.command != "rollback":
        return None
    latest = Ledger(project, env).latest()
    if (
        latest is None or latest.action != "rollback" or latest.who != dead.owner
        or parse_iso(latest.when) < parse_iso(dead.started).replace(microsecond=0)
    ):
        return None
    project.progress.warn(f"the interrupted rollback had finished: ledger #{latest.seq}")
    return ReleaseResult(env, "rollback", "unchanged", latest.release, latest.lambda_version,
                         latest.api_deployment_id, latest.e2e, latest.seq)


def plan_rollback(
    project: Project, env: str, to: str | None = None, *, current: Entry | None = None,
    now: Pointers | None = None,
) -> RollbackPlan:
    """What a rollback would move (also `--dry-run`): from the ledger's current entry (or
    `current`, what the move found serving) to its previous release, or `to`."""
    ledger = Ledger(project, env)
    current = current or ledger.current()
    if current is None:
        raise OperationFailed(f"{env} has no release in the ledger: nothing to roll back")
    target = choose_target(ledger, current, to)
    now = now or read_pointers(project, env)
    changes: list[dict[str, Any]] = [
        {
            "pointer": "alias",
            "from": now.version,
            "to": target.lambda_version,
            "weights_cleared": bool(now.weights),
        },
        {"pointer": "stage", "from": now.deployment_id, "to": target.api_deployment_id},
        {"pointer": "site", "from": expected_site(current) or current.release,
         "to": expected_site(target) or target.release},
    ]
    return RollbackPlan(env, current, target, changes)


def rollback(
    project: Project,
    env: str,
    *,
    to: str | None = None,
    run_tests: bool = False,
    wait: float | None = None,
) -> ReleaseResult:
    project.config.env(env)
    # Where the ledger says this rollback goes (read again under the lease): pointers
    # already there are this rollback's own, cut short and now run again.
    try:
        planned = plan_rollback(project, env, to, now=Pointers(version=None))
        aim: Entry | None = planned.target
    except OperationFailed:
        aim = None
    with Move(project, env, "rollback", toward=aim.release if aim else None,
              toward_entry=aim, wait=wait) as move:
        done = _finished_by(project, env, move.lock.took_over)
        if done is not None and move.found is None:
            return done
        planned = plan_rollback(project, env, to, current=move.current, now=move.before)
        current, target = planned.current, planned.target
        if target.lambda_version is None or target.api_deployment_id is None:
            raise OperationFailed(f"ledger entry #{target.seq} lacks its pointers")
        site_release = expected_site(target)
        manifest = ReleaseStore(project).require(site_release or target.release)
        before = move.before
        fields: dict[str, Any] = {
            **target.release_fields(),
            "action": "rollback",
            "replaces": current.seq,
        }

        def failed(err: BaseException) -> None:
            put_back(project, env, before, current)
            move.append(**fields, outcome="failed", message=describe(err))

        move.on_failure = failed
        move_alias(project, env, target.lambda_version, revision_id=before.alias_revision)
        point_stage(project, env, target.api_deployment_id)
        published = publish_site(project, env, site_release or target.release, manifest)
        e2e = run_e2e(project, env, target.release) if run_tests else "skipped"
        message = f"back to #{target.seq} from #{current.seq}"
        entry = move.append(**fields, outcome="succeeded", e2e=e2e, message=message)
        return ReleaseResult(
            env,
            "rollback",
            "succeeded",
            target.release,
            target.lambda_version,
            target.api_deployment_id,
            e2e,
            entry.seq,
            published.to_json() if published else None,
            message,
        )
