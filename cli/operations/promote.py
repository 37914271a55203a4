"""Promote: make the target environment run exactly the release the source runs now.

Nothing is rebuilt: the same Lambda version (no upload, no new version), the same API
deployment (a deployment is an immutable snapshot of the definition, so the target stage
serves the very same one), the site from the release's stored artifacts with the target's
own config.json. Then the target's e2e; on failure, back to the target's previous release.
With a canary, traffic moves to the new version by alias routing weights in steps, e2e and
alarms checked between steps; the stage and site switch when the traffic does, at 100 %.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import parallel
from ..errors import OperationFailed, SdeliverError, UsageError
from ..ledger import Entry, EntryFields, Ledger, Outcome
from ..project import Project
from ..publish import Prior, listing
from ..release import Manifest, ReleaseStore
from ..resources.api import rest_api_id as api_id
from .deploy import put_back, restore
from .moves import Move, describe, disagreements
from .pointers import Pointers, move_alias, point_stage, publish_site, run_e2e
from .result import ReleaseResult


@dataclass
class Canary:
    percent: float
    steps: int = 3
    interval: float = 60.0

    def weights(self) -> list[float]:
        """Traffic on the new version at each step, the last being 100 % (the switch)."""
        if self.steps <= 1:
            return [100.0]
        span = 100.0 - self.percent
        return [round(self.percent + span * i / (self.steps - 1), 2) for i in range(self.steps)]


def parse_route(route: str | None, source: str | None, target: str | None) -> tuple[str, str]:
    if route:
        if "->" not in route:
            raise UsageError(f"{route!r}: write the route as SOURCE->TARGET, e.g. test->prod")
        source, target = (part.strip() for part in route.split("->", 1))
    if not source or not target:
        raise UsageError("name the environments: 'promote test->prod' or --from test --to prod")
    return source, target


def check_route(project: Project, source: str, target: str, *, skip_order: bool) -> None:
    config = project.config
    config.env(source)
    config.env(target)
    if source == target:
        raise UsageError(f"cannot promote {source} to itself")
    order = list(config.environments)
    if not skip_order and order.index(target) != order.index(source) + 1:
        raise UsageError(
            f"{source}->{target} skips the declared order ({' -> '.join(order)})",
            hint="pass --skip-order to promote anyway",
        )


def source_release(project: Project, source: str) -> Entry:
    entry = Ledger(project, source).current()
    if entry is None:
        raise OperationFailed(
            f"{source} has no release to promote", hint=f"run 'sdeliver deploy --env {source}'"
        )
    if entry.action in ("interrupted", "drifted"):
        raise OperationFailed(
            f"{source} serves release {entry.release} from an {entry.action} move "
            f"(ledger #{entry.seq}) whose e2e never ran: not promoting it",
            hint=f"deploy {source} again (or roll it back), then promote",
        )
    if entry.e2e == "failed":
        raise OperationFailed(
            f"{source} runs release {entry.release}, whose e2e failed: not promoting it",
            hint=f"fix it and deploy {source} again",
        )
    if entry.lambda_version is None or entry.api_deployment_id is None:
        raise OperationFailed(f"ledger entry #{entry.seq} of {source} lacks its pointers")
    return entry


def alarms_firing(project: Project, env: str) -> list[str]:
    names = project.config.env(env).alarms
    if not names:
        return []
    found = project.aws.call(
        "cloudwatch", "describe_alarms", resource=f"alarms of {env}", AlarmNames=names
    )
    return [a["AlarmName"] for a in found.get("MetricAlarms", []) if a["StateValue"] == "ALARM"]


def promote(
    project: Project,
    source: str,
    target: str,
    *,
    skip_order: bool = False,
    canary: Canary | None = None,
    rollback_on_failure: bool = True,
    wait: float | None = None,
) -> ReleaseResult:
    check_route(project, source, target, skip_order=skip_order)
    command = f"promote {source}->{target}"
    store = ReleaseStore(project)
    with tempfile.TemporaryDirectory(prefix="sdeliver-promote-") as tmp:

        def source_and_artifacts() -> tuple[Entry, dict[str, Any], Path | None]:
            """The source's release, then its manifest beside its site (not the target's
            state: read while the target's lease is taken)."""
            src, *_ = parallel.together(
                lambda: source_release(project, source),
                lambda: api_id(project),  # the live stage is read by it
                lambda: project.aws.emulator,  # which emulator serves the URLs, if any
            )
            manifest, site_zip = parallel.together(
                lambda: store.require(src.release),
                lambda: store.download_site(src.release, Path(tmp))
                if project.config.site is not None and src.site_digest else None,
            )
            return src, manifest, site_zip

        move = Move(
            project, target, command, wait=wait,
            beside=source_and_artifacts,
            aim=lambda found: (found[0].release, found[0]),
            with_reads=(lambda: _listing_of(project, target),),
        )
        with move:
            src, manifest, site_zip = move.beside_result
            return _promote_locked(
                project, source, target, src, manifest, site_zip, move,
                canary=canary, rollback_on_failure=rollback_on_failure,
            )


def _listing_of(project: Project, env: str) -> dict[str, str] | None:
    """The site bucket's objects, read beside the move's own reads (publish needs them)."""
    if project.config.site is None:
        return None
    return listing(project, project.site_bucket(env))


