"""Planned equals executed: for every resource kind and every action it can plan, the AWS
write calls its apply makes (recorded by `plan.execute` at `Aws.call`) are the calls its
plan shows — what `reconcile --check`, `--dry-run` and `--json` print — in order.

The life of two apps in in-process moto (tests/unit/edge_fake.py standing in for the
CloudFront Functions and KeyValueStore operations moto lacks), lived once per test run: an
S3-website app with tables, an S3 source and CodeBuild, and a CloudFront-hosted app. Each
is created, drifted by hand with boto3 (an update of every kind), pruned (an environment
no longer declared) and destroyed with --purge; and the GitHub connection sdeliver makes
for a third app is created. Each resource module of `reconcile.kinds()` is then one test:
the kinds and actions its changes had are those EXPECTED says, and each change made the
calls it planned. A new resource module (or a kind or action no life here makes) fails
until this file covers it.
"""

from __future__ import annotations

import fcntl
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from sdeliver.aws import Aws
from sdeliver.config import load_config
from sdeliver.errors import SdeliverError
from sdeliver.operations import reconcile
from sdeliver.plan import Change, Plan, PlanMismatch, apply_change, call, execute, matches
from sdeliver.project import Project
from sdeliver.resources import cdn, codebuild, iam, source

from .edge_fake import EdgeFake, keep_distribution_fields

ROOT = Path(__file__).parents[2]
EXAMPLE = (ROOT / "config" / "sdeliver.example.yaml").read_text(encoding="utf-8")
BASE = EXAMPLE.split("\npipeline:")[0] + "\n"
TABLES = """
tables:
  items:
    key: {name: id, type: S}
    ttl: expiresAt
    stream: NEW_AND_OLD_IMAGES
    indexes:
      by-owner: {key: {name: owner}}
"""
S3_CODEBUILD = """pipeline:
  source:
    provider: s3
    bucket: drops
    key: dromedary.zip
  build: codebuild
"""
GITHUB_CONNECTION = """pipeline:
  source:
    provider: github
    repo: stelligent/dromedary
"""
CLOUDFRONT = BASE.replace("site:\n", "site:\n  hosting: cloudfront\n", 1)
TEST, PROD = "test.dromedary.example.com", "dromedary.example.com"
ZONE_NAME = "example.com"

# Each resource module's kinds, and the actions this file makes each of them plan.
EXPECTED: dict[str, set[tuple[str, str]]] = {
    "artifacts": {("artifact-bucket", a) for a in ("create", "update", "delete")},
    "tables": {("dynamodb-table", a) for a in ("create", "update", "delete")},
    "iam": {("iam-role", a) for a in ("create", "update", "delete")},
    "function": {("lambda-function", a) for a in ("create", "update", "delete")}
    | {("lambda-alias", "create"), ("lambda-alias", "delete")},
    "api": {(k, a) for k in ("rest-api", "api-stage", "lambda-permission")
            for a in ("create", "update", "delete")},
    "site": {("site-bucket", a) for a in ("create", "update", "delete")},
    "cdn": {("acm-certificate", "create"), ("acm-certificate", "update"),
            ("site-bucket-policy", "create"), ("site-bucket-policy", "update")}
    | {(k, a) for k in ("cloudfront-oac", "cloudfront-function", "cloudfront-distribution",
                        "dns-record") for a in ("create", "update", "delete")}
    | {("cloudfront-kvs", "create"), ("cloudfront-kvs", "delete")},
    "dns": {("dns-record", a) for a in ("create", "update", "delete")},
    "worker": {("pipeline-worker", a) for a in ("create", "update", "delete")},
    "codebuild": {("codebuild-project", a) for a in ("create", "update", "delete")},
    "source": {("pipeline-source", a) for a in ("create", "update", "delete")},
    "pipeline": {("codepipeline", a) for a in ("create", "update", "delete")},
}


def short(module: ModuleType) -> str:
    return module.__name__.rsplit(".", 1)[-1]


@dataclass
class Record:
    """What each resource module's applied changes were, and where made differed from planned."""

    seen: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    mismatches: dict[str, list[str]] = field(default_factory=dict)

    def dump(self) -> str:
        return json.dumps({"seen": {k: sorted(v) for k, v in self.seen.items()},
                           "mismatches": self.mismatches})

    @classmethod
    def load(cls, text: str) -> Record:
        found = json.loads(text)
        return cls({k: {(kind, action) for kind, action in v}
                    for k, v in found["seen"].items()}, found["mismatches"])

    def run(self, project: Project, planned: list[tuple[str, Change]]) -> None:
        """Apply the changes as `plan.execute` does, one by one, keeping every mismatch."""
        for module, change in planned:
            if change.action == "none":
                continue
            made = apply_change(project, change, strict=False)
            self.seen.setdefault(module, set()).add((change.kind, change.action))
            if not matches(change.calls, [tuple(m.split(".", 1)) for m in made]):  # type: ignore[misc]
                self.mismatches.setdefault(module, []).append(
                    f"{change.action} {change.resource}: planned {change.shown_calls}, "
                    f"made {made}")


