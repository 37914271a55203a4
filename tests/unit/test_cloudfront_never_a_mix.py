"""A visitor of a CloudFront-hosted app never sees a mix of two releases: over deploy,
promote, rollback and the retention's removals, after EVERY write sdeliver makes, what the
distribution would serve — the key value store's live release and the objects under its
prefix — is exactly one whole release's site, with the config.json naming it. And a
promote or rollback switches in one PutKey, rewriting nothing under the live prefix."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

import boto3
from sdeliver.aws import is_write
from sdeliver.operations import deploy as steps
from sdeliver.operations.promote import promote
from sdeliver.operations.rollback import rollback
from sdeliver.project import Project

from .edge_fake import EdgeFake
from .test_cloudfront_releases import Site, cloudfront_app, edge  # noqa: F401 (a fixture)

ENVS = ("test", "prod")
S3_WRITES = {"put_object", "delete_object", "delete_objects", "copy_object"}


@dataclass
class Visitor:
    """What a visitor of each environment would get, looked at after every write."""

    project: Project
    fake: EdgeFake
    views: list[tuple[str, str, str | None, dict[str, bytes]]] = field(default_factory=list)
    site_writes: list[str] = field(default_factory=list)  # object writes to a site bucket
    live_writes: list[str] = field(default_factory=list)  # those under a live prefix
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.s3 = boto3.client("s3")
        self.buckets = {self.project.site_bucket(env): env for env in ENVS}

    def watch(self) -> None:
        call = self.project.aws.call

        def watched(service: str, operation: str, **params: Any) -> Any:
            self._before(service, operation, params)
            found = call(service, operation, **params)
            if is_write("".join(part.title() for part in operation.split("_"))):
                self.look(f"{service}.{operation}")
            return found

        self.project.aws.call = watched  # type: ignore[method-assign]

    def live(self, env: str) -> str | None:
        return self.fake.live(f"dromedary-{env}-release")

    def _before(self, service: str, operation: str, params: dict[str, Any]) -> None:
        env = self.buckets.get(params.get("Bucket", ""))
        if service != "s3" or operation not in S3_WRITES or env is None:
            return
        keys = [params["Key"]] if "Key" in params else [
            o["Key"] for o in params.get("Delete", {}).get("Objects", [])]
        live = self.live(env)
        with self.lock:
            self.site_writes += [f"{operation} {k}" for k in keys]
            self.live_writes += [f"{operation} {k}" for k in keys
                                 if live and k.startswith(f"releases/{live}/")]

    def look(self, after: str) -> None:
        with self.lock:
            for env in ENVS:
                live = self.live(env)
                files: dict[str, bytes] = {}
                if live is not None:
                    prefix = f"releases/{live}/"
                    bucket = self.project.site_bucket(env)
                    listed = self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
                    for item in listed.get("Contents", []):
                        body = self.s3.get_object(Bucket=bucket, Key=item["Key"])["Body"]
                        files[item["Key"][len(prefix):]] = body.read()
                self.views.append((after, env, live, files))


def site_files(project: Project) -> dict[str, bytes]:
    root = project.config.project_dir / "site"
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_every_write_leaves_visitors_one_whole_release_and_switches_are_one_put_key(  # type: ignore[no-untyped-def]
    make_project, edge
) -> None:
    project = cloudfront_app(make_project, edge, retention=2)
    site = Site(project)
    visitor = Visitor(project, edge)
    visitor.watch()
    released: dict[str, dict[str, bytes]] = {}  # release id -> its site files
    switches: list[tuple[str, int, int]] = []  # (command, PutKeys, site object writes)

    def run(command: str, move: Any) -> str:
        puts, writes = len(edge.puts), len(visitor.site_writes)
        result = move()
        assert result.outcome == "succeeded", result
        switches.append((command, len(edge.puts) - puts, len(visitor.site_writes) - writes))
        return str(result.release)

    def deploy() -> str:
        site.next()
        files = site_files(project)
        release = run("deploy", lambda: steps.deploy(project, "test"))
        released[release] = files
        return release

    r1 = deploy()
    run("promote", lambda: promote(project, "test", "prod"))
    r2 = deploy()
    run("promote", lambda: promote(project, "test", "prod"))
    r3 = deploy()  # retention 2: r1's site leaves test's bucket
    assert run("rollback", lambda: rollback(project, "test")) == r2
    assert run("rollback", lambda: rollback(project, "prod")) == r1

    assert visitor.live_writes == []
    assert len(visitor.views) > 50
    seen: dict[str, set[str | None]] = {env: set() for env in ENVS}
    for after, env, live, files in visitor.views:
        seen[env].add(live)
        if live is None:
            continue  # before the first release: the function answers 503
        config = json.loads(files.pop("config.json", b"null"))
        assert config is not None, f"{env} after {after}: no config.json under {live}"
        assert (config["release"], config["env"]) == (live, env), after
        assert files == released[live], f"{env} after {after}: not release {live} whole"
    assert seen["test"] == {None, r1, r2, r3}
    assert seen["prod"] == {None, r1, r2}
    assert [(command, puts) for command, puts, _ in switches] == [
        ("deploy", 1), ("promote", 1), ("deploy", 1), ("promote", 1), ("deploy", 1),
        ("rollback", 1), ("rollback", 1)]
    # A promote of a release the bucket lacks uploads it (never under the live prefix);
    # a rollback to one the bucket holds writes no object at all.
    assert [w for c, _, w in switches if c == "rollback"] == [0, 0]
