"""An environment's release pointers — alias version, stage deployment, site content — and
the moves every release command makes with them.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import parallel
from ..aws import FUNCTION_BUSY, lambda_
from ..endpoints import local_urls
from ..errors import AwsError, OperationFailed
from ..hosting import publish_release
from ..ledger import E2e
from ..project import Project
from ..publish import Prior, PublishResult, files_from_zip, publish
from ..release import Manifest, ReleaseStore
from ..resources import api, function
from ..resources.api import rest_api_id as api_id
from ..shell import run_command


@dataclass
class Pointers:
    """Where an environment points now."""

    version: str | None
    weights: dict[str, float] = field(default_factory=dict)
    deployment_id: str | None = None
    alias_revision: str | None = None


def read_pointers(project: Project, env: str) -> Pointers:

    # Side by side: the alias, and the API's id then its stage.
    alias, stage = parallel.together(
        lambda: function.read_alias(project, env),
        lambda: api.stage(project, api_id(project), env),
    )
    if alias is None:
        raise OperationFailed(
            f"alias {env} of function {project.function_name} does not exist",
            hint="run 'sdeliver init' (or reconcile) first",
        )
    if stage is None:
        raise OperationFailed(
            f"stage {env} of REST API {project.api_name} does not exist",
            hint="run 'sdeliver init' (or reconcile) first",
        )
    routing = alias.get("RoutingConfig") or {}
    return Pointers(
        version=alias["FunctionVersion"],
        weights=dict(routing.get("AdditionalVersionWeights") or {}),
        deployment_id=stage.get("deploymentId"),
        alias_revision=alias.get("RevisionId"),
    )


def move_alias(
    project: Project,
    env: str,
    version: str,
    *,
    weights: dict[str, float] | None = None,
    revision_id: str | None = None,
) -> None:
    """Point the alias at a version (with canary weights, or none), optimistically locked."""
    params: dict[str, Any] = {
        "FunctionName": project.function_name,
        "Name": env,
        "FunctionVersion": version,
        "RoutingConfig": {"AdditionalVersionWeights": weights or {}},
    }
    if revision_id:
        params["RevisionId"] = revision_id
    try:
        project.aws.call(
            "lambda", "update_alias", resource=f"alias {env}", retry=(FUNCTION_BUSY,), **params
        )
    except AwsError as err:
        if err.code == "PreconditionFailedException":
            # botocore retries an UpdateAlias whose answer was lost with the same RevisionId,
            # which our own first attempt has just made stale: already there is done.
            if _alias_at(project, env, version, weights or {}):
                return
            raise OperationFailed(
                f"alias {env} was changed by someone else while this command ran",
                hint="check 'sdeliver status', then run the command again",
            ) from None
        raise


def _alias_at(project: Project, env: str, version: str, weights: dict[str, float]) -> bool:
    found = lambda_.get_alias(project.aws, project.function_name, env)
    if found is None or found.get("FunctionVersion") != version:
        return False
    have = (found.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return set(have) == set(weights) and all(
        abs(float(have[v]) - float(w)) < 1e-9 for v, w in weights.items()
    )


def point_stage(project: Project, env: str, deployment_id: str) -> None:
    api.point_stage(project, api_id(project), env, deployment_id)


def urls(project: Project, env: str) -> tuple[str, str]:
    """The API's and the site's URLs (the local gateway's, in local mode; see
    `Project.site_url` for the site's elsewhere)."""
    if project.aws.endpoint_url:  # an emulator: its local gateway serves the app
        found = local_urls(project, env)
        if found is not None:
            return found
    if project.config.site is not None and project.config.site.hosting == "cloudfront":
        # One origin: the distribution serves the site and routes /api/* to the stage.
        domain = project.config.env(env).domain
        return f"https://{domain}/api/", f"https://{domain}/"
    return project.api_url(api_id(project), env), project.site_url(env)


def site_config(
    project: Project, env: str, manifest: Manifest, release_id: str
) -> dict[str, Any]:
    api_url, _ = urls(project, env)
    return {
        **manifest.get("site_config", {}),
        "apiBaseurl": api_url,
        # "version" stays for sites that read it: the source revision, else the build time.
        "version": manifest.get("version") or manifest.get("source_revision") or "",
        "source_revision": manifest.get("source_revision"),
        "env": env,
        "release": release_id,
    }


def publish_site(
    project: Project,
    env: str,
    release_id: str,
    manifest: Manifest,
    site_zip: Path | None = None,
    *,
    force: bool = False,
    prior: Prior | None = None,
) -> PublishResult | None:
    """Make the environment's bucket hold exactly the release's site, config.json last.

    force: compare every object even when config.json already names the release.
    prior: config.json and the listing as this command read them under its lease."""
    if project.config.site is None or not manifest.get("site_digest"):
        return None
    bucket = project.site_bucket(env)
    config = site_config(project, env, manifest, release_id)
    with tempfile.TemporaryDirectory(prefix="sdeliver-site-") as tmp:
        if site_zip is None:
            site_zip = ReleaseStore(project).download_site(release_id, Path(tmp))
        with files_from_zip(site_zip) as files:
            if project.config.site.hosting == "cloudfront":

                # The release's files under its own prefix, then ONE write makes it live.
                return publish_release(project, env, files, config, release_id, force=force)
            return publish(project, bucket, files, config, force=force, prior=prior)


def run_e2e(project: Project, env: str, version: str) -> E2e:
    """Run the environment's e2e command: "passed", "failed" or "skipped"."""
    declared = project.config.env(env)
    command = declared.e2e
    if not command:
        return "skipped"
    api_url, site_url = urls(project, env)
    project.progress.step(f"e2e ({env}): {command}")
    status = run_command(
        command,
        cwd=project.config.project_dir,
        progress=project.progress,
        env={
            "SDELIVER_API_URL": api_url,
            "SDELIVER_SITE_URL": site_url,
            "SDELIVER_ENV": env,
            "SDELIVER_VERSION": version,
        },
        timeout=declared.e2e_timeout,
    )
    return "passed" if status == 0 else "failed"