def planned(project: Project, *, prune: bool = False) -> list[tuple[str, Change]]:
    """reconcile.plan's changes (kinds() in order, one after another), each with its module."""
    found = []
    for kind in reconcile.kinds():
        changes = list(kind.plan(project))
        if prune and hasattr(kind, "prune"):
            changes += kind.prune(project)
        found += [(short(kind), change) for change in changes]
    return found


def destroyed(project: Project) -> list[tuple[str, Change]]:
    """reconcile.destroy_plan(purge=True)'s changes, each with its module."""
    return [(short(kind), change) for kind in reversed(reconcile.kinds())
            for change in kind.destroy(project)]


def pending(changes: list[tuple[str, Change]]) -> list[str]:
    return [f"{c.action} {c.resource}" for _, c in changes if c.action != "none"]


# -- the apps ----------------------------------------------------------------------------------


class Connections:
    """moto has no CodeStar Connections: ListConnections and CreateConnection, kept, answered
    before anything is sent (as tests/unit/edge_fake.py answers CloudFront's)."""

    def __init__(self) -> None:
        self.made: list[dict[str, str]] = []

    def install(self, aws: Aws) -> None:
        events = aws.client("codestar-connections").meta.events
        events.register("before-parameter-build.*.*", self._keep_params)
        events.register("before-call.*.*", self._answer)

    @staticmethod
    def _keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["connections_params"] = dict(params)

    def _answer(self, model: Any, context: dict[str, Any], **_: Any) -> Any:
        params = context["connections_params"]
        if model.name == "CreateConnection":
            arn = ("arn:aws:codestar-connections:us-east-1:123456789012:connection/"
                   f"{len(self.made)}")
            self.made.append({"ConnectionName": params["ConnectionName"], "ConnectionArn": arn})
            body: dict[str, Any] = {"ConnectionArn": arn}
        else:
            assert model.name == "ListConnections", model.name
            body = {"Connections": list(self.made)}
        return AWSResponse(None, 200, {}, None), {**body, "ResponseMetadata": {
            "HTTPStatusCode": 200}}


@dataclass
class App:
    directory: Path
    fake: EdgeFake = field(default_factory=EdgeFake)
    connections: Connections = field(default_factory=Connections)

    def project(self, text: str) -> Project:
        """A new Project (no facts, new clients) over the account, as a next command."""
        (self.directory / "sdeliver.yaml").write_text(text, encoding="utf-8")
        config = load_config(self.directory / "sdeliver.yaml")
        project = Project(config=config, aws=Aws(region=config.region))
        self.fake.install(project.aws)
        self.connections.install(project.aws)
        return project


def zone_id() -> str:
    [zone] = boto3.client("route53").list_hosted_zones_by_name(DNSName=ZONE_NAME + ".")[
        "HostedZones"]
    return str(zone["Id"])


def only_test(text: str) -> str:
    """The config without its prod environment."""
    head, _, rest = text.partition("  prod:\n")
    return head + rest[rest.index("\ndns:") + 1:]


def life(app: App, record: Record, text: str, drift: Callable[[Project], None],
         interrupt: Callable[[Project], None] | None = None) -> None:
    """Create, drift and repair, prune, destroy (after `interrupt`, what an interrupted
    destroy leaves): each plan applied and checked."""
    project = app.project(text)
    record.run(project, planned(project))
    assert not pending(planned(app.project(text))), "created, then converged"
    drift(app.project(text))
    record.run(project := app.project(text), planned(project))
    assert not pending(planned(app.project(text))), "repaired, then converged"
    project = app.project(only_test(text))
    record.run(project, planned(project, prune=True))
    project = app.project(text)
    if interrupt is not None:
        interrupt(project)
    record.run(project, destroyed(project))


# -- drifts: one update of each kind, made by hand ---------------------------------------------


