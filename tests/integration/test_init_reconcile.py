"""init and reconcile against a moto server, through the real CLI over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import client
from tests.integration.helpers import CallLog

pytestmark = pytest.mark.integration


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CallLog:
    return CallLog(tmp_path / "calls.log", monkeypatch)


@pytest.fixture
def initialised(sdeliver, project_dir, endpoint, hosted_zone):  # type: ignore[no-untyped-def]
    result = sdeliver("init", "--yes", cwd=project_dir)
    assert result.code == 0, result.output
    return project_dir


def test_init_creates_every_declared_resource(initialised: Path, endpoint: str) -> None:
    lam = client(endpoint, "lambda")
    fn = lam.get_function(FunctionName="dromedary-app")["Configuration"]
    assert (fn["Runtime"], fn["Handler"], fn["MemorySize"], fn["Timeout"]) == (
        "python3.12", "app.handler", 256, 10)
    assert fn["Environment"]["Variables"] == {"LOG_LEVEL": "info"}
    aliases = {a["Name"]: a["FunctionVersion"] for a in lam.list_aliases(FunctionName="dromedary-app")["Aliases"]}
    assert aliases == {"test": "1", "prod": "1"}
    iam = client(endpoint, "iam")
    assert iam.get_role(RoleName="dromedary-function")["Role"]["Arn"] == fn["Role"]
    apigw = client(endpoint, "apigateway")
    apis = [a for a in apigw.get_rest_apis()["items"] if a["name"] == "dromedary"]
    assert len(apis) == 1
    stages = {s["stageName"]: s for s in apigw.get_stages(restApiId=apis[0]["id"])["item"]}
    assert set(stages) == {"test", "prod"}
    assert stages["prod"]["variables"] == {"alias": "prod"}
    s3 = client(endpoint, "s3")
    for domain in ("test.dromedary.example.com", "dromedary.example.com"):
        assert s3.get_bucket_website(Bucket=domain)["IndexDocument"]["Suffix"] == "index.html"
        policy = json.loads(s3.get_bucket_policy(Bucket=domain)["Policy"])
        assert [st["Action"] for st in policy["Statement"]] in (["s3:GetObject"], [["s3:GetObject"]])
        assert json.loads(s3.get_object(Bucket=domain, Key="config.json")["Body"].read())["title"] == "Dromedary"
    artifacts = "dromedary-artifacts-123456789012"
    assert s3.get_bucket_versioning(Bucket=artifacts)["Status"] == "Enabled"
    zone = client(endpoint, "route53").list_hosted_zones()["HostedZones"][0]["Id"]
    records = client(endpoint, "route53").list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    aliases_a = {r["Name"] for r in records if r["Type"] == "A" and "AliasTarget" in r}
    assert aliases_a == {"test.dromedary.example.com.", "dromedary.example.com."}


def test_second_init_and_check_make_no_mutating_call(sdeliver, initialised: Path, calls: CallLog) -> None:
    calls.reset()
    again = sdeliver("init", "--yes", cwd=initialised)
    assert again.code == 0, again.output
    check = sdeliver("reconcile", "--check", cwd=initialised)
    assert check.code == 0, check.output
    assert calls.calls(), "the call log must see the reads"
    assert calls.writes() == []


def test_check_json_is_the_plan_as_data(sdeliver, initialised: Path) -> None:
    result = sdeliver("reconcile", "--check", "--json", cwd=initialised)
    assert result.code == 0
    plan = json.loads(result.stdout)
    assert plan["converged"] is True
    assert {c["action"] for c in plan["changes"]} == {"none"}


def _drift(endpoint: str) -> None:
    client(endpoint, "lambda").update_function_configuration(FunctionName="dromedary-app", MemorySize=512)
    apigw = client(endpoint, "apigateway")
    api_id = next(a["id"] for a in apigw.get_rest_apis()["items"] if a["name"] == "dromedary")
    apigw.update_stage(restApiId=api_id, stageName="prod", patchOperations=[
        {"op": "replace", "path": "/variables/alias", "value": "test"}])
    client(endpoint, "s3").delete_bucket_policy(Bucket="dromedary.example.com")
    r53 = client(endpoint, "route53")
    zone = r53.list_hosted_zones()["HostedZones"][0]["Id"]
    record = next(r for r in r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
                  if r["Name"] == "test.dromedary.example.com." and r["Type"] == "A")
    r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={
        "Changes": [{"Action": "DELETE", "ResourceRecordSet": record}]})


def test_drift_is_shown_by_check_and_repaired(sdeliver, initialised: Path, endpoint: str) -> None:
    _drift(endpoint)
    check = sdeliver("reconcile", "--check", "--json", cwd=initialised)
    assert check.code == 3, check.output
    pending = {(c["kind"], c["name"]): c for c in json.loads(check.stdout)["changes"] if c["action"] != "none"}
    kinds = {kind for kind, _ in pending}
    assert {"lambda-function", "api-stage", "site-bucket", "dns-record"} <= kinds, pending
    memory = next(f for c in pending.values() for f in c["fields"] if f["field"] == "memory")
    assert (memory["from"], memory["to"]) == (512, 256)
    repair = sdeliver("reconcile", "--yes", cwd=initialised)
    assert repair.code == 0, repair.output
    assert sdeliver("reconcile", "--check", cwd=initialised).code == 0
    assert client(endpoint, "lambda").get_function(FunctionName="dromedary-app")["Configuration"]["MemorySize"] == 256


def test_reconcile_without_yes_off_a_terminal_refuses(sdeliver, initialised: Path, endpoint: str) -> None:
    client(endpoint, "lambda").update_function_configuration(FunctionName="dromedary-app", MemorySize=512)
    result = sdeliver("reconcile", cwd=initialised)
    assert result.code == 2
    assert "--yes" in result.stderr


def test_no_credentials_is_one_clear_line(sdeliver, project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    result = sdeliver("reconcile", "--check", cwd=project_dir)
    assert result.code == 1
    assert "no AWS credentials found" in result.stderr
    assert "Traceback" not in result.output


def test_bad_config_through_the_cli_is_exit_2(sdeliver, project_dir: Path) -> None:
    (project_dir / "sdeliver.yaml").write_text("app: shop\nenvironments: {test: {}}\nfunction: {memory: 1}\n")
    result = sdeliver("reconcile", "--check", cwd=project_dir)
    assert result.code == 2
    assert "sdeliver.yaml:3: function.memory" in result.stderr


def test_global_options_after_the_command(sdeliver, initialised: Path) -> None:
    before = sdeliver("--json", "reconcile", "--check", cwd=initialised)
    after = sdeliver("reconcile", "--check", "--json", cwd=initialised)
    assert before.code == after.code == 0
    assert json.loads(before.stdout) == json.loads(after.stdout)
