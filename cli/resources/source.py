"""How the pipeline learns of a new source revision, without polling.

AWS deprecates `PollForSourceChanges` (and disables polling after 30 days without a
change), so:

- GitHub: a CodeStar connection. When sdeliver.yaml names none (`connection_arn`), sdeliver
  creates one named `<app>-github`; AWS creates it PENDING, and a person must authorise it
  once in the console (the link is printed; `pipeline status` shows its state). Destroy
  keeps it: a new one would need that person again.
- S3: an EventBridge rule on the source object's "Object Created" events (the source bucket
  sends them to EventBridge once its EventBridge notifications are on) that starts the
  pipeline through a role allowed only codepipeline:StartPipelineExecution on it.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import OperationFailed
from ..names import connection_name, events_role_name, pipeline_name
from ..names import source_rule_name as rule_name
from ..plan import Call, Change, FieldChange, call
from ..project import Project
from . import policies

KIND = "pipeline-source"
CONNECTIONS = "codestar-connections"
PENDING_ARN = "(created by init)"


def _source(project: Project) -> Any:
    assert project.config.pipeline is not None
    return project.config.pipeline.source


def managed_connection(project: Project) -> bool:
    """A GitHub source with no connection_arn: sdeliver makes (and finds) the connection."""
    pipeline = project.config.pipeline
    return pipeline is not None and pipeline.source.provider == "github" and (
        pipeline.source.connection_arn is None)


def console_link(project: Project, arn: str) -> str:
    """Where a person authorises a PENDING connection."""
    region = project.region
    return (f"https://{region}.console.aws.amazon.com/codesuite/settings/connections?"
            f"region={region}&connectionArn={arn}")


def find_connection(project: Project) -> str | None:
    """The ARN of the connection sdeliver made for this app, if any."""
    cached = project.facts.get("connection_arn")
    if cached:
        return str(cached)
    for found in project.aws.paginate(
        CONNECTIONS, "list_connections", "Connections", resource="CodeStar connections",
        ProviderTypeFilter="GitHub",
    ):
        if found.get("ConnectionName") == connection_name(project):
            project.facts["connection_arn"] = found["ConnectionArn"]
            return str(found["ConnectionArn"])
    return None


def connection_arn(project: Project) -> str:
    """The GitHub source's connection: the declared one, or the one sdeliver made (a
    placeholder until it exists, for a plan)."""
    declared = _source(project).connection_arn
    if declared:
        return str(declared)
    return find_connection(project) or PENDING_ARN


def connection_status(project: Project) -> dict[str, Any] | None:
    """The GitHub connection and its state (PENDING until authorised, then AVAILABLE)."""
    pipeline = project.config.pipeline
    if pipeline is None or pipeline.source.provider != "github":
        return None
    arn = connection_arn(project)
    if arn == PENDING_ARN:
        return {"arn": None, "status": "MISSING", "link": None}
    found = project.aws.call(CONNECTIONS, "get_connection", resource=f"connection {arn}",
                             missing=True, ConnectionArn=arn)
    status = ((found or {}).get("Connection") or {}).get("ConnectionStatus") or "MISSING"
    return {"arn": arn, "status": status,
            "link": console_link(project, arn) if status == "PENDING" else None}


def _create_connection(project: Project) -> None:
    created = project.aws.call(
        CONNECTIONS, "create_connection", resource=f"connection {connection_name(project)}",
        ConnectionName=connection_name(project), ProviderType="GitHub",
        Tags=[{"Key": k, "Value": v} for k, v in sorted(project.tags().items())],
    )
    arn = str(created["ConnectionArn"])
    project.facts["connection_arn"] = arn
    project.progress.step(
        f"connection {connection_name(project)} is PENDING: authorise it once in the AWS "
        f"console: {console_link(project, arn)}")


# -- the S3 source's EventBridge rule ---------------------------------------------------------


def pipeline_arn(project: Project) -> str:
    return project.arn("codepipeline", pipeline_name(project))


def event_pattern(project: Project) -> dict[str, Any]:
    source = _source(project)
    return {"source": ["aws.s3"], "detail-type": ["Object Created"],
            "detail": {"bucket": {"name": [source.bucket]}, "object": {"key": [source.key]}}}


def events_role(project: Project) -> policies.Role:
    """EventBridge may start this pipeline, and nothing else."""
    return policies.Role(
        name=events_role_name(project), service="events.amazonaws.com",
        policies={"sdeliver-pipeline-events": {"Version": "2012-10-17", "Statement": [
            {"Sid": "StartPipeline", "Effect": "Allow",
             "Action": "codepipeline:StartPipelineExecution",
             "Resource": pipeline_arn(project)}]}},
    )


def _desired_rule(project: Project) -> dict[str, Any]:
    return {
        "pattern": event_pattern(project),
        "state": "ENABLED",
        "target": {"Id": "pipeline", "Arn": pipeline_arn(project),
                   "RoleArn": policies.role_arn(project, events_role_name(project))},
    }


def _read_rule(project: Project) -> dict[str, Any] | None:
    name = rule_name(project)
    found = project.aws.call("events", "describe_rule", resource=f"rule {name}", missing=True,
                             Name=name)
    if found is None:
        return None
    targets = project.aws.call("events", "list_targets_by_rule", resource=f"rule {name}",
                               Rule=name).get("Targets") or []
    target = next(({k: t.get(k) for k in ("Id", "Arn", "RoleArn")} for t in targets
                   if t.get("Id") == "pipeline"), None)
    return {
        "pattern": json.loads(found.get("EventPattern") or "{}"),
        "state": found.get("State"),
        "target": target,
    }


def _apply_rule(project: Project) -> None:
    want = _desired_rule(project)
    name = rule_name(project)
    bucket = _source(project).bucket
    # The bucket sends its events to EventBridge (turned on here, not compared by plan:
    # moto does not keep the setting). Its other notifications stay: the call replaces
    # the whole configuration.
    current = project.aws.call("s3", "get_bucket_notification_configuration",
                               resource=f"bucket {bucket}", missing=True, Bucket=bucket)
    if current is None:
        project.progress.warn(
            f"source bucket {bucket} does not exist: create it (versioned) and turn on its "
            "EventBridge notifications (s3 put-bucket-notification-configuration), or the "
            "rule never fires")
    elif "EventBridgeConfiguration" not in current:
        current.pop("ResponseMetadata", None)
        project.aws.call("s3", "put_bucket_notification_configuration",
                         resource=f"bucket {bucket}", Bucket=bucket,
                         NotificationConfiguration={**current, "EventBridgeConfiguration": {}})
    project.aws.call(
        "events", "put_rule", resource=f"rule {name}", Name=name,
        EventPattern=json.dumps(want["pattern"], sort_keys=True), State=want["state"],
        Description="sdeliver: start the pipeline when its S3 source changes",
        Tags=[{"Key": k, "Value": v} for k, v in sorted(project.tags().items())],
    )
    project.aws.call("events", "put_targets", resource=f"rule {name}", Rule=name,
                     Targets=[want["target"]])


# -- planning -----------------------------------------------------------------------------------


def plan(project: Project) -> list[Change]:
    pipeline = project.config.pipeline
    if pipeline is None:
        return []
    if managed_connection(project):
        if find_connection(project) is not None:
            return [Change(KIND, connection_name(project), "none")]
        return [Change(KIND, connection_name(project), "create",
                       [FieldChange("provider", None, "GitHub")],
                       [Call(CONNECTIONS, "CreateConnection")], _create_connection)]
    if pipeline.source.provider != "s3":
        return []
    want = _desired_rule(project)
    have = _read_rule(project)
    calls = [
        call("s3.PutBucketNotificationConfiguration",
             when="the bucket's EventBridge events are off"),
        call("events.PutRule"), call("events.PutTargets"),
    ]
    if have is None:
        return [Change(KIND, rule_name(project), "create",
                       [FieldChange(k, None, v) for k, v in want.items()], calls, _apply_rule)]
    fields = [FieldChange(k, have.get(k), v) for k, v in want.items() if have.get(k) != v]
    if not fields:
        return [Change(KIND, rule_name(project), "none")]
    return [Change(KIND, rule_name(project), "update", fields, calls, _apply_rule)]


def destroy(project: Project) -> list[Change]:
    pipeline = project.config.pipeline
    if pipeline is None or pipeline.source.provider != "s3":
        return []  # a connection is kept: a new one would need a person to authorise it
    name = rule_name(project)
    if project.aws.call("events", "describe_rule", resource=f"rule {name}", missing=True,
                        Name=name) is None:
        return []

    def apply(p: Project) -> None:
        p.aws.call("events", "remove_targets", resource=f"rule {name}", missing=True,
                   Rule=name, Ids=["pipeline"])
        p.aws.call("events", "delete_rule", resource=f"rule {name}", missing=True, Name=name)

    calls = [call("events.RemoveTargets"), call("events.DeleteRule")]
    return [Change(KIND, name, "delete", [], calls, apply)]


def require_connection(project: Project) -> str:
    arn = connection_arn(project)
    if arn == PENDING_ARN:
        raise OperationFailed(
            f"the GitHub connection {connection_name(project)} does not exist",
            hint="run 'sdeliver init' (or reconcile), or set pipeline.source.connection_arn")
    return arn