def drift_website_app(project: Project) -> None:
    s3, lam, iam_ = boto3.client("s3"), boto3.client("lambda"), boto3.client("iam")
    bucket = project.artifact_bucket
    s3.delete_bucket_policy(Bucket=bucket)
    s3.delete_bucket_tagging(Bucket=bucket)
    s3.delete_bucket_lifecycle(Bucket=bucket)
    s3.delete_public_access_block(Bucket=bucket)
    s3.delete_bucket_encryption(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    dynamodb = boto3.client("dynamodb")
    table = dynamodb.describe_table(TableName="dromedary-test-items")["Table"]
    dynamodb.update_time_to_live(TableName=table["TableName"], TimeToLiveSpecification={
        "Enabled": False, "AttributeName": "expiresAt"})
    dynamodb.untag_resource(ResourceArn=table["TableArn"], TagKeys=["sdeliver:app"])
    role = iam.roles(project)[0]
    iam_.update_assume_role_policy(RoleName=role.name, PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "ec2.amazonaws.com"}}]}))
    iam_.put_role_policy(RoleName=role.name, PolicyName=next(iter(role.policies)),
                         PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                             {"Effect": "Allow", "Action": "s3:ListAllMyBuckets",
                              "Resource": "*"}]}))
    iam_.untag_role(RoleName=role.name, TagKeys=["sdeliver:app"])
    function = lam.get_function(FunctionName=project.function_name)["Configuration"]
    lam.update_function_configuration(FunctionName=project.function_name, MemorySize=512)
    lam.untag_resource(Resource=function["FunctionArn"], TagKeys=["sdeliver:app"])
    drift_api(project)
    site = project.site_bucket("test")
    s3.delete_bucket_website(Bucket=site)
    s3.delete_bucket_policy(Bucket=site)
    boto3.client("route53").change_resource_record_sets(HostedZoneId=zone_id(), ChangeBatch={
        "Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
            "Name": TEST + ".", "Type": "A", "AliasTarget": {
                "HostedZoneId": "Z3AQBSTGFYJSTF", "EvaluateTargetHealth": False,
                "DNSName": "s3-website.us-west-2.amazonaws.com."}}}]})
    worker = lam.update_function_configuration(FunctionName="dromedary-pipeline-worker",
                                               MemorySize=512)
    lam.untag_resource(Resource=worker["FunctionArn"], TagKeys=["sdeliver:app"])
    # moto has no UpdateProject: the CodeBuild project's update is the wheel it runs, gone.
    s3.delete_object(Bucket=bucket, Key=codebuild.wheel_key(project, codebuild.wheel()))
    events = boto3.client("events")
    rule = events.describe_rule(Name="dromedary-pipeline-source")
    events.put_rule(Name=rule["Name"], EventPattern=rule["EventPattern"], State="DISABLED")
    cp = boto3.client("codepipeline")
    declared = cp.get_pipeline(name="dromedary-delivery")
    declared["pipeline"]["stages"][-1]["actions"][0]["runOrder"] = 7
    cp.update_pipeline(pipeline=declared["pipeline"])
    cp.untag_resource(resourceArn=declared["metadata"]["pipelineArn"],
                      tagKeys=["sdeliver:app"])


def drift_api(project: Project) -> None:
    apigw, lam = boto3.client("apigateway"), boto3.client("lambda")
    [api] = [a for a in apigw.get_rest_apis()["items"] if a["name"] == project.api_name]
    apigw.update_rest_api(restApiId=api["id"], patchOperations=[
        {"op": "replace", "path": "/endpointConfiguration/types/REGIONAL", "value": "EDGE"}])
    apigw.update_stage(restApiId=api["id"], stageName="test", patchOperations=[
        {"op": "replace", "path": "/variables/alias", "value": "prod"}])
    arn = f"arn:aws:apigateway:us-east-1::/restapis/{api['id']}/stages/test"
    apigw.untag_resource(resourceArn=arn, tagKeys=["sdeliver:app"])
    lam.remove_permission(FunctionName=project.function_name, Qualifier="test",
                          StatementId=project.permission_id("test"))
    lam.add_permission(FunctionName=project.function_name, Qualifier="test",
                       StatementId=project.permission_id("test"),
                       Action="lambda:InvokeFunction", Principal="apigateway.amazonaws.com",
                       SourceArn=f"arn:aws:execute-api:us-east-1:123456789012:{api['id']}/x/*")


