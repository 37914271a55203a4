"""status and history over a damaged ledger or lock: each problem stays with its
environment, is named by its S3 key, and is never silently followed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from sdeliver.ledger import Ledger
from sdeliver.lock import lock_key
from sdeliver.operations import status as status_op
from sdeliver.operations.moves import Live
from sdeliver.operations.pointers import Pointers
from sdeliver.project import Project


@pytest.fixture
def project(make_project: Any, monkeypatch: pytest.MonkeyPatch) -> Project:
    project: Project = make_project()
    boto3.client("s3", region_name=project.region).create_bucket(Bucket=project.artifact_bucket)
    # The live pointers are not what these tests are about: read them as if provisioned.
    monkeypatch.setattr(
        status_op, "read_live",
        lambda p, env: Live(Pointers(version="2", deployment_id="d2"), False, None),
    )
    monkeypatch.setattr(status_op, "urls", lambda p, env: (f"https://api/{env}", f"https://{env}"))
    return project


def put_raw(project: Project, key: str, body: bytes) -> None:
    boto3.client("s3", region_name=project.region).put_object(
        Bucket=project.artifact_bucket, Key=key, Body=body
    )


def deploy(project: Project, env: str, release: str) -> None:
    Ledger(project, env).append(
        action="deploy", outcome="succeeded", release=release, lambda_version="2"
    )


def test_a_corrupt_entry_is_its_environments_error_and_the_others_still_show(
    project: Project,
) -> None:
    deploy(project, "prod", "r1")
    corrupt = Ledger(project, "test").key(1)
    put_raw(project, corrupt, b"{not json")

    environments = status_op.status(project)["environments"]

    assert corrupt in environments["test"]["error"]
    assert environments["test"]["version"] == "2"
    assert environments["prod"]["release"] == "r1" and "error" not in environments["prod"]


def test_an_unreadable_lock_is_reported_beside_the_release(project: Project) -> None:
    deploy(project, "test", "r1")
    put_raw(project, lock_key(project, "test"), b"\x00garbage")

    test = status_op.status(project)["environments"]["test"]

    assert test["release"] == "r1" and test["locked_by"] is None
    assert lock_key(project, "test") in test["lock_error"]


def test_status_carries_the_ledgers_problems(project: Project) -> None:
    deploy(project, "test", "r1")
    forged = f"{Ledger(project, 'test').prefix}9999999999.json"
    put_raw(project, forged, b"{}")

    environments = status_op.status(project)["environments"]

    assert environments["test"]["release"] == "r1"
    [problem] = environments["test"]["ledger_problems"]
    assert forged in problem
    assert "ledger_problems" not in environments["prod"]


def test_history_warns_of_gaps_on_stderr_and_lists_them_in_json(
    project: Project, project_dir: Path, sdeliver: Any
) -> None:
    for release in ("r1", "r2", "r3"):
        deploy(project, "test", release)
    boto3.client("s3", region_name=project.region).delete_object(
        Bucket=project.artifact_bucket, Key=Ledger(project, "test").key(2)
    )

    result = sdeliver("--json", "history", "--env", "test", cwd=project_dir)

    assert result.code == 0, result.output
    document = json.loads(result.stdout)
    assert [e["seq"] for e in document["entries"]] == [3, 1]
    [problem] = document["problems"]
    assert "0000000002.json is missing" in problem
    assert f"warning: test release ledger: {problem}" in " ".join(result.stderr.split())

    table = sdeliver("history", "--env", "test", cwd=project_dir)
    assert table.code == 0 and "0000000002.json is missing" in table.stderr


def test_the_status_table_names_a_corrupt_entry_an_unreadable_lock_and_a_stray_key(
    project: Project, project_dir: Path, sdeliver: Any
) -> None:
    deploy(project, "prod", "r1")
    put_raw(project, Ledger(project, "test").key(1), b"{not json")
    put_raw(project, lock_key(project, "prod"), b"garbage")
    put_raw(project, f"{Ledger(project, 'prod').prefix}00000000002.json", b"{}")

    result = sdeliver("status", cwd=project_dir)

    assert result.code == 0, result.output
    text = " ".join(result.output.split())  # the table on stdout, warnings on stderr
    assert "test/0000000001.json is corrupt" in text
    assert "r1" in text
    assert f"prod lock: the lock s3://{project.artifact_bucket}/{lock_key(project, 'prod')}" in text
    assert "prod release ledger: s3://" in text and "00000000002.json is not a ledger" in text
