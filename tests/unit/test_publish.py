"""Publishing a release's site: config.json last, so a config.json naming the release says the
bucket holds its files already (one GET, no listing, no upload) — unless a publish was cut
short since, or --force asks to compare every object."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

import boto3
import pytest
from sdeliver.aws import CallStats
from sdeliver.errors import AwsError
from sdeliver.package import package_directory
from sdeliver.project import Project
from sdeliver.publish import PUBLISHING, SiteFile, files_from_zip, publish

BUCKET = "site.example.com"


def s3():  # type: ignore[no-untyped-def]
    return boto3.client("s3", region_name="us-east-1")


@pytest.fixture
def project(make_project) -> Project:  # type: ignore[no-untyped-def]
    s3().create_bucket(Bucket=BUCKET)
    return make_project()  # type: ignore[no-any-return]


def site(tmp_path: Path, name: str, files: dict[str, str]) -> list[SiteFile]:
    """A release's site.zip, as deploy builds it, and its files."""
    source = tmp_path / name
    for key, text in files.items():
        (source / key).parent.mkdir(parents=True, exist_ok=True)
        (source / key).write_text(text)
    archive = tmp_path / f"{name}.zip"
    archive.write_bytes(package_directory(source, key="site.source").data)
    return files_from_zip(archive)


def config(release: str, api: str = "https://api.example.com/test") -> dict[str, Any]:
    return {"title": "t", "apiBaseurl": api, "env": "test", "version": "1", "release": release}


def calls(project: Project) -> dict[str, int]:
    return dict(project.aws.stats.operations)


def fresh_counts(project: Project) -> None:
    project.aws.stats = CallStats()


def body(key: str) -> str:
    return str(s3().get_object(Bucket=BUCKET, Key=key)["Body"].read().decode())


def keys() -> set[str]:
    return {o["Key"] for o in s3().list_objects_v2(Bucket=BUCKET).get("Contents", [])}


R1 = {"index.html": "<h1>one</h1>", "app.js": "one()", "img/logo.svg": "<svg/>"}
R2 = {"index.html": "<h1>two</h1>", "app.js": "one()", "new.css": "body{}"}


def test_republishing_the_release_config_json_names_reads_one_object_and_writes_none(
    project: Project, tmp_path: Path
) -> None:
    files = site(tmp_path, "r1", R1)
    publish(project, BUCKET, files, config("r-1"))
    fresh_counts(project)

    result = publish(project, BUCKET, files, config("r-1"))

    assert calls(project) == {"GetObject": 1}
    assert (result.uploaded, result.unchanged, result.deleted) == (0, 3, 0)


def test_only_config_json_is_written_when_the_release_is_the_same_but_its_api_moved(
    project: Project, tmp_path: Path
) -> None:
    files = site(tmp_path, "r1", R1)
    publish(project, BUCKET, files, config("r-1"))
    fresh_counts(project)

    publish(project, BUCKET, files, config("r-1", api="https://new.example.com/test"))

    assert calls(project) == {"GetObject": 1, "PutObject": 1}
    assert json.loads(body("config.json"))["apiBaseurl"] == "https://new.example.com/test"


def test_force_compares_every_object_and_repairs_one_changed_behind_sdelivers_back(
    project: Project, tmp_path: Path
) -> None:
    files = site(tmp_path, "r1", R1)
    publish(project, BUCKET, files, config("r-1"))
    s3().put_object(Bucket=BUCKET, Key="app.js", Body=b"tampered()")

    trusted = publish(project, BUCKET, files, config("r-1"))
    forced = publish(project, BUCKET, files, config("r-1"), force=True)

    assert trusted.uploaded == 0
    assert forced.uploaded == 1
    assert body("app.js") == "one()"


