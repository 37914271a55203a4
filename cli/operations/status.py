"""Status and history: what each environment runs, read from AWS and the ledger."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .. import parallel
from ..errors import SdeliverError
from ..ledger import Ledger
from ..lock import read_lock
from ..project import Project
from ..resources import cdn
from ..resources.api import rest_api_id as api_id
from .moves import disagreements, identify, read_live
from .pointers import urls


def environment_status(project: Project, env: str) -> dict[str, Any]:
    domain = project.config.env(env).domain
    doc: dict[str, Any] = {"alias": env, "domain": domain}
    ledger = Ledger(project, env)
    # Side by side: the live pointers (config.json's release among them), the ledger and
    # the lease (answers looked at in this order).
    got_live, got_last, got_lease, got_cdn = parallel.settled(
        lambda: read_live(project, env), ledger.latest, lambda: read_lock(project, env),
        lambda: cdn.distribution_state(project, env) if cdn.is_cloudfront(project) else None,
    )
    try:
        found_cdn = got_cdn.value()
        if found_cdn is not None or cdn.is_cloudfront(project):
            # {id, domain, status}: "InProgress" until every edge location serves its last
            # change (reconcile --no-wait does not wait for that); None: not made yet.
            doc["distribution"] = found_cdn
    except SdeliverError as err:
        doc["distribution_error"] = err.message
    try:
        live = got_live.value()
        pointers = live.pointers
        api_url, site_url = urls(project, env)
    except SdeliverError as err:
        return {**doc, "version": None, "error": err.message}
    try:  # a corrupt entry or lock is this environment's problem, not every one's
        last = got_last.value()
        entry = ledger.current() if last is not None and not last.live else last
    except SdeliverError as err:
        return {**doc, "version": pointers.version, "error": err.message}
    try:
        lease = got_lease.value()
    except SdeliverError as err:
        lease, doc["lock_error"] = None, err.message
    differ = disagreements(live, entry)
    doc["in_sync"] = not differ
    if differ:
        found = identify(project, live)
        doc["live"] = {"alias": found.alias, "stage": found.stage, "site": found.site}
        doc["drift"] = [str(d) for d in differ]
        doc["repair"] = (
            f"run 'sdeliver deploy --env {env}' to release again, or "
            f"'sdeliver rollback --env {env}' to go back; either records what serves first"
        )
    doc.update(
        version=pointers.version,  # the Lambda version; "lambda_version" names it apart
        lambda_version=pointers.version,
        weights=pointers.weights,
        deployment_id=pointers.deployment_id,
        release=None,
        api_url=api_url,
        site_url=site_url,
        locked_by=lease.describe() if lease else None,
    )
    if ledger.problems():
        doc["ledger_problems"] = ledger.problems()
    if entry is None and not differ:
        # The stage serves sdeliver's "no release yet" deployment (503), whatever version
        # the alias shows: nothing has been released here.
        doc["no_release"] = True
    if entry is not None:
        doc.update(
            release=entry.release,
            code_sha256=entry.code_sha256,
            seq=entry.seq,
            action=entry.action,
            outcome=entry.outcome,
            e2e=entry.e2e,
            deployed_at=entry.when,
            deployed_by=entry.who,
            source_revision=entry.source_revision,
        )
    if last is not None and last is not entry:
        doc["last"] = {
            "seq": last.seq,
            "action": last.action,
            "outcome": last.outcome,
            "e2e": last.e2e,
            "when": last.when,
            "message": last.message,
        }
    return doc


def status(project: Project) -> dict[str, Any]:
    envs = list(project.config.environments)
    # Once, before the threads share them: the caller (the ledger's bucket is named after
    # its account) and the API's id, side by side. An error finding the API is each
    # environment's to report, so it is not raised here.
    identity, _api, _emulator = parallel.settled(
        project.aws.identity, lambda: api_id(project), lambda: project.aws.emulator
    )
    identity.value()
    with ThreadPoolExecutor(max_workers=min(8, len(envs))) as pool:
        found = list(pool.map(lambda env: environment_status(project, env), envs))
    return {
        "app": project.app,
        "region": project.region,
        "environments": dict(zip(envs, found, strict=False)),
    }


def history(project: Project, env: str, limit: int | None = None) -> dict[str, Any]:
    """The newest entries, and what is wrong with the ledger's keys (from the same listing)."""
    project.config.env(env)
    ledger = Ledger(project, env)
    entries = [entry.model_dump(mode="json") for entry in ledger.entries(limit)]
    return {"entries": entries, "problems": ledger.problems()}
