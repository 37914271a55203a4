"""With LocalStack as the --endpoint-url target: a service it does not offer, its website
host, its stale GetRestApi tags, its missing conditional delete — against a stub that answers
as LocalStack community does (tests/localstack_stub.py) — and what any emulator may need."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
from botocore.stub import Stubber
from sdeliver.aws import LOCALSTACK, NOT_OFFERED, Aws
from sdeliver.commands.history import short_who
from sdeliver.config import load_config
from sdeliver.errors import AwsError, ConfigError, UsageError
from sdeliver.lock import EnvironmentLock, Lease, _delete_if, lock_key, read_lock
from sdeliver.openapi import build_definition
from sdeliver.operations.reconcile import leave_out
from sdeliver.project import Project
from sdeliver.resources import api

from tests.conftest import client
from tests.localstack_stub import LocalStackStub

TEST_SITE = "test.dromedary.example.com"


@pytest.fixture
def localstack(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStackStub]:
    """The stub in front of a fresh moto account, as SDELIVER_ENDPOINT_URL."""
    with LocalStackStub(endpoint) as stub:
        monkeypatch.setenv("SDELIVER_ENDPOINT_URL", stub.url)
        yield stub


def stub_project(project_dir: Path, stub: LocalStackStub, said: list[str] | None = None) -> Project:
    config = load_config(project_dir / "sdeliver.yaml")
    log = said.append if said is not None else None
    return Project(config=config, aws=Aws(region=config.region, endpoint_url=stub.url, log=log))


def get(url: str, host: str) -> tuple[int, bytes]:
    """GET through the stub as a browser would after resolving `host` to 127.0.0.1."""
    where = url.removeprefix("http://").split("/")[0]
    conn = http.client.HTTPConnection(where, timeout=10)
    try:
        conn.request("GET", "/", headers={"Host": host})
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


# -- telling LocalStack apart -----------------------------------------------------------------


def test_localstack_is_told_apart_by_its_health_endpoint(localstack: LocalStackStub,
                                                         endpoint: str) -> None:
    assert Aws(region="us-east-1", endpoint_url=localstack.url).emulator == LOCALSTACK
    assert Aws(region="us-east-1", endpoint_url=endpoint).emulator == ""  # moto
    assert Aws(region="us-east-1").emulator == ""  # AWS: nothing asked


# -- a service the endpoint does not offer ----------------------------------------------------


def test_a_missing_service_is_one_line_naming_it_and_what_to_do(
    localstack: LocalStackStub, project_dir: Path, hosted_zone: str, sdeliver: Any
) -> None:
    result = sdeliver("init", "--yes", cwd=project_dir)
    assert result.code == 1
    # The first pipeline service read: CodeBuild (the default runner) or CodePipeline.
    service = result.stderr.split("does not offer ", 1)[1].split(" ", 1)[0]
    assert service in ("codebuild", "codepipeline")
    assert f"the endpoint {localstack.url} does not offer {service} (The API for service " \
           f"{service} is either not included in your current license plan" in result.stderr
    assert "--skip pipeline" in result.stderr
    assert "Traceback" not in result.output
    refused = [call.split()[0] for call in localstack.refused]
    assert service in refused and len(refused) == len(set(refused))  # a 501 is never retried
    assert client(localstack.url, "lambda").list_functions()["Functions"] == []  # nothing made


def test_without_the_pipeline_the_rest_is_provisioned_served_and_destroyed(
    localstack: LocalStackStub, project_dir: Path, hosted_zone: str, sdeliver: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = sdeliver("init", "--yes", "--skip", "pipeline", cwd=project_dir)
    assert result.code == 0, result.output
    assert "pipeline: left out (--skip pipeline)" in result.stderr

    monkeypatch.setenv("SDELIVER_SKIP", "pipeline")  # the setting, for every command
    assert sdeliver("reconcile", "--check").code == 0  # converged, tags read with GetTags too

    status = sdeliver("status", "--json")
    site_url = json.loads(status.stdout)["environments"]["test"]["site_url"]
    host = f"{TEST_SITE}.s3-website.localhost.localstack.cloud"
    assert site_url == f"http://{host}:{localstack.port}/"
    client(localstack.url, "s3").put_object(Bucket=TEST_SITE, Key="index.html", Body=b"hello",
                                            ContentType="text/html")
    assert get(f"http://127.0.0.1:{localstack.port}/", host) == (200, b"hello")

    result = sdeliver("destroy", "--yes", "--purge")
    assert result.code == 0, result.output
    assert localstack.refused == []  # CodePipeline and CodeBuild were never asked
    assert client(localstack.url, "lambda").list_functions()["Functions"] == []
    assert client(localstack.url, "s3").list_buckets()["Buckets"] == []


def test_only_known_parts_can_be_left_out(project_dir: Path) -> None:
    config = load_config(project_dir / "sdeliver.yaml")
    assert leave_out(config, ["pipeline"])[0].pipeline is None
    assert leave_out(config, ["pipeline"])[0].project_dir == config.project_dir
    assert config.pipeline is not None  # the loaded config is left as it was
    with pytest.raises(UsageError, match="--skip dns: only pipeline can be left out"):
        leave_out(config, ["pipeline,dns"])


def test_a_missing_operation_names_it_and_points_elsewhere() -> None:
    aws = Aws(region="us-east-1", endpoint_url="http://127.0.0.1:4566")
    err = botocore.exceptions.ClientError(
        {"Error": {"Code": "InternalFailure", "Message": "The API action ListLayers for service "
                   "lambda is either not available in your current license plan or has not yet "
                   "been emulated by LocalStack. Please refer to the docs."},
         "ResponseMetadata": {"HTTPStatusCode": 501}},
        "ListLayers",
    )
    translated = aws.translate(err, "lambda", "list_layers", "layers")
    assert translated.code == NOT_OFFERED
    assert translated.message.startswith(
        "the endpoint http://127.0.0.1:4566 does not offer lambda.list_layers (The API action")
    assert translated.hint == "use an endpoint that offers it (LocalStack Pro, or AWS)"


# -- site URLs ---------------------------------------------------------------------------------


def test_an_environment_may_name_its_site_url(make_project: Any, project_dir: Path) -> None:
    text = (project_dir / "sdeliver.yaml").read_text().replace(
        "    domain: test.dromedary.example.com",
        "    domain: test.dromedary.example.com\n    site_url: http://localhost:8080/site/",
    )
    project = make_project(text)
    assert project.site_url("test") == "http://localhost:8080/site/"
    assert project.site_url("prod") == "http://dromedary.example.com/"
    with pytest.raises(ConfigError, match="site_url"):
        make_project(text.replace("http://localhost:8080/site/", "localhost:8080"))


def test_on_localstack_the_site_is_its_website_host_unless_named(
    localstack: LocalStackStub, project_dir: Path
) -> None:
    project = stub_project(project_dir, localstack)
    assert project.site_url("prod") == (
        f"http://dromedary.example.com.s3-website.localhost.localstack.cloud:{localstack.port}/")
    project.config.environments["prod"].site_url = "http://127.0.0.1:9/"
    assert project.site_url("prod") == "http://127.0.0.1:9/"


# -- the API definition's digest ------------------------------------------------------------


def test_the_digest_is_read_with_get_tags_when_get_rest_api_lacks_it(
    localstack: LocalStackStub, project_dir: Path
) -> None:
    project = stub_project(project_dir, localstack)
    definition = build_definition(project)
    api_id = api.create_api(project, definition)
    listed = project.aws.call("apigateway", "get_rest_api", restApiId=api_id)
    assert api.TAG_DEFINITION not in listed["tags"]  # as LocalStack shows it
    found = api.find_api(project)
    assert found is not None and api.definition_digest(found) == definition.sha256
    assert found["tags"]["sdeliver:app"] == "dromedary"


# -- conditional delete -------------------------------------------------------------------------


def test_without_conditional_deletes_the_lease_goes_by_compare_then_delete_said_once(
    localstack: LocalStackStub, project_dir: Path
) -> None:
    said: list[str] = []
    project = stub_project(project_dir, localstack, said)
    project.aws.call("s3", "create_bucket", Bucket=project.artifact_bucket)
    for _ in range(2):
        with EnvironmentLock(project, "test", "deploy"):
            pass
        assert read_lock(project, "test") is None
    assert localstack.refused == ["s3 DeleteObject If-Match"] * 2
    assert [m for m in said if "If-Match" in m] == [
        "s3.DeleteObject with If-Match is not supported here (NotImplemented): removing the "
        "lease by compare-then-delete"
    ]


def test_the_fallback_leaves_a_lease_that_changed_since_it_was_read(
    localstack: LocalStackStub, project_dir: Path
) -> None:
    project = stub_project(project_dir, localstack)
    bucket, key = project.artifact_bucket, lock_key(project, "test")
    project.aws.call("s3", "create_bucket", Bucket=bucket)
    times = ("2026-11-30T10:00:00.000Z", "2026-11-30T10:30:00.000Z")
    ours = Lease("arn:aws:iam::123456789012:user/ana", "ci-7", 41, "deploy", *times, "a")
    theirs = Lease("arn:aws:iam::123456789012:user/bo", "ci-8", 42, "deploy", *times, "b")
    first = project.aws.call("s3", "put_object", Bucket=bucket, Key=key, Body=ours.to_json())
    project.aws.call("s3", "put_object", Bucket=bucket, Key=key, Body=theirs.to_json())
    assert _delete_if(project, "test", first["ETag"], ours) is False
    assert read_lock(project, "test") == theirs


# -- waiter failures -------------------------------------------------------------------------


def test_a_failed_function_is_reported_with_lambdas_state_reason() -> None:
    aws = Aws(region="us-east-1")
    reason = "Error while creating lambda: Docker not available"
    with Stubber(aws.client("lambda")) as stubber:
        stubber.add_response("get_function", {"Configuration": {
            "FunctionName": "f", "State": "Failed", "StateReason": reason}})
        with pytest.raises(AwsError) as raised:
            aws.wait("lambda", "function_active_v2", resource="function f", FunctionName="f",
                     delay=0)
    assert raised.value.message == (
        f"waiting for function f (function_active_v2) failed: State Failed: {reason}")


def test_a_failed_update_is_reported_with_its_last_update_reason() -> None:
    aws = Aws(region="us-east-1")
    with Stubber(aws.client("lambda")) as stubber:
        stubber.add_response("get_function_configuration", {
            "FunctionName": "f", "State": "Active", "LastUpdateStatus": "Failed",
            "LastUpdateStatusReason": "the image could not be pulled"})
        with pytest.raises(AwsError, match="LastUpdateStatus Failed: the image could not be"):
            aws.wait("lambda", "function_updated", resource="function f", FunctionName="f",
                     delay=0)


def test_a_wait_that_times_out_asks_lambda_why() -> None:
    aws = Aws(region="us-east-1")
    with Stubber(aws.client("lambda")) as stubber:
        stubber.add_response("get_function", {"Configuration": {"State": "Pending"}})
        stubber.add_response(
            "get_function_configuration",
            {"State": "Pending", "StateReason": "The function is being created."},
            {"FunctionName": "f", "Qualifier": "test"},
        )
        with pytest.raises(AwsError, match="State Pending: The function is being created"):
            aws.wait("lambda", "function_active_v2", resource="function f", FunctionName="f",
                     Qualifier="test", delay=0, max_attempts=1)


# -- history ------------------------------------------------------------------------------------


def test_history_shows_the_callers_last_name_part_root_included() -> None:
    assert short_who("arn:aws:iam::123456789012:root") == "root"
    assert short_who("arn:aws:iam::123456789012:user/ana") == "ana"
    assert short_who("arn:aws:sts::123456789012:assumed-role/deployer/ci-42") == "ci-42"