def test_another_release_is_compared_object_by_object(project: Project, tmp_path: Path) -> None:
    publish(project, BUCKET, site(tmp_path, "r1", R1), config("r-1"))

    result = publish(project, BUCKET, site(tmp_path, "r2", R2), config("r-2"))

    assert (result.uploaded, result.unchanged, result.deleted) == (2, 1, 1)
    assert keys() == {"index.html", "app.js", "new.css", "config.json"}
    assert json.loads(body("config.json"))["release"] == "r-2"


@pytest.mark.parametrize("found", ["absent", "not json", "no release"])
def test_a_config_json_that_names_no_release_is_not_trusted(
    project: Project, tmp_path: Path, found: str
) -> None:
    if found == "not json":
        s3().put_object(Bucket=BUCKET, Key="config.json", Body=b"{oops")
    if found == "no release":  # what init writes
        s3().put_object(Bucket=BUCKET, Key="config.json", Body=b'{"release": null}')

    result = publish(project, BUCKET, site(tmp_path, "r1", R1), config("r-1"))

    assert result.uploaded == 3
    assert "ListObjectsV2" in calls(project)


def test_a_publish_cut_short_leaves_config_json_marked_so_the_old_release_is_restored_in_full(
    project: Project, tmp_path: Path
) -> None:
    old = site(tmp_path, "r1", R1)
    publish(project, BUCKET, old, config("r-1"))

    def broken() -> IO[bytes]:
        raise OSError("disk gone")

    new = [*site(tmp_path, "r2", R2), SiteFile("zz-broken.js", 1, broken)]
    with pytest.raises(OSError):
        publish(project, BUCKET, new, config("r-2"))
    cut_short = s3().head_object(Bucket=BUCKET, Key="config.json")["Metadata"]
    restored = publish(project, BUCKET, old, config("r-1"))

    assert PUBLISHING in cut_short
    assert json.loads(body("config.json"))["release"] == "r-1"  # visitors saw the old config
    assert restored.uploaded >= 1 and restored.deleted == 1
    assert keys() == {"index.html", "app.js", "img/logo.svg", "config.json"}
    assert body("index.html") == "<h1>one</h1>"
    assert PUBLISHING not in s3().head_object(Bucket=BUCKET, Key="config.json")["Metadata"]


def test_a_finished_publish_leaves_config_json_unmarked_and_trusted(
    project: Project, tmp_path: Path
) -> None:
    publish(project, BUCKET, site(tmp_path, "r1", R1), config("r-1"))
    files = site(tmp_path, "r2", R2)
    publish(project, BUCKET, files, config("r-2"))
    fresh_counts(project)

    publish(project, BUCKET, files, config("r-2"))

    assert PUBLISHING not in s3().head_object(Bucket=BUCKET, Key="config.json")["Metadata"]
    assert calls(project) == {"GetObject": 1}


def test_a_first_publish_reads_each_file_once(project: Project, tmp_path: Path) -> None:
    opened: list[str] = []

    def counting(item: SiteFile) -> SiteFile:
        def opener() -> IO[bytes]:
            opened.append(item.key)
            return item.open()

        return SiteFile(item.key, item.size, opener)

    files = [counting(f) for f in site(tmp_path, "r1", R1)]

    publish(project, BUCKET, files, config("r-1"))

    assert sorted(opened) == sorted(R1)


def test_a_config_json_that_cannot_be_read_stops_the_publish_before_any_file_changes(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without reading config.json the publish could not mark it as in progress, and a
    # publish cut short would then leave a mix of two releases that looks whole.
    publish(project, BUCKET, site(tmp_path, "r1", R1), config("r-1"))
    real = project.aws.call

    def denied(service: str, operation: str, **params: Any) -> Any:
        if operation == "get_object":
            raise AwsError("access denied: s3.get_object on s3://site/config.json",
                           code="AccessDenied")
        return real(service, operation, **params)

    monkeypatch.setattr(project.aws, "call", denied)
    before = {k: body(k) for k in keys()}
    with pytest.raises(AwsError, match="access denied"):
        publish(project, BUCKET, site(tmp_path, "r2", R2), config("r-2"))
    assert {k: body(k) for k in keys()} == before
