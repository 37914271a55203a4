"""Deploy: build a release from the project directory and make an environment run it.

Build first (outside the lock: a slow build must not hold the environment), then, holding
the environment's lease: store the release's artifacts, update the function code only when
its SHA-256 differs, publish a version, apply the API definition only when it changed and
deploy the stage, move the alias, publish the site (config.json last), run e2e. When e2e
fails (or a step fails) the previous pointers are put back. Every outcome is a ledger entry.

The site's new files (keys the bucket lacks) upload in a thread while the function updates
and settles; what visitors see — changed files, deletions, config.json — waits for the alias.

Each step is public: the pipeline's actions (operations/pipeline.py) run the same ones.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from .. import parallel, sites
from .. import publish as site
from ..aws import FUNCTION_BUSY, lambda_
from ..endpoints import gateway_url
from ..errors import OperationFailed, SdeliverError
from ..ledger import Entry, EntryFields, Ledger, Outcome
from ..project import Project
from ..release import Manifest, Release, ReleaseStore, build
from ..resources import api, function
from ..resources.api import rest_api_id as api_id
from .moves import Live, Move, describe, disagreements, expected_site, read_live
from .pointers import (
    Pointers,
    move_alias,
    point_stage,
    publish_site,
    run_e2e,
)
from .result import ReleaseResult, unchanged_result

T = TypeVar("T")

# Published versions snapshot these: a new version is needed when any differs.
VERSION_FIELDS = (
    "CodeSha256",
    "Handler",
    "Runtime",
    "MemorySize",
    "Timeout",
    "Role",
    "Environment",
    "Architectures",
)


def publish_version(
    project: Project, built: Release, store: ReleaseStore, latest: dict[str, Any] | None = None
) -> str:
    """The version that runs `built`: the code is uploaded and a version published only
    when needed. latest: $LATEST as the caller read it already (else read here)."""

    name = project.function_name
    latest = latest or function.read_function(project)
    if latest is None:

        raise OperationFailed(
            f"function {name} does not exist", hint="run 'sdeliver init' (or reconcile) first"
        )
    latest = _apply_function_settings(project, latest)
    architectures = [project.config.function.architecture]
    if (
        latest.get("CodeSha256") != built.code_sha256
        or latest.get("Architectures", ["x86_64"]) != architectures
    ):
        project.progress.step(f"updating the code of {name}")
        updated = project.aws.call(
            "lambda",
            "update_function_code",
            resource=f"function {name}",
            retry=(FUNCTION_BUSY,),
            FunctionName=name,
            S3Bucket=store.bucket,
            S3Key=store.key(built.release_id, "function.zip"),
            Architectures=architectures,
        )
        # Its own answer may say it is done already: no poll then.
        if (updated or {}).get("LastUpdateStatus") != "Successful":
            with project.progress.waiting(f"waiting for {name} to finish updating"):
                lambda_.wait_updated(project.aws, name, delay=1)
    else:
        reusable = _matching_version(project, latest)
        if reusable is not None:
            return reusable
    published = project.aws.call(
        "lambda",
        "publish_version",
        resource=f"function {name}",
        retry=(FUNCTION_BUSY,),
        FunctionName=name,
        Description=f"sdeliver release {built.release_id}",
        CodeSha256=built.code_sha256,
    )
    version = str(published["Version"])
    if published.get("State") != "Active":
        with project.progress.waiting(f"waiting for version {version} to be active"):
            lambda_.wait_published(project.aws, name, version, delay=1)
    return version


def _apply_function_settings(project: Project, latest: dict[str, Any]) -> dict[str, Any]:
    """Give $LATEST the settings sdeliver.yaml declares (environment, memory, timeout,
    handler, runtime, role) before a version is published: a version snapshots them, so a
    deploy of unchanged code with changed settings still publishes one. Returns $LATEST."""

    want = function.desired(project)
    have = function.settings(latest)
    changing = function.changed_settings(want, have)
    if not changing:
        return latest
    secrets = project.config.function.secrets

    def shown(key: str, value: Any) -> str:
        if key == "environment":
            value = function.mask(value, secrets)
        return value if isinstance(value, str) else json.dumps(value, sort_keys=True)

    project.progress.step(
        "function settings changed: "
        + "; ".join(f"{k} {shown(k, have[k])} → {shown(k, want[k])}" for k in changing)
    )
    function.update_configuration(project, project.function_name, want, changing)
    return function.read_function(project) or latest


def _matching_version(project: Project, latest: dict[str, Any]) -> str | None:
    """The newest published version identical to $LATEST (code and configuration)."""
    versions = [
        v
        for v in project.aws.paginate(
            "lambda",
            "list_versions_by_function",
            "Versions",
            resource=f"function {project.function_name}",
            FunctionName=project.function_name,
        )
        if v.get("Version") != "$LATEST"
    ]
    if not versions:
        return None
    newest = max(versions, key=lambda v: int(v["Version"]))
    same = all(newest.get(f) == latest.get(f) for f in VERSION_FIELDS)
    return str(newest["Version"]) if same else None


def deploy_api(
    project: Project,
    env: str,
    built: Release,
    found: dict[str, Any] | None = None,
    serving: tuple[Entry | None, str | None] = (None, None),
) -> str:
    """Apply the definition when it changed, then make a deployment of it for the
    environment's stage (which the caller points at it, beside the alias's move).

    found: the REST API as the caller read it (with its definition digest). serving: the
    ledger's current entry and the stage's live deployment: when that deployment is the
    entry's and of this very definition, the stage stays on it (the integration reaches the
    function through the alias, which deploy moves): no new deployment, no stage update."""

    current, live_deployment = serving
    if (
        current is not None
        and current.action in ("deploy", "promote", "rollback")  # its pointers all its own
        and live_deployment is not None
        and current.api_deployment_id == live_deployment
        and current.api_definition_sha256 == built.definition.sha256
    ):
        return live_deployment  # a snapshot of this very definition serves already
    rest_api = api_id(project)
    found = found or api.find_api(project)
    if found is None or api.definition_digest(found) != built.definition.sha256:
        project.progress.step(f"applying the API definition to {project.api_name}")
        api.apply_definition(project, rest_api, built.definition)
    return api.create_deployment(project, rest_api, env, f"sdeliver release {built.release_id}")


def restore(project: Project, env: str, before: Pointers, entry: Entry | None) -> None:
    """Put an environment back on what it served before (alias, stage, site)."""
    if before.version is not None:
        move_alias(project, env, before.version, weights=before.weights)
    if before.deployment_id is not None:
        point_stage(project, env, before.deployment_id)
    site_release = expected_site(entry) if entry is not None else None
    if site_release is not None:
        manifest = ReleaseStore(project).manifest(site_release)
        if manifest is not None:
            publish_site(project, env, site_release, manifest)


def put_back(project: Project, env: str, before: Pointers, current: Entry | None) -> None:
    """`restore`, after a step failed: a failure to restore is a warning, so the step's own
    error is the one reported."""
    try:
        restore(project, env, before, current)
    except Exception as err:  # any: the step's own error is the one to report
        project.progress.warn(f"could not restore {env}: {describe(err)}")


def pointers_of(entry: Entry) -> Pointers:
    """What an environment served when `entry` was recorded (no canary weights)."""
    return Pointers(version=entry.lambda_version, deployment_id=entry.api_deployment_id)


def switch_alias(project: Project, env: str, version: str, revision_id: str | None) -> None:
    """Move the environment's alias to the release's version (the switch for the function)."""
    move_alias(project, env, version, revision_id=revision_id)
    project.progress.step(f"alias {env} → version {version}")


def entry_fields(project: Project, release: Release, current: Entry | None) -> EntryFields:
    """What every ledger entry of a deploy says about its release."""
    store_key = ReleaseStore(project).key(release.release_id, "site.zip")
    return {
        "action": "deploy",
        "release": release.release_id,
        "code_sha256": release.code_sha256,
        "api_definition_sha256": release.definition.sha256,
        "site_digest": release.site_digest,
        "site_artifact": store_key if release.site_digest else None,
        "source_revision": release.source_revision,
        "replaces": current.seq if current else None,
    }


def record_failure(
    ledger: Ledger | Move,
    fields: EntryFields,
    message: str,
    *,
    version: str | None = None,
    deployment: str | None = None,
) -> Entry:
    failed: EntryFields = {
        **fields, "outcome": "failed", "lambda_version": version,
        "api_deployment_id": deployment, "message": message,
    }
    return ledger.append(**failed)


def record(
    project: Project,
    env: str,
    ledger: Ledger | Move,
    fields: EntryFields,
    *,
    version: str | None,
    deployment: str | None,
    label: str,
    current: Entry | None,
    undo: Callable[[], None] | None,
    site: dict[str, int] | None = None,
) -> ReleaseResult:
    """Run the environment's e2e against what it now serves, then write the release's ledger
    entry. When e2e fails, `undo` (if given) puts the environment back on `current`."""
    e2e = run_e2e(project, env, label)
    outcome: Outcome = "succeeded"
    message: str | None = None
    if e2e == "failed" and undo is not None and current is not None:
        project.progress.warn(f"e2e failed: putting {env} back on release {current.release}")
        try:
            undo()
            outcome, message = "rolled-back", f"e2e failed; {env} restored to {current.release}"
        except SdeliverError as err:
            # The entry is written all the same: the environment may serve this release.
            project.progress.warn(f"could not restore {env}: {err.message}")
            outcome = "failed"
            message = f"e2e failed; could not restore {env} to {current.release}: {err.message}"
    elif e2e == "failed":
        message = "e2e failed; the release stays in place"
    if e2e == "failed":
        project.progress.warn(f"the function's log: {logs_command(project, env)}")
    done: EntryFields = {
        **fields, "outcome": outcome, "lambda_version": version,
        "api_deployment_id": deployment, "e2e": e2e, "message": message,
    }
    entry = ledger.append(**done)
    return ReleaseResult(
        env=env, action="deploy", outcome=outcome, release=entry.release, version=version,
        deployment_id=deployment, e2e=e2e, seq=entry.seq, site=site, message=message,
    )


def logs_command(project: Project, env: str) -> str:
    """The command that shows what `env`'s function logged (locally: the gateway's log)."""
    local = " --local" if gateway_url(project) is not None else ""
    return f"sdeliver{local} logs --env {env}"


def unchanged(current: Entry | None, built: Release, live: Live) -> bool:
    """Whether the environment serves `built` exactly as its last deploy left it: same
    release, e2e not failed, and every live pointer (config.json's release included, so a
    lost site is published again) where the ledger says."""
    return (
        current is not None
        and current.release == built.release_id
        and current.e2e != "failed"
        and current.action in ("deploy", "promote", "rollback")
        and not disagreements(live, current)
    )


def deploy(
    project: Project,
    env: str,
    *,
    rollback_on_failure: bool = True,
    force: bool = False,
    wait: float | None = None,
) -> ReleaseResult:
    project.config.env(env)
    project.progress.step(f"building {project.app}")
    built = build(project)
    try:
        store, ledger = ReleaseStore(project), Ledger(project, env)
        # Side by side, before the lease: what the ledger says and what serves (the
        # unchanged check), the release's artifacts (content-addressed: stored once, and not
        # at all when it is stored already), $LATEST and the REST API with its digest.
        current, live, stored, latest, found, _ = parallel.together(
            ledger.current,
            lambda: read_live(project, env),
            lambda: store.store_artifacts(built),
            lambda: function.read_function(project),
            lambda: api.find_api(project),
            lambda: project.aws.emulator,  # which emulator serves the URLs, if any
        )
        if not force and unchanged(current, built, live):
            assert current is not None
            return unchanged_result(env, "deploy", built.release_id, current)
        seen = ledger.newest_seq
        # The manifest (the release complete) is written beside taking the lease.
        move = Move(project, env, "deploy", toward=built.release_id, wait=wait, ledger=ledger,
                    beside=(lambda: store.store_manifest(built)) if stored else None)
        with move:
            if stored:
                project.progress.step(f"stored release {built.release_id}")
            if ledger.newest_seq != seen or move.lock.waited:
                # Another command moved this environment between those reads and the lease:
                # what was read then is read again.
                latest = found = None
                assert move.live is not None
                if not force and move.found is None and unchanged(move.current, built, move.live):
                    current = move.current
                    assert current is not None
                    return unchanged_result(env, "deploy", built.release_id, current)
            return _deploy_locked(
                project, env, built, move, rollback_on_failure, force,
                latest=latest, found=found, store=store,
            )
    finally:
        built.close()


def _deploy_locked(
    project: Project,
    env: str,
    built: Release,
    move: Move,
    rollback_on_failure: bool,
    force: bool = False,
    *,
    latest: dict[str, Any] | None = None,
    found: dict[str, Any] | None = None,
    store: ReleaseStore | None = None,
) -> ReleaseResult:
    store = store or ReleaseStore(project)
    manifest = store.require(built.release_id)
    # `before` is what a failure puts back; `live` what serves now (they differ for a
    # re-run finishing its own cut-short move).
    current, before = move.current, move.before
    assert move.live is not None
    live = move.live.pointers
    fields = entry_fields(project, built, current)
    new_files = NewSiteFiles(project, env, built.release_id, manifest, built.site_zip,
                             move.live.published)
    version: str | None = None
    deployment: str | None = None

    def function_and_api() -> tuple[str, str]:
        nonlocal version, deployment
        # The function's new version beside the API's deployment: neither needs the other.
        version, deployment = parallel.together(
            lambda: publish_version(project, built, store, latest),
            lambda: deploy_api(project, env, built, found, (current, live.deployment_id)),
        )
        return version, deployment

    def failed(err: BaseException) -> None:
        # Any failure, ours or not (a stream cut mid-body, a bad zip, Ctrl-C): put
        # everything back and record the attempt before the error goes on to be reported.
        put_back(project, env, before, current)  # first: the live site's files stay whole
        new_files.remove()
        record_failure(move, fields, describe(err), version=version, deployment=deployment)

    move.on_failure = failed
    # The site's new files go up while the function update settles: no page links to
    # them until the switch below, so visitors still see the release they had.
    new_version, new_deployment = alongside(function_and_api, new_files.add, project)
    if new_files.added:
        project.progress.detail(f"site: {len(new_files.added)} new files added")
    # The alias and the stage switch together (each is one call, neither needs the other).
    parallel.together(
        lambda: switch_alias(project, env, new_version, live.alias_revision),
        lambda: None if new_deployment == live.deployment_id
        else point_stage(project, env, new_deployment),
    )
    move.confirm_early()  # beside the site's last writes: the entry follows them
    published = publish_site(
        project, env, built.release_id, manifest, built.site_zip, force=force,
        prior=new_files.prior,
    )
    return record(
        project,
        env,
        move,
        fields,
        version=version,
        deployment=deployment,
        label=manifest.get("version") or built.release_id,
        current=current,
        undo=(lambda: restore(project, env, before, current)) if rollback_on_failure else None,
        site=published.to_json() if published else None,
    )


def alongside(
    main: Callable[[], T], side: Callable[[threading.Event], None], project: Project
) -> T:
    """`main` here while `side` runs in a thread; both have finished when this returns.

    A failure of either is raised (main's when both fail: it is the step the user waited
    on). When main fails, `side` is told to stop (its event is set) and is waited for, so
    nothing is still changing the environment while it is put back.
    """
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sdeliver-site") as pool:
        future = pool.submit(side, stop)
        try:
            result = main()
        except BaseException:
            stop.set()
            failed = future.exception()  # waits for it
            if isinstance(failed, SdeliverError):
                project.progress.warn(failed.message)
            raise
        future.result()
    return result


class NewSiteFiles:
    """The release's site files whose keys the bucket does not hold yet.

    Uploading them is the one part of publishing nobody can see: no page links to them
    until the new index.html and config.json are written after the switch (publish_site).
    Changed and deleted files, and config.json, wait for that.
    """

    def __init__(
        self,
        project: Project,
        env: str,
        release_id: str,
        manifest: Manifest,
        site_zip: Path | None,
        shown: site.Published | None = None,
    ) -> None:
        """shown: config.json as the move read it under the lease."""
        self.project, self.release_id, self.site_zip = project, release_id, site_zip
        self.shown = shown
        wanted = project.config.site is not None and bool(manifest.get("site_digest"))
        self.bucket = project.site_bucket(env) if wanted and site_zip is not None else None
        self.added: list[str] = []  # appended from the upload threads (list.append is atomic)
        self.prior: site.Prior | None = None  # what the bucket holds after `add`

    def add(self, stop: threading.Event) -> None:
        if self.bucket is None or self.site_zip is None:
            return
        with site.files_from_zip(self.site_zip) as files:
            self.prior = sites.add_new_files(
                self.project, self.bucket, files, self.release_id, stop, self.added, self.shown
            )

    def remove(self) -> None:
        """Delete what `add` uploaded: the bucket holds what it held before (a failed deploy)."""
        if self.bucket is None or not self.added:
            return
        keys = sorted(self.added)
        try:
            for start in range(0, len(keys), 1000):
                self.project.aws.call(
                    "s3",
                    "delete_objects",
                    resource=f"bucket {self.bucket}",
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in keys[start : start + 1000]],
                            "Quiet": True},
                )
        except SdeliverError as err:
            self.project.progress.warn(f"could not remove the new site files: {err.message}")
            return
        self.added.clear()
