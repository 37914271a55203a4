"""The site buckets: public websites granting GetObject only, tagged, with a first config.json
that reconcile never rewrites."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from sdeliver import names
from sdeliver.errors import AwsError, OperationFailed
from sdeliver.project import Project
from sdeliver.resources import site

TEST = "test.dromedary.example.com"
PROD = "dromedary.example.com"
EXAMPLE = Path(__file__).parents[2] / "config" / "sdeliver.example.yaml"


def converge(project: Project) -> list[Any]:
    changes = site.plan(project)
    for change in changes:
        if change.action != "none" and change.apply is not None:
            change.apply(project)
    return changes


def s3(region: str = "us-east-1"):  # type: ignore[no-untyped-def]
    return boto3.client("s3", region_name=region)


def example_text() -> str:
    return EXAMPLE.read_text(encoding="utf-8")


def config_json(bucket: str) -> dict[str, Any]:
    return json.loads(s3().get_object(Bucket=bucket, Key="config.json")["Body"].read())


# -- creation ------------------------------------------------------------------------------


def test_init_creates_one_bucket_per_environment_named_after_its_domain(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()

    changes = converge(project)

    assert [(c.kind, c.name, c.action) for c in changes] == [
        ("site-bucket", TEST, "create"),
        ("site-bucket", PROD, "create"),
    ]
    names = {b["Name"] for b in s3().list_buckets()["Buckets"]}
    assert {TEST, PROD} <= names


def test_the_bucket_serves_a_website_with_index_and_error_documents(make_project) -> None:  # type: ignore[no-untyped-def]
    converge(make_project())

    website = s3().get_bucket_website(Bucket=TEST)
    assert website["IndexDocument"] == {"Suffix": "index.html"}
    assert website["ErrorDocument"] == {"Key": "error.html"}


def test_the_policy_grants_public_get_object_and_nothing_else(make_project) -> None:  # type: ignore[no-untyped-def]
    converge(make_project())

    policy = json.loads(s3().get_bucket_policy(Bucket=PROD)["Policy"])
    assert policy["Statement"] == [
        {
            "Sid": "PublicReadGetObject",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{PROD}/*",
        }
    ]


def test_public_policies_are_allowed_but_public_acls_stay_blocked(make_project) -> None:  # type: ignore[no-untyped-def]
    converge(make_project())

    block = s3().get_public_access_block(Bucket=TEST)["PublicAccessBlockConfiguration"]
    assert block == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": False,
        "RestrictPublicBuckets": False,
    }


def test_the_bucket_is_tagged_with_the_app_and_its_environment(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)

    tags = {t["Key"]: t["Value"] for t in s3().get_bucket_tagging(Bucket=TEST)["TagSet"]}
    assert tags == project.tags("test")
    assert tags["sdeliver:env"] == "test"


def test_a_first_config_json_holds_the_site_keys_and_no_release(make_project) -> None:  # type: ignore[no-untyped-def]
    converge(make_project())

    assert config_json(PROD) == {
        "title": "Dromedary",
        "apiBaseurl": "",
        "env": "prod",
        "version": "",
        "release": None,
        "status": "no release yet",
    }
    head = s3().head_object(Bucket=PROD, Key="config.json")
    assert head["ContentType"].startswith("application/json")
    assert head["CacheControl"] == "no-cache"


def test_an_environment_without_a_domain_gets_a_derived_bucket_name(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project("app: shop\nenvironments:\n  test: {}\n")

    [change] = converge(project)

    assert change.name == f"shop-test-site-{project.account}"
    assert s3().get_bucket_website(Bucket=change.name)["IndexDocument"]["Suffix"] == "index.html"


def test_no_site_declared_means_no_bucket(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project("app: shop\nsite: null\nenvironments:\n  test: {}\n")

    assert site.plan(project) == []


# -- convergence and drift -----------------------------------------------------------------


def test_a_second_plan_changes_nothing_and_writes_nothing(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)
    writes = project.aws.stats.writes

    changes = site.plan(project)

    assert [c.action for c in changes] == ["none", "none"]
    assert project.aws.stats.writes == writes


def test_a_policy_deleted_behind_sdelivers_back_is_shown_and_restored(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)
    s3().delete_bucket_policy(Bucket=TEST)

    changes = converge(project)

    [drifted] = [c for c in changes if c.action != "none"]
    assert (drifted.name, drifted.action) == (TEST, "update")
    assert [f.field for f in drifted.fields] == ["policy"]
    assert drifted.shown_calls == [
        "s3.PutBucketPolicy", "s3.PutBucketPolicy (each retry while the new access block spreads)"]
    assert (
        json.loads(s3().get_bucket_policy(Bucket=TEST)["Policy"])["Statement"][0]["Action"]
        == "s3:GetObject"
    )
    assert [c.action for c in site.plan(project)] == ["none", "none"]


def test_a_broader_policy_added_behind_sdelivers_back_is_narrowed(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)
    broad = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{TEST}", f"arn:aws:s3:::{TEST}/*"],
            }
        ],
    }
    s3().put_bucket_policy(Bucket=TEST, Policy=json.dumps(broad))

    converge(project)

    statements = json.loads(s3().get_bucket_policy(Bucket=TEST)["Policy"])["Statement"]
    assert [s["Action"] for s in statements] == ["s3:GetObject"]


def test_an_existing_config_json_is_never_rewritten(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)
    released = {"apiBaseurl": "https://api/test/", "version": "7", "release": 7, "env": "test"}
    s3().put_object(Bucket=TEST, Key="config.json", Body=json.dumps(released).encode())
    s3().delete_bucket_website(Bucket=TEST)

    changes = converge(project)

    [drifted] = [c for c in changes if c.action != "none"]
    assert [f.field for f in drifted.fields] == ["website"]
    assert config_json(TEST) == released


def test_a_deleted_config_json_is_written_again_as_the_first_one(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)
    s3().delete_object(Bucket=TEST, Key="config.json")

    changes = converge(project)

    assert [f.field for c in changes for f in c.fields] == ["config.json"]
    assert config_json(TEST)["release"] is None


def test_the_users_own_tags_are_kept(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)
    s3().put_bucket_tagging(Bucket=TEST, Tagging={"TagSet": [{"Key": "team", "Value": "web"}]})

    converge(project)

    tags = {t["Key"]: t["Value"] for t in s3().get_bucket_tagging(Bucket=TEST)["TagSet"]}
    assert tags == {**project.tags("test"), "team": "web"}


# -- ownership -----------------------------------------------------------------------------


def test_a_bucket_of_another_sdeliver_app_is_refused(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    s3().create_bucket(Bucket=TEST)
    s3().put_bucket_tagging(
        Bucket=TEST, Tagging={"TagSet": [{"Key": "sdeliver:app", "Value": "camel"}]}
    )

    with pytest.raises(OperationFailed, match="belongs to sdeliver app 'camel'"):
        site.plan(project)


def test_an_untagged_bucket_holding_private_objects_is_not_made_public(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    s3().create_bucket(Bucket=TEST)
    s3().put_object(Bucket=TEST, Key="payroll.csv", Body=b"secret")

    with pytest.raises(OperationFailed, match="will not make its content public"):
        site.plan(project)
    with pytest.raises(Exception, match="NoSuchBucketPolicy"):
        s3().get_bucket_policy(Bucket=TEST)


def test_an_untagged_bucket_already_serving_a_website_is_adopted(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    s3().create_bucket(Bucket=TEST)
    s3().put_bucket_website(
        Bucket=TEST, WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}}
    )
    s3().put_object(Bucket=TEST, Key="index.html", Body=b"<html/>")

    changes = converge(project)

    assert changes[0].action == "update"
    assert [c.action for c in site.plan(project)] == ["none", "none"]
    assert s3().get_object(Bucket=TEST, Key="index.html")["Body"].read() == b"<html/>"


def test_a_bucket_of_another_account_is_a_clear_one_line_error(make_project, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    real_call = project.aws.call

    def call(service: str, operation: str, **params: Any) -> Any:
        if operation == "head_bucket":  # what S3 answers for someone else's bucket
            raise AwsError("s3.head_bucket failed: 403: Forbidden", code="403")
        return real_call(service, operation, **params)

    monkeypatch.setattr(project.aws, "call", call)

    with pytest.raises(OperationFailed) as failed:
        site.plan(project)
    assert "owned by another AWS account" in failed.value.message
    assert "\n" not in failed.value.message


# -- regions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "host"),
    [
        ("us-east-1", "b.example.com.s3-website-us-east-1.amazonaws.com"),
        ("eu-central-1", "b.example.com.s3-website.eu-central-1.amazonaws.com"),
        ("ap-southeast-2", "b.example.com.s3-website-ap-southeast-2.amazonaws.com"),
        ("us-east-2", "b.example.com.s3-website.us-east-2.amazonaws.com"),
    ],
)
def test_website_endpoint_uses_the_regions_dash_or_dot_form(region: str, host: str) -> None:
    assert names.website_endpoint("b.example.com", region) == host


def test_the_website_zone_table_has_hosted_zone_ids() -> None:
    assert names.WEBSITE_ZONES["us-east-1"] == (
        "s3-website-us-east-1.amazonaws.com",
        "Z3AQBSTGFYJSTF",
    )
    assert names.WEBSITE_ZONES["eu-central-1"][1] == "Z21DNDUVLTQW6Q"


def test_an_unknown_region_is_a_clear_error_not_a_key_error() -> None:
    with pytest.raises(OperationFailed, match="S3 website endpoint of region xx-mars-1"):
        names.website_endpoint("b", "xx-mars-1")


def test_outside_us_east_1_buckets_are_created_in_the_configured_region(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project(example_text().replace("region: us-east-1", "region: eu-west-1"))
    converge(project)

    assert s3("eu-west-1").get_bucket_location(Bucket=TEST)["LocationConstraint"] == "eu-west-1"
    assert [c.action for c in site.plan(project)] == ["none", "none"]


def test_a_site_bucket_in_another_region_is_refused(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    s3("eu-west-1").create_bucket(
        Bucket=TEST, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )

    with pytest.raises(OperationFailed, match="is in region eu-west-1"):
        site.plan(project)


# -- prune and destroy ---------------------------------------------------------------------


def test_prune_deletes_the_bucket_of_an_environment_no_longer_declared(make_project) -> None:  # type: ignore[no-untyped-def]
    converge(make_project())
    s3().put_object(Bucket=TEST, Key="index.html", Body=b"<html/>")
    without_test = example_text().replace(
        "domain: test.dromedary.example.com", "domain: other.dromedary.example.com"
    )
    project = make_project(without_test.replace("  test:", "  other:"))

    changes = site.prune(project)

    assert [(c.name, c.action) for c in changes] == [(TEST, "delete")]
    for change in changes:
        assert change.apply is not None
        change.apply(project)
    names = {b["Name"] for b in s3().list_buckets()["Buckets"]}
    assert TEST not in names and PROD in names


def test_prune_leaves_declared_and_foreign_buckets_alone(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)
    s3().create_bucket(Bucket="www.example.com")

    assert site.prune(project) == []


def test_destroy_empties_and_deletes_only_this_apps_site_buckets(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)
    s3().put_object(Bucket=PROD, Key="index.html", Body=b"<html/>")
    s3().create_bucket(Bucket="www.example.com")

    changes = site.destroy(project)
    for change in changes:
        assert change.apply is not None
        change.apply(project)

    assert sorted(c.name for c in changes) == [PROD, TEST]
    assert {b["Name"] for b in s3().list_buckets()["Buckets"]} == {"www.example.com"}


# -- Block Public Access on real AWS ---------------------------------------------------------

BLOCKED = (
    "access denied: s3.put_bucket_policy on bucket x: User is not authorized to perform "
    "s3:PutBucketPolicy because public policies are blocked by the BlockPublicPolicy block "
    "public access setting."
)


def refuse_public_policy(project: Project, monkeypatch, times: int) -> list[str]:  # type: ignore[no-untyped-def]
    """S3 refuses the first `times` PutBucketPolicy calls as AWS does while a public access
    block spreads (answered in the client, so each refusal is a call sdeliver made)."""
    attempts: list[str] = []

    def keep(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["refused_bucket"] = params["Bucket"]

    def answer(context: dict[str, Any], **_: Any) -> Any:
        attempts.append(context["refused_bucket"])
        if len(attempts) > times:
            return None
        return AWSResponse(None, 403, {}, None), {
            "Error": {"Code": "AccessDenied", "Message": BLOCKED.split("bucket x: ")[1]},
            "ResponseMetadata": {"HTTPStatusCode": 403}}

    events = project.aws.client("s3").meta.events
    events.register("before-parameter-build.s3.PutBucketPolicy", keep)
    events.register("before-call.s3.PutBucketPolicy", answer)
    return attempts


def test_the_policy_is_retried_while_a_new_public_access_block_spreads(
    make_project, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    project.aws.retry_max_seconds = 30
    attempts = refuse_public_policy(project, monkeypatch, times=1)

    converge(project)

    assert attempts == [TEST, TEST, PROD]
    assert "Statement" in json.loads(s3().get_bucket_policy(Bucket=TEST)["Policy"])


def test_an_account_that_blocks_public_policies_is_a_clear_error(make_project, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    project.aws.retry_max_seconds = 0
    refuse_public_policy(project, monkeypatch, times=1000)

    with pytest.raises(OperationFailed) as failed:
        converge(project)
    assert "Block Public Access forbids public bucket policies" in failed.value.message
    assert "account's S3 Block Public Access" in str(failed.value.hint)
