"""`sdeliver logs`: CloudWatch Logs of the alias's versions on AWS, gateway.log locally."""

from __future__ import annotations

import contextlib
import json
import time

import boto3
import pytest
from sdeliver.errors import UsageError
from sdeliver.operations import logs
from sdeliver.resources import function, iam

NAME = "dromedary-app"
GROUP = f"/aws/lambda/{NAME}"


def converge(project) -> None:  # type: ignore[no-untyped-def]
    for change in [*iam.plan(project), *function.plan(project)]:
        if change.apply is not None:
            change.apply(project)


def put(stream: str, *messages: str) -> None:
    client = boto3.client("logs", region_name="us-east-1")
    with contextlib.suppress(client.exceptions.ResourceAlreadyExistsException):
        client.create_log_group(logGroupName=GROUP)
    with contextlib.suppress(client.exceptions.ResourceAlreadyExistsException):
        client.create_log_stream(logGroupName=GROUP, logStreamName=stream)
    now = int(time.time() * 1000)
    client.put_log_events(logGroupName=GROUP, logStreamName=stream, logEvents=[
        {"timestamp": now + i, "message": m} for i, m in enumerate(messages)])


def test_only_the_streams_of_the_versions_the_alias_points_to(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)
    put("2026/11/30/[1]aaaa", "START v1", "hello from 1\n")
    put("2026/11/30/[$LATEST]bbbb", "not released")
    put("2026/11/30/[12]cccc", "another version")
    versions = logs.alias_versions(project, "test")
    assert versions == ["1"]
    lines = logs.cloudwatch_lines(project, versions, time.time() - 600)
    assert [(x.version, x.message) for x in lines] == [("1", "START v1"), ("1", "hello from 1")]


def test_no_log_group_yet_is_no_lines(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)
    assert logs.cloudwatch_lines(project, ["1"], time.time() - 600) == []


def test_follow_prints_each_new_event_once(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    converge(project)
    put("2026/11/30/[1]aaaa", "first")
    followed = logs.follow_cloudwatch(
        project, "test", time.time() - 600, rounds=2,
        sleep=lambda _: put("2026/11/30/[1]aaaa", "second"),
    )
    assert [x.message for x in followed] == ["first", "second"]


GATEWAY_LOG = """\
2026-11-30 08:05:32,912 GET /test/site/config.json 200 177 ms
2026-11-30 08:05:33,304 GET /prod/api/health 200 388 ms
2026-11-30 08:05:33,397 POST /test/api/hello 502 90 ms: the handler raised ValueError: boom
Traceback (most recent call last):
  ValueError: boom
2026-11-30 08:05:33,400 dromedary-app:3 printed by the handler
"""


def epoch(stamp: str) -> float:
    return time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S"))


def test_gateway_lines_of_one_environment_with_their_tracebacks() -> None:
    lines = logs.gateway_lines(GATEWAY_LOG, "test", 0)
    assert [x.message for x in lines] == [
        "GET /test/site/config.json 200 177 ms",
        "POST /test/api/hello 502 90 ms: the handler raised ValueError: boom",
        "Traceback (most recent call last):",
        "  ValueError: boom",
        "dromedary-app:3 printed by the handler",
    ]
    since = logs.gateway_lines(GATEWAY_LOG, "test", epoch("2026-11-30 08:05:33"))
    assert since[0].message.startswith("POST /test/api/hello")


def test_follow_gateway_tails_what_is_appended(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "gateway.log"
    path.write_text(GATEWAY_LOG.splitlines(keepends=True)[0])

    def more(_: float) -> None:
        with path.open("a") as file:
            file.write("2026-11-30 08:06:00,000 GET /test/api/hello 200 5 ms\n2026-11-30 08:06")

    followed = logs.follow_gateway(path, "test", 0, rounds=2, sleep=more)
    assert [x.message for x in followed] == [
        "GET /test/site/config.json 200 177 ms", "GET /test/api/hello 200 5 ms"]


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400)])
def test_since_takes_a_duration(text: str, seconds: int) -> None:
    assert logs.parse_since(text) == seconds


def test_since_refuses_what_is_not_a_duration() -> None:
    with pytest.raises(UsageError, match="not a duration"):
        logs.parse_since("yesterday")


def test_local_logs_print_the_gateway_log_of_the_environment(sdeliver, project_dir) -> None:  # type: ignore[no-untyped-def]
    (project_dir / ".sdeliver").mkdir()
    (project_dir / ".sdeliver" / "gateway.log").write_text(GATEWAY_LOG)
    shown = sdeliver("--local", "logs", "--env", "test", "--since", "1000d", cwd=project_dir)
    assert shown.code == 0, shown.output
    assert "GET /test/site/config.json 200" in shown.stdout
    assert "/prod/" not in shown.stdout
    assert not (project_dir / ".sdeliver" / "local.json").exists()  # no emulator started
    document = json.loads(sdeliver("--local", "--json", "logs", "--since", "1000d", cwd=project_dir).stdout)
    assert document["env"] == "test" and len(document["lines"]) == 5


def test_json_and_follow_together_are_refused(sdeliver, project_dir) -> None:  # type: ignore[no-untyped-def]
    refused = sdeliver("--json", "logs", "--follow", cwd=project_dir)
    assert refused.code == 2


def test_logs_command_on_aws_prints_the_alias_versions_lines(make_project, project_dir, sdeliver) -> None:  # type: ignore[no-untyped-def]
    converge(make_project())
    put("2026/11/30/[1]aaaa", "hello from 1")
    put("2026/11/30/[7]bbbb", "not test's")
    shown = sdeliver("logs", "--env", "test", cwd=project_dir)
    assert shown.code == 0, shown.output
    assert shown.stdout.endswith(" [1] hello from 1\n") and "not test's" not in shown.stdout
    document = json.loads(sdeliver("--json", "logs", "--env", "test", cwd=project_dir).stdout)
    assert (document["source"], document["lambda_versions"]) == (GROUP, ["1"])
    assert [x["message"] for x in document["lines"]] == ["hello from 1"]
