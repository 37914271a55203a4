"""HTTPS hosting (`site.hosting: cloudfront`, the scaffold's default) in local mode: the
emulator has what moto lacks (local/edge.py) and the gateway answers at /<env>/ as the
distribution does — the live release's site from releases/<id>/, the API under /api/."""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest

from tests.integration.helpers import CallLog

pytestmark = pytest.mark.integration

MARK = "<p id='second'>the second release</p>"


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def get_json(url: str) -> Any:
    status, body = get(url)
    assert status == 200, (url, status, body)
    return json.loads(body)


def site_objects(endpoint: str, bucket: str) -> dict[str, tuple[str, Any]]:
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint)
    listing = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: (o["ETag"], o["LastModified"]) for o in listing}


def test_a_cloudfront_app_goes_through_local_init_deploy_promote_and_rollback(  # type: ignore[no-untyped-def]
    sdeliver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SDELIVER_LOCAL_IDLE", "120")  # bounds a server a failure leaves
    calls = CallLog(tmp_path / "calls.log", monkeypatch)
    directory = tmp_path / "app"
    name = f"edge-{secrets.token_hex(3)}"
    assert sdeliver("new", name, "--dir", str(directory), cwd=tmp_path).code == 0
    assert "hosting: cloudfront" in (directory / "sdeliver.yaml").read_text()

    def run(*args: str) -> str:
        result = sdeliver("--local", *args, cwd=directory)
        assert result.code == 0, result.output
        return result.output

    try:
        run("init", "--yes")
        state = json.loads((directory / ".sdeliver" / "local.json").read_text())
        endpoint, gateway = state["endpoint"], state["gateway"]
        calls.reset()
        assert "No changes" in run("reconcile", "--check")
        assert calls.writes() == []  # converged: init made exactly what is declared

        assert "e2e passed" in run("deploy", "--env", "test")  # the scaffold's own e2e
        status = json.loads(sdeliver("--local", "--json", "status", cwd=directory).stdout)
        test = status["environments"]["test"]
        assert (test["site_url"], test["api_url"]) == (f"{gateway}/test/", f"{gateway}/test/api/")
        status_code, page = get(test["site_url"])
        assert status_code == 200 and b'src="app.js"' in page
        config = get_json(test["site_url"] + "config.json")
        assert config["release"] == test["release"]
        assert config["apiBaseurl"] == test["api_url"]  # one origin: no CORS needed
        assert get_json(config["apiBaseurl"] + "hello")["version"] == "v1"
        first = test["release"]

        run("promote", "test->prod", "--yes")
        prod = f"{gateway}/prod/"
        assert get_json(prod + "config.json")["release"] == first
        assert get_json(prod + "api/hello")["version"] == "v1"
        assert MARK.encode() not in get(prod)[1]

        app = directory / "app" / "app.py"
        app.write_text(app.read_text().replace('VERSION = "v1"', 'VERSION = "v2"'))
        index = directory / "site" / "index.html"
        index.write_text(index.read_text().replace("</body>", MARK + "\n</body>"))
        run("deploy", "--env", "test")
        assert get_json(prod + "config.json")["release"] == first  # prod unchanged
        bucket = f"{name}.example.com"
        before = site_objects(endpoint, bucket)
        calls.reset()
        run("promote", "test", "prod", "--yes")
        second = get_json(prod + "config.json")["release"]
        assert second != first and MARK.encode() in get(prod)[1]
        assert get_json(prod + "api/hello")["version"] == "v2"
        # The switch is one write to the store; objects are added under the new release's
        # prefix only, and none that served before is rewritten.
        assert calls.writes().count("cloudfront-keyvaluestore PutKey") == 1
        after = site_objects(endpoint, bucket)
        assert {k: v for k, v in after.items() if k in before} == before
        assert all(k.startswith(f"releases/{second}/") for k in set(after) - set(before))

        calls.reset()
        run("rollback", "--alias", "prod", "--yes")
        assert get_json(prod + "config.json")["release"] == first
        assert MARK.encode() not in get(prod)[1]
        assert get_json(prod + "api/hello")["version"] == "v1"
        assert calls.writes().count("cloudfront-keyvaluestore PutKey") == 1
        assert site_objects(endpoint, bucket) == after  # a pointer moved; nothing rewritten

        run("destroy", "--yes")
        cloudfront = boto3.client("cloudfront", region_name="us-east-1", endpoint_url=endpoint)
        assert not cloudfront.list_distributions()["DistributionList"].get("Items")
        assert get(prod)[0] == 503  # no distribution (no store) serves it any more
    finally:
        sdeliver("local", "stop", cwd=directory)


def test_the_emulator_answers_what_moto_lacks_for_functions_and_the_store(emulator: str) -> None:
    cf = boto3.client("cloudfront", region_name="us-east-1", endpoint_url=emulator)
    config = {"Comment": "c", "Runtime": "cloudfront-js-2.0"}
    made = cf.create_function(Name="f", FunctionConfig=config, FunctionCode=b"one")
    with pytest.raises(botocore.exceptions.ClientError, match="NoSuchFunctionExists"):
        cf.describe_function(Name="f", Stage="LIVE")  # nothing published yet
    published = cf.publish_function(Name="f", IfMatch=made["ETag"])
    assert published["FunctionSummary"]["FunctionMetadata"]["Stage"] == "LIVE"
    dev = cf.describe_function(Name="f", Stage="DEVELOPMENT")
    updated = cf.update_function(Name="f", IfMatch=dev["ETag"], FunctionConfig=config,
                                 FunctionCode=b"two")
    assert cf.get_function(Name="f", Stage="LIVE")["FunctionCode"].read() == b"one"
    assert cf.get_function(Name="f")["FunctionCode"].read() == b"two"
    with pytest.raises(botocore.exceptions.ClientError, match="PreconditionFailed"):
        cf.publish_function(Name="f", IfMatch="stale")
    cf.publish_function(Name="f", IfMatch=updated["ETag"])
    assert cf.get_function(Name="f", Stage="LIVE")["FunctionCode"].read() == b"two"

    from sdeliver.aws import Aws

    aws = Aws(region="us-east-1", endpoint_url=emulator)  # its KVS client: no awscrt needed
    arn = cf.create_key_value_store(Name="s")["KeyValueStore"]["ARN"]
    assert aws.call("cloudfront-keyvaluestore", "get_key", missing=True, KvsARN=arn,
                    Key="release") is None
    etag = aws.call("cloudfront-keyvaluestore", "describe_key_value_store", KvsARN=arn)["ETag"]
    aws.call("cloudfront-keyvaluestore", "put_key", KvsARN=arn, Key="release", Value="r-1",
             IfMatch=etag)
    assert aws.call("cloudfront-keyvaluestore", "get_key", KvsARN=arn,
                    Key="release")["Value"] == "r-1"
    from sdeliver.errors import AwsError

    with pytest.raises(AwsError, match=r"ConflictException|If-Match"):  # a stale ETag
        aws.call("cloudfront-keyvaluestore", "put_key", KvsARN=arn, Key="release",
                 Value="r-2", IfMatch=etag)
    cf.delete_key_value_store(Name="s", IfMatch="any")
    assert aws.call("cloudfront-keyvaluestore", "get_key", missing=True, KvsARN=arn,
                    Key="release") is None  # its keys went with it


def test_only_the_emulators_endpoints_sign_the_store_without_awscrt(emulator: str) -> None:
    import botocore.regions
    from sdeliver.aws import Aws
    from sdeliver.config import parse_config
    from sdeliver.errors import OperationFailed
    from sdeliver.project import Project
    from sdeliver.resources import cdn

    text = (Path(__file__).parents[2] / "cli" / "templates" / "python-api" / "sdeliver.yaml"
            ).read_text().replace("{{app}}", "shop")
    config = parse_config(text, Path("sdeliver.yaml"))
    cdn.check_crt(Project(config=config, aws=Aws(region="us-east-1", endpoint_url=emulator)))
    if botocore.regions.HAS_CRT:
        pytest.skip("awscrt is installed: botocore signs SigV4A itself")
    with pytest.raises(OperationFailed, match="awscrt"):  # AWS's own endpoint, no awscrt
        cdn.check_crt(Project(config=config, aws=Aws(region="us-east-1")))


def test_the_gateway_answers_as_the_distribution_before_and_after_a_release(  # type: ignore[no-untyped-def]
    emulator: str, tmp_path: Path
) -> None:
    from sdeliver.aws import Aws
    from sdeliver.config import parse_config
    from sdeliver.local.gateway import Gateway
    from sdeliver.project import Project
    from sdeliver.resources import cdn

    text = (Path(__file__).parents[2] / "cli" / "templates" / "python-api" / "sdeliver.yaml"
            ).read_text().replace("{{app}}", "shop")
    config = parse_config(text, tmp_path / "sdeliver.yaml")
    gateway = Gateway(endpoint=emulator, config=lambda: config)
    assert gateway.handle("GET", "/test/", [], b"").status == 503  # no store: not reconciled

    project = Project(config=config, aws=Aws(region="us-east-1", endpoint_url=emulator))
    boto3.client("cloudfront", region_name="us-east-1", endpoint_url=emulator
                 ).create_key_value_store(Name=cdn.resource_name(project, "test", "release"))
    first = gateway.handle("GET", "/test/", [], b"")
    assert (first.status, json.loads(first.body)["message"]) == (503, "No release published yet")

    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=emulator)
    s3.create_bucket(Bucket="test.shop.example.com")
    for key, body in {"index.html": "one", "docs/index.html": "docs of one"}.items():
        s3.put_object(Bucket="test.shop.example.com", Key=f"releases/r-1/{key}", Body=body,
                      ContentType="text/html")
    s3.put_object(Bucket="test.shop.example.com", Key="releases/r-2/index.html", Body="two")
    assert cdn.switch_release(project, "test", "r-1")

    assert gateway.handle("GET", "/test/", [], b"").body == b"one"
    assert gateway.handle("GET", "/test/docs/", [], b"").body == b"docs of one"
    redirect = gateway.handle("GET", "/test", [], b"")
    assert (redirect.status, redirect.headers) == (302, [("Location", "/test/")])
    assert gateway.handle("GET", "/test/missing.js", [], b"").status == 403  # as S3 via OAC
    assert gateway.handle("POST", "/test/index.html", [], b"").status == 403
    assert gateway.handle("GET", "/test/site/", [], b"").status == 403  # no /site/ here
    assert cdn.switch_release(project, "test", "r-2")
    assert gateway.handle("GET", "/test/", [], b"").body == b"two"  # the next request
    assert gateway.handle("GET", "/test/docs/", [], b"").status == 403  # nothing of r-1 mixed in
    index = json.loads(gateway.handle("GET", "/", [], b"").body)
    assert index["environments"]["test"] == {"api": f"{gateway.url}/test/api/",
                                             "site": f"{gateway.url}/test/"}
