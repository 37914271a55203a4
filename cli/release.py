"""A release: one immutable build — function package, API definition, site content — and
where it is kept (`sdeliver/<app>/artifacts/<release-id>/` in the artifact bucket).

The release id is derived from the content (`r-` + 12 hex of its digest), so building the
same sources twice gives the same release, stored once. `release.json` is written last: a
release whose manifest exists is complete.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypedDict, cast

from . import parallel
from .aws import s3
from .errors import OperationFailed
from .openapi import Definition, build_definition
from .package import package_directory
from .project import Project
from .shell import run_command, source_revision

MANIFEST = "release.json"
CACHE = Path(".sdeliver") / "cache"  # in the project directory


class Manifest(TypedDict, total=False):
    """A release's manifest (`release.json` beside its artifacts in the artifact bucket):
    what promote, rollback and the pipeline's steps know of a stored release. A key may be
    missing from a manifest an older sdeliver wrote."""

    release: str
    code_sha256: str
    definition_sha256: str
    site_digest: str | None
    site_config: dict[str, Any]  # config.json's keys beside apiBaseurl, env and release
    source_revision: str | None
    version: str  # config.json's "version": the commit, else when it was first built


@dataclass
class Release:
    """A release built from the project directory, ready to store and deploy."""

    release_id: str
    function_zip: bytes
    code_sha256: str  # base64, as Lambda reports CodeSha256
    definition: Definition  # the API definition, canonical JSON and its digest
    site_zip: Path | None
    site_digest: str | None
    site_config: dict[str, Any]
    source_revision: str | None
    workdir: tempfile.TemporaryDirectory[str] = field(repr=False)

    def manifest(self) -> Manifest:
        return {
            "release": self.release_id,
            "code_sha256": self.code_sha256,
            "definition_sha256": self.definition.sha256,
            "site_digest": self.site_digest,
            "site_config": self.site_config,
            "source_revision": self.source_revision,
            # config.json's "version": the commit, else when this release was first built
            "version": self.source_revision
            or datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S"),
        }

    def close(self) -> None:
        self.workdir.cleanup()


def release_id_for(
    code: str, definition: str, site: str | None, site_config: Any, function_settings: Any
) -> str:
    """A release is code and configuration: the function's settings are in its id, so a
    changed memory or environment is a new release (a published version snapshots them)."""
    digest = hashlib.sha256(
        json.dumps([code, definition, site, site_config, function_settings], sort_keys=True)
        .encode()
    ).hexdigest()
    return f"r-{digest[:12]}"


def function_settings(config: Any) -> dict[str, Any]:
    """What of sdeliver.yaml a published Lambda version snapshots (the execution role is
    not written there: sdeliver derives it from the app)."""
    return {**config.function.settings(), "architecture": config.function.architecture}


def run_build_commands(project: Project) -> None:
    for command in project.config.build.commands:
        project.progress.step(f"build: {command}")
        timeout = project.config.build.timeout
        status = run_command(
            command, cwd=project.config.project_dir, progress=project.progress, timeout=timeout
        )
        if status != 0:
            why = f"timed out after {timeout} s" if status == 124 else f"exit {status}"
            raise OperationFailed(
                f"build command failed ({why}): {command}",
                hint="nothing was deployed; fix the build and run deploy again",
            )


def build(project: Project) -> Release:
    """Run the build commands, then package function, API definition and site."""

    run_build_commands(project)
    config = project.config
    # Unchanged sources are not zipped again (the cached zip is the same bytes).
    cache = config.project_dir / CACHE
    function = package_directory(
        config.resolve(config.function.source), key="function.source", cache=cache
    )
    definition = build_definition(project)
    workdir = tempfile.TemporaryDirectory(prefix="sdeliver-")
    site_zip: Path | None = None
    site_digest: str | None = None
    site_config: dict[str, Any] = {}
    if config.site is not None:
        site = package_directory(
            config.resolve(config.site.source), key="site.source", cache=cache
        )
        site_zip = Path(workdir.name) / "site.zip"
        site_zip.write_bytes(site.data)
        site_digest = site.sha256_hex
        site_config = dict(config.site.config)
    return Release(
        release_id=release_id_for(
            function.sha256_b64, definition.sha256, site_digest, site_config,
            function_settings(config),
        ),
        function_zip=function.data,
        code_sha256=function.sha256_b64,
        definition=definition,
        site_zip=site_zip,
        site_digest=site_digest,
        site_config=site_config,
        source_revision=source_revision(config.project_dir),
        workdir=workdir,
    )


class ReleaseStore:
    """Releases kept in the artifact bucket: immutable, written once, manifest last."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.bucket = project.artifact_bucket
        self._manifests: dict[str, Manifest] = {}  # read or written: immutable

    def key(self, release_id: str, name: str) -> str:
        return f"{self.project.prefix}/artifacts/{release_id}/{name}"

    def manifest(self, release_id: str) -> Manifest | None:
        if release_id in self._manifests:
            return self._manifests[release_id]
        body = s3.get_bytes(self.project.aws, self.bucket, self.key(release_id, MANIFEST),
                            resource=f"release {release_id}")
        if body is None:
            return None
        try:
            manifest = cast(Manifest, dict(json.loads(body)))
        except (ValueError, TypeError):
            raise OperationFailed(
                f"release {release_id}: its manifest in s3://{self.bucket} is corrupt"
            ) from None
        self._manifests[release_id] = manifest
        return manifest

    def require(self, release_id: str) -> Manifest:
        manifest = self.manifest(release_id)
        if manifest is None:
            raise OperationFailed(
                f"release {release_id} is not in s3://{self.bucket}/{self.project.prefix}/artifacts",
                hint="its artifacts were deleted; deploy it again from source",
            )
        return manifest

    def store(self, build: Release) -> bool:
        """Upload the build's artifacts unless that release is stored already."""
        if not self.store_artifacts(build):
            return False
        self.store_manifest(build)
        return True

    def store_artifacts(self, build: Release) -> bool:
        """The first half of `store`: everything but the manifest (False: the release is
        stored already). The release is not complete until `store_manifest`."""
        if self.manifest(build.release_id) is not None:
            return False
        put = self._put
        # The artifacts side by side; the manifest after them: a release whose manifest
        # exists is complete.
        uploads = [
            lambda: put(build.release_id, "function.zip", build.function_zip, "application/zip"),
            lambda: put(build.release_id, "openapi.json", build.definition.body,
                        "application/json"),
        ]
        if build.site_zip is not None:
            site_zip = build.site_zip
            uploads.append(lambda: put(build.release_id, "site.zip", site_zip.read_bytes(),
                                       "application/zip"))
        parallel.together(*uploads)
        return True

    def store_manifest(self, build: Release) -> None:
        """The manifest, written last: a release whose manifest exists is complete."""
        body = json.dumps(build.manifest(), indent=2, sort_keys=True).encode()
        self._put(build.release_id, MANIFEST, body, "application/json")
        self._manifests[build.release_id] = json.loads(body)

    def _put(self, release_id: str, name: str, body: bytes, content_type: str) -> None:
        self.project.aws.call(
            "s3",
            "put_object",
            resource=f"release {release_id} {name}",
            Bucket=self.bucket,
            Key=self.key(release_id, name),
            Body=body,
            ContentType=content_type,
        )
        self.project.aws.add_uploaded(len(body))

    def read(self, release_id: str, name: str) -> bytes:
        return s3.read(self.project.aws, self.bucket, self.key(release_id, name),
                       resource=f"release {release_id} {name}")

    def download_site(self, release_id: str, directory: Path) -> Path:
        target = directory / f"{release_id}-site.zip"
        target.write_bytes(self.read(release_id, "site.zip"))
        return target