def drift_cloudfront_app(app: App) -> Callable[[Project], None]:
    def drift(project: Project) -> None:
        cf, s3, route53 = boto3.client("cloudfront"), boto3.client("s3"), boto3.client("route53")
        [oac] = [o for o in cf.list_origin_access_controls()["OriginAccessControlList"]["Items"]
                 if o["Name"] == cdn.resource_name(project, "test", "site")]
        found = cf.get_origin_access_control(Id=oac["Id"])
        config = found["OriginAccessControl"]["OriginAccessControlConfig"]
        cf.update_origin_access_control(Id=oac["Id"], IfMatch=found["ETag"],
                                        OriginAccessControlConfig={
                                            **config, "SigningBehavior": "no-override"})
        dist = cdn.find_distribution(project, "test")
        assert dist is not None
        found = cf.get_distribution_config(Id=dist["Id"])
        found["DistributionConfig"]["DefaultCacheBehavior"]["ViewerProtocolPolicy"] = "allow-all"
        cf.update_distribution(Id=dist["Id"], IfMatch=found["ETag"],
                               DistributionConfig=found["DistributionConfig"])
        s3.put_bucket_policy(Bucket=PROD, Policy=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{PROD}/*"}]}))
        app.fake.functions[cdn.resource_name(project, "prod", "site")]["LIVE"]["code"] = b"x"
        records = route53.list_resource_record_sets(HostedZoneId=zone_id())[
            "ResourceRecordSets"]
        [aaaa] = [r for r in records if r["Name"] == TEST + "." and r["Type"] == "AAAA"]
        validation = [r for r in records if r["Type"] == "CNAME"][:1]
        route53.change_resource_record_sets(HostedZoneId=zone_id(), ChangeBatch={"Changes": [
            {"Action": "DELETE", "ResourceRecordSet": r} for r in [aaaa, *validation]]})

    return drift


def disable_test_site(project: Project) -> None:
    """What a destroy interrupted after disabling the test distribution leaves."""
    cf = boto3.client("cloudfront")
    dist = cdn.find_distribution(project, "test")
    assert dist is not None
    found = cf.get_distribution_config(Id=dist["Id"])
    cf.update_distribution(Id=dist["Id"], IfMatch=found["ETag"],
                           DistributionConfig={**found["DistributionConfig"], "Enabled": False})


# -- the lives, once per test run ----------------------------------------------------------


def lives(tmp_path_factory: pytest.TempPathFactory) -> Record:
    from moto import mock_aws
    from sdeliver.local.emulator import _ignore_policy_conditions

    _ignore_policy_conditions()  # the artifact bucket's TLS-only guard: no TLS in process
    record = Record()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                            ("AWS_SESSION_TOKEN", "testing"), ("AWS_DEFAULT_REGION", "us-east-1")):
            patch.setenv(name, value)
        for name in ("AWS_PROFILE", "SDELIVER_ENDPOINT_URL", "SDELIVER_STRICT_PLANS"):
            patch.delenv(name, raising=False)
        patch.setattr(Aws, "sleep_default", lambda seconds: None)
        keep_distribution_fields(patch)
        for name, text in (("website", BASE + TABLES + S3_CODEBUILD), ("cloudfront", CLOUDFRONT),
                           ("connection", BASE + GITHUB_CONNECTION)):
            directory = tmp_path_factory.mktemp(name)
            shutil.copytree(ROOT / "tests" / "fixtures" / "sample", directory, dirs_exist_ok=True)
            app = App(directory)
            with mock_aws(config={"iam": {"load_aws_managed_policies": False}}):
                boto3.client("route53").create_hosted_zone(Name=ZONE_NAME, CallerReference="t")
                if name == "connection":  # the rest of this app is the website app's
                    project = app.project(text)
                    record.run(project, [("source", c) for c in source.plan(project)])
                else:
                    if name == "website":
                        life(app, record, text, drift_website_app)
                    else:
                        life(app, record, text, drift_cloudfront_app(app), disable_test_site)
    return record


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Record:
    """The lives, lived by the first pytest-xdist worker that needs them and read from a
    file by the others (the pattern pytest-xdist documents for a fixture made once)."""
    if worker_id == "master":
        return lives(tmp_path_factory)
    shared = tmp_path_factory.getbasetemp().parent
    with open(shared / "planned_equals_executed.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cache = shared / "planned_equals_executed.json"
        if cache.exists():
            return Record.load(cache.read_text())
        record = lives(tmp_path_factory)
        cache.write_text(record.dump())
        return record


@pytest.mark.parametrize("module", [short(kind) for kind in reconcile.kinds()])
def test_every_change_makes_the_calls_it_planned(recorded: Record, module: str) -> None:
    assert module in EXPECTED, f"resources/{module}.py: no life in this file covers it"
    assert recorded.seen.get(module, set()) == EXPECTED[module]
    assert recorded.mismatches.get(module, []) == []


# -- the executor --------------------------------------------------------------------------


def test_execute_raises_when_strict_and_a_change_makes_another_call(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    bucket = "dromedary-plans-check"

    def apply(p: Project) -> None:
        p.aws.call("s3", "create_bucket", Bucket=bucket)
        p.aws.call("s3", "put_bucket_tagging", Bucket=bucket, Tagging={"TagSet": []})

    change = Change("artifact-bucket", bucket, "create", [], [call("s3.CreateBucket")], apply)
    with pytest.raises(PlanMismatch, match=r"made \['s3.CreateBucket', 's3.PutBucketTagging'\]"):
        execute(project, Plan([change]), strict=True)


def test_execute_logs_a_mismatch_when_not_strict(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    logged: list[str] = []
    project.aws.log = logged.append
    change = Change("artifact-bucket", "b", "create", [], [call("s3.CreateBucket")],
                    lambda p: None)

    execute(project, Plan([change]), strict=False)

    assert logged == ["plan mismatch: create artifact-bucket b: made no write calls, "
                      "planned ['s3.CreateBucket']"]


def test_reads_and_botocore_retries_are_not_calls_of_the_plan(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    failed: list[str] = []

    def fail_first_attempt(**_: Any) -> Any:
        if not failed:  # a 500: botocore's standard retries send it again
            failed.append("CreateBucket")
            return AWSResponse("https://s3", 500, {}, _Raw(b"<Error><Code>InternalError</Code>"
                                                         b"</Error>"))
        return None

    project.aws.client("s3").meta.events.register_first(
        "before-send.s3.CreateBucket", fail_first_attempt)

    def apply(p: Project) -> None:
        p.aws.call("s3", "create_bucket", Bucket="dromedary-reads")
        p.aws.call("s3", "head_bucket", Bucket="dromedary-reads")
        p.aws.call("s3", "list_objects_v2", Bucket="dromedary-reads")

    change = Change("artifact-bucket", "b", "create", [], [call("s3.CreateBucket")], apply)
    assert apply_change(project, change, strict=True) == ["s3.CreateBucket"]
    assert failed == ["CreateBucket"]


class _Raw:
    """A response body as urllib3 gives it."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


@pytest.mark.parametrize(("planned_calls", "made", "ok"), [
    ([call("s3.A")], [("s3", "A")], True),
    ([call("s3.A")], [], False),
    ([call("s3.A")], [("s3", "A"), ("s3", "A")], False),
    ([call("s3.A", when="x"), call("s3.B")], [("s3", "B")], True),
    ([call("s3.A", when="x"), call("s3.B")], [("s3", "A"), ("s3", "B")], True),
    ([call("s3.A", when="x")], [("s3", "A"), ("s3", "A")], False),
    ([call("s3.A", each="x"), call("s3.B")], [("s3", "A")] * 3 + [("s3", "B")], True),
    ([call("s3.A", each="x"), call("s3.B")], [("s3", "B")], True),
    ([call("s3.A"), call("s3.B")], [("s3", "B"), ("s3", "A")], False),
])
def test_calls_made_match_the_plan_in_order(planned_calls, made, ok) -> None:  # type: ignore[no-untyped-def]
    assert matches(planned_calls, made) is ok


def test_a_mismatch_is_an_sdeliver_error() -> None:
    assert issubclass(PlanMismatch, SdeliverError)


def test_a_change_shows_its_calls_with_their_conditions() -> None:
    change = Change("k", "n", "create", [], [call("s3.A"), call("s3.B", when="unless X"),
                                             call("s3.C", each="batch")])
    assert change.to_json()["calls"] == ["s3.A", "s3.B (unless X)", "s3.C (each batch)"]



def test_the_plan_table_shows_each_changes_calls(capsys: pytest.CaptureFixture[str]) -> None:
    from sdeliver.output import plan_table

    plan_table(Plan([Change("site-bucket", "b", "create", [], [
        call("s3.CreateBucket"), call("s3.PutBucketPolicy"),
        call("s3.PutBucketPolicy", each="retry"), call("s3.PutObject", when="x")])]))

    shown = capsys.readouterr().err
    assert "CreateBucket, PutBucketPolicy, PutBucketPolicy*, PutObject?" in shown
    assert "? only when needed, * as many times as needed" in shown


def test_thousands_of_batches_match_one_repeated_call() -> None:
    batches = [("s3", "DeleteObjects")] * 5000
    planned_calls = [call("s3.DeleteObjects", each="batch"), call("s3.DeleteBucket")]
    assert matches(planned_calls, [*batches, ("s3", "DeleteBucket")])
    assert not matches(planned_calls, [*batches, ("s3", "DeleteBucket")] * 2)
