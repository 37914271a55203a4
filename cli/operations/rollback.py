"""Rollback: put an environment back on its previous release as the ledger records it
(not "version minus one": the alias may have jumped), or on the release named.

Alias, stage deployment and site content (byte-identical, from the release's artifacts)
are restored, then a `rollback` entry is appended.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import parallel
from ..errors import OperationFailed
from ..ledger import Entry, EntryFields, Ledger, parse_iso
from ..lock import Lease
from ..project import Project
from ..publish import Prior, listing
from ..release import ReleaseStore
from ..resources.api import rest_api_id as api_id
from .deploy import put_back
from .environment import (
    Pointers,
    move_alias,
    point_stage,
    publish_site,
    read_pointers,
    run_e2e,
)
from .moves import Move, describe, expected_site
from .result import ReleaseResult, unchanged_result


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
    return unchanged_result(env, "rollback", latest.release, latest)


def plan_rollback(
    project: Project, env: str, to: str | None = None, *, current: Entry | None = None,
    now: Pointers | None = None, ledger: Ledger | None = None,
) -> RollbackPlan:
    """What a rollback would move (also `--dry-run`): from the ledger's current entry (or
    `current`, what the move found serving) to its previous release, or `to`. ledger: the
    one already read (its entries are cached)."""
    ledger = ledger or Ledger(project, env)
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
    store = ReleaseStore(project)
    with tempfile.TemporaryDirectory(prefix="sdeliver-rollback-") as tmp:

        def aim_and_artifacts() -> tuple[Entry | None, dict[str, Any] | None, Path | None]:
            """Where the ledger says this rollback goes, and that release's manifest and
            site, read while the lease is taken (read again under it: pointers already
            there are this rollback's own, cut short and now run again)."""
            try:
                target = plan_rollback(project, env, to, now=Pointers(version=None)).target
            except OperationFailed:
                return None, None, None
            site = expected_site(target) or target.release
            manifest, site_zip = parallel.together(
                lambda: store.manifest(site),
                lambda: store.download_site(site, Path(tmp))
                if project.config.site is not None and target.site_digest else None,
            )
            return target, manifest, site_zip

        def beside() -> tuple[Entry | None, dict[str, Any] | None, Path | None]:
            # The API's id (the live stage is read by it) and which emulator serves the
            # URLs are known before they are needed, not asked on the way.
            found, _, _ = parallel.together(
                aim_and_artifacts, lambda: api_id(project), lambda: project.aws.emulator
            )
            return found  # type: ignore[no-any-return]

        move = Move(
            project, env, "rollback", wait=wait,
            beside=beside,
            aim=lambda found: (found[0].release if found[0] else None, found[0]),
            with_reads=(lambda: _listing_of(project, env),),
        )
        with move:
            return _rollback_locked(project, env, to, move, run_tests)


def _listing_of(project: Project, env: str) -> dict[str, str] | None:
    if project.config.site is None:
        return None
    return listing(project, project.site_bucket(env))


def _rollback_locked(
    project: Project, env: str, to: str | None, move: Move, run_tests: bool
) -> ReleaseResult:
    done = _finished_by(project, env, move.lock.took_over)
    if done is not None and move.found is None:
        return done
    planned = plan_rollback(project, env, to, current=move.current, now=move.before,
                            ledger=move.ledger)
    current, target = planned.current, planned.target
    if target.lambda_version is None or target.api_deployment_id is None:
        raise OperationFailed(f"ledger entry #{target.seq} lacks its pointers")
    site_release = expected_site(target) or target.release
    aimed, manifest, site_zip = move.beside_result
    store = ReleaseStore(project)
    if aimed is None or aimed.seq != target.seq or manifest is None:
        # What was read beside the lease is not where the rollback goes now: read it again.
        manifest, site_zip = store.require(site_release), None
    before = move.before  # what a failure puts back
    assert move.live is not None
    live_revision = move.live.pointers.alias_revision
    fields: EntryFields = {
        **target.release_fields(),
        "action": "rollback",
        "replaces": current.seq,
    }

    def failed(err: BaseException) -> None:
        put_back(project, env, before, current)
        failure: EntryFields = {**fields, "outcome": "failed", "message": describe(err)}
        move.append(**failure)

    move.on_failure = failed
    version, deployment = target.lambda_version, target.api_deployment_id
    parallel.together(  # the alias and the stage switch together
        lambda: move_alias(project, env, version, revision_id=live_revision),
        lambda: point_stage(project, env, deployment),
    )
    move.confirm_early()  # beside the site's last writes: the entry follows them
    live, [found] = move.live, move.read_with
    prior = (
        Prior(live.published, found)
        if live is not None and live.published is not None and found is not None else None
    )
    published = publish_site(project, env, site_release, manifest, site_zip, prior=prior)
    e2e = run_e2e(project, env, target.release) if run_tests else "skipped"
    message = f"back to #{target.seq} from #{current.seq}"
    succeeded: EntryFields = {**fields, "outcome": "succeeded", "e2e": e2e, "message": message}
    entry = move.append(**succeeded)
    return ReleaseResult(
        env=env, action="rollback", outcome="succeeded", release=target.release,
        version=target.lambda_version, deployment_id=target.api_deployment_id, e2e=e2e,
        seq=entry.seq, site=published.to_json() if published else None, message=message,
    )
