"""The artifact bucket: private, encrypted, versioned, non-TLS denied, lock versions expired."""

from __future__ import annotations

import json

import pytest
from sdeliver.errors import OperationFailed
from sdeliver.resources import artifacts

BUCKET = "dromedary-artifacts-123456789012"


def apply(project, changes) -> None:  # type: ignore[no-untyped-def]
    for change in changes:
        if change.apply is not None:
            change.apply(project)


def test_created_private_encrypted_versioned_and_tls_only(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    [change] = artifacts.plan(project)
    assert (change.action, change.name) == ("create", BUCKET)
    apply(project, [change])
    s3 = project.aws.client("s3")
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    block = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    rules = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    [statement] = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_s3s_own_defaults_for_a_new_bucket_are_not_written_again(make_project, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # S3 creates every bucket encrypted (SSE-S3) with all public access blocked; moto does
    # not, so the test gives the new bucket what S3 would.
    project = make_project()
    create = artifacts.create_bucket

    def create_as_s3_does(p, bucket):  # type: ignore[no-untyped-def]
        create(p, bucket)
        s3 = p.aws.client("s3")
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=artifacts.BLOCK_ALL)
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})

    monkeypatch.setattr(artifacts, "create_bucket", create_as_s3_does)
    made: list[str] = []
    call = project.aws.call
    monkeypatch.setattr(project.aws, "call", lambda service, op, **kw: made.append(op) or call(service, op, **kw))
    [change] = artifacts.plan(project)
    apply(project, [change])
    assert "put_public_access_block" not in made and "put_bucket_encryption" not in made
    assert "put_bucket_versioning" in made
    assert "s3.PutBucketEncryption (unless S3's default)" in change.shown_calls
    assert [c.action for c in artifacts.plan(project)] == ["none"]


def test_a_converged_bucket_plans_nothing_and_writes_nothing(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    apply(project, artifacts.plan(project))
    writes = project.aws.stats.writes
    assert [c.action for c in artifacts.plan(project)] == ["none"]
    assert project.aws.stats.writes == writes


def test_lock_versions_expire_and_the_users_own_rules_stay(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    apply(project, artifacts.plan(project))
    s3 = project.aws.client("s3")
    mine = {"ID": "mine", "Filter": {"Prefix": "logs/"}, "Status": "Enabled",
            "Expiration": {"Days": 30}}
    s3.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": [mine]})
    [change] = artifacts.plan(project)
    assert [f.field for f in change.fields] == ["lifecycle"]
    apply(project, [change])
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]}
    assert set(rules) == {"mine", artifacts.LOCK_RULE_ID}
    assert rules[artifacts.LOCK_RULE_ID]["Filter"] == {"Prefix": "sdeliver/dromedary/locks/"}


def test_a_removed_policy_is_shown_and_put_back(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    apply(project, artifacts.plan(project))
    project.aws.client("s3").delete_bucket_policy(Bucket=BUCKET)
    [change] = artifacts.plan(project)
    assert change.action == "update"
    assert [(f.field, f.old) for f in change.fields] == [("policy", None)]
    apply(project, [change])
    assert [c.action for c in artifacts.plan(project)] == ["none"]


def test_a_bucket_of_another_app_is_refused(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    s3 = project.aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": [{"Key": "sdeliver:app", "Value": "other"}]})
    with pytest.raises(OperationFailed, match="belongs to sdeliver app 'other'"):
        artifacts.plan(project)