def _promote_locked(
    project: Project,
    source: str,
    target: str,
    src: Entry,
    manifest: Manifest,
    site_zip: Path | None,
    move: Move,
    *,
    canary: Canary | None,
    rollback_on_failure: bool,
) -> ReleaseResult:
    current, before = move.current, move.before  # before: what a failure puts back
    assert move.live is not None
    live = move.live.pointers
    if (
        current is not None
        and current.release == src.release
        and current.action in ("deploy", "promote", "rollback")
        and live.version == src.lambda_version
        and live.deployment_id == src.api_deployment_id
        and not live.weights
        and not disagreements(move.live, current)  # a publish cut short is finished below
    ):
        return ReleaseResult(
            env=target, action="promote", outcome="unchanged", release=src.release,
            version=src.lambda_version, deployment_id=src.api_deployment_id, e2e=current.e2e,
            seq=current.seq,
        )
    fields: EntryFields = {
        **src.release_fields(),
        "action": "promote",
        "replaces": current.seq if current else None,
        "message": f"from {source} (ledger #{src.seq})",
    }
    assert src.lambda_version is not None and src.api_deployment_id is not None

    def failed(err: BaseException) -> None:
        put_back(project, target, before, current)
        failure: EntryFields = {**fields, "message": describe(err), "outcome": "failed"}
        move.append(**failure)

    move.on_failure = failed
    revision = live.alias_revision
    if canary is not None and before.version not in (None, src.lambda_version):
        revision = None  # each step gave the alias a new revision; the lease is ours
        stopped = _canary(project, target, src, before, canary, move, fields)
        if stopped:
            return stopped
    version, deployment = src.lambda_version, src.api_deployment_id
    parallel.together(  # the alias and the stage switch together
        lambda: move_alias(project, target, version, revision_id=revision),
        lambda: point_stage(project, target, deployment),
    )
    move.confirm_early()  # beside the site's last writes: the entry follows them
    [found] = move.read_with
    read = move.live.published
    prior = Prior(read, found) if read is not None and found is not None else None
    published = publish_site(project, target, src.release, manifest, site_zip, prior=prior)
    e2e = run_e2e(project, target, manifest.get("version") or src.release)
    outcome: Outcome = "succeeded"
    message = fields.get("message")
    if e2e == "failed" and rollback_on_failure and current is not None:
        project.progress.warn(f"e2e failed: putting {target} back on {current.release}")
        try:
            restore(project, target, before, current)
            outcome = "rolled-back"
            message = f"e2e failed; {target} restored to {current.release}"
        except SdeliverError as err:
            # Recorded all the same: the environment may serve this release now.
            project.progress.warn(f"could not restore {target}: {err.message}")
            outcome = "failed"
            message = f"e2e failed; could not restore {target} to {current.release}: " \
                f"{err.message}"
    done: EntryFields = {**fields, "message": message, "outcome": outcome, "e2e": e2e}
    entry = move.append(**done)
    return ReleaseResult(
        env=target, action="promote", outcome=outcome, release=src.release,
        version=src.lambda_version, deployment_id=src.api_deployment_id, e2e=e2e,
        seq=entry.seq, site=published.to_json() if published else None, message=message,
    )


def _canary(
    project: Project,
    env: str,
    src: Entry,
    before: Pointers,
    canary: Canary,
    move: Move,
    fields: EntryFields,
) -> ReleaseResult | None:
    """Shift traffic step by step; a failure puts all traffic back and ends the promotion."""
    assert before.version is not None and src.lambda_version is not None
    steps: list[dict[str, Any]] = []
    for percent in canary.weights()[:-1]:
        weights = {src.lambda_version: round(percent / 100, 4)}
        move_alias(project, env, before.version, weights=weights)
        project.progress.step(f"canary: {percent:g} % of {env} on version {src.lambda_version}")
        step: EntryFields = {
            **fields, "action": "canary", "weights": weights, "outcome": "succeeded"}
        entry = move.append(**step)
        move.recorded = None  # a step, not the promotion's outcome: a failure still records
        with project.progress.waiting(f"watching {env} for {canary.interval:g} s"):
            project.aws.sleep(canary.interval)
        firing = alarms_firing(project, env)
        e2e = run_e2e(project, env, src.release)
        steps.append({"percent": percent, "seq": entry.seq, "e2e": e2e, "alarms": firing})
        if e2e == "failed" or firing:
            reason = f"alarms {', '.join(firing)}" if firing else "e2e failed"
            move_alias(project, env, before.version)
            message = (
                f"canary stopped at {percent:g} %: {reason}; all traffic back on "
                f"version {before.version}"
            )
            project.progress.warn(message)
            stopped: EntryFields = {
                **fields, "message": message, "outcome": "rolled-back",
                "e2e": "failed" if e2e == "failed" else "passed",
            }
            done = move.append(**stopped)
            return ReleaseResult(
                env=env, action="promote", outcome="rolled-back", release=src.release,
                version=src.lambda_version, deployment_id=before.deployment_id, e2e=done.e2e,
                seq=done.seq, message=message, steps=steps,
            )
    return None
