"""Deploy runs the site's upload alongside the function update, and stays whole or nothing.

The order of events is observed through botocore hooks and a wrapped waiter (no timings):
the site's new files go up while the function update settles; what a visitor sees (the
changed files, config.json) changes only after the alias moved; when either side fails, the
environment and its bucket are put back as they were and the failing step is the error.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from sdeliver.errors import AwsError, SdeliverError
from sdeliver.ledger import Ledger
from sdeliver.operations import deploy as steps
from sdeliver.project import Project
from sdeliver.publish import PUBLISHING
from sdeliver.resources import api, function

from tests.conftest import provisioned

NEW_FILE = "extra.js"  # a file the first release does not have
ENOUGH = 60  # seconds a hook waits for the other thread before the test fails anyway


@pytest.fixture
def aws() -> Iterator[None]:
    from moto import mock_aws
    from sdeliver.local.quirks import _ignore_policy_conditions

    _ignore_policy_conditions()  # moto would apply aws:SecureTransport to its own plain HTTP
    with mock_aws():
        yield


@pytest.fixture
def app(project_dir: Path, aws: None) -> Project:
    """The example app provisioned as `init` does, with quick offline commands."""
    path = project_dir / "sdeliver.yaml"
    text = path.read_text().replace(
        "python -m pip install -r requirements.txt -t app/vendor --quiet", "python -c pass"
    ).replace("e2e: python -m pytest tests/e2e -q", "e2e: python -c pass")
    path.write_text(text)
    return provisioned(path)  # type: ignore[no-any-return]


@pytest.fixture
def released(app: Project, project_dir: Path) -> Project:
    """Test runs a first release; the next one changes the code and adds a site file."""
    steps.deploy(app, "test")
    (project_dir / "app" / "app.py").write_text("def handler(e, c):\n    return {'v': 2}\n")
    (project_dir / "site" / NEW_FILE).write_text("console.log('new')\n")
    (project_dir / "site" / "index.html").write_text("<html>release 2</html>\n")
    return app


class Events:
    """What happened, in order, from any thread."""

    def __init__(self, project: Project) -> None:
        self.seen: list[str] = []
        self.new_file_sent = threading.Event()
        self.bucket = project.site_bucket("test")
        s3 = project.aws.client("s3")
        s3.meta.events.register("before-parameter-build.s3.PutObject", self._put)
        project.aws.client("lambda").meta.events.register(
            "before-call.lambda.UpdateAlias", lambda **_: self.seen.append("alias moved"))

    def _put(self, params: dict[str, Any], **_: Any) -> None:
        if params["Bucket"] != self.bucket:
            return  # the ledger's and the lease's objects
        self.seen.append(f"put {params['Key']}")
        if params["Key"] == NEW_FILE:
            self.new_file_sent.set()


def snapshot(project: Project, env: str) -> dict[str, str]:
    s3 = boto3.client("s3", region_name="us-east-1")
    found = s3.list_objects_v2(Bucket=project.site_bucket(env)).get("Contents", [])
    return {o["Key"]: o["ETag"] for o in found}


def serving(project: Project, env: str) -> tuple[str, str | None]:
    alias = function.read_alias(project, env)
    stage = api.stage(project, api.find_api(project)["id"], env)
    return alias["FunctionVersion"], stage.get("deploymentId")


def test_new_site_files_go_up_while_the_function_update_settles(released, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    events = Events(released)

    def settling(**_: Any) -> None:
        events.seen.append("function waiting")
        events.new_file_sent.wait(ENOUGH)  # sequential code never gets past this early
        events.seen.append("function settled")

    # Until the update has settled no version can be published: held there, the function's
    # side waits while the site's new file goes up.
    released.aws.client("lambda").meta.events.register("before-call.lambda.PublishVersion", settling)
    steps.deploy(released, "test")
    assert events.seen.index(f"put {NEW_FILE}") < events.seen.index("function settled")


def test_what_visitors_see_changes_only_after_the_alias_moved(released) -> None:  # type: ignore[no-untyped-def]
    events = Events(released)
    steps.deploy(released, "test")
    moved = events.seen.index("alias moved")
    assert events.seen.index("put index.html") > moved
    assert events.seen.index("put config.json", events.seen.index("put index.html")) > moved
    assert events.seen[-1] == "put config.json"


def test_a_failed_function_update_leaves_the_site_as_it_was(released, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    events = Events(released)
    bucket_before, serving_before = snapshot(released, "test"), serving(released, "test")

    def fails(*_: Any) -> str:
        events.new_file_sent.wait(ENOUGH)  # the site side has changed the bucket by now
        raise AwsError("lambda.publish_version on function x failed: ServiceException: boom")

    monkeypatch.setattr(steps, "publish_version", fails)
    with pytest.raises(SdeliverError) as raised:
        steps.deploy(released, "test")
    assert "publish_version" in str(raised.value.message)
    assert snapshot(released, "test") == bucket_before
    assert serving(released, "test") == serving_before
    config = boto3.client("s3", region_name="us-east-1").head_object(
        Bucket=released.site_bucket("test"), Key="config.json")
    assert PUBLISHING not in config.get("Metadata", {})
    entry = Ledger(released, "test").latest()
    assert entry is not None and entry.outcome == "failed"
    assert "publish_version" in (entry.message or "")


def test_a_failed_site_upload_puts_the_function_back_and_is_the_error(released) -> None:  # type: ignore[no-untyped-def]
    bucket_before, serving_before = snapshot(released, "test"), serving(released, "test")

    def refuse(params: dict[str, Any], **_: Any) -> Any:
        if params["url_path"].endswith(NEW_FILE):
            denied = {"Error": {"Code": "AccessDenied", "Message": "not this one"}}
            return types.SimpleNamespace(status_code=403, headers={}), denied
        return None

    released.aws.client("s3").meta.events.register("before-call.s3.PutObject", refuse)
    with pytest.raises(SdeliverError) as raised:
        steps.deploy(released, "test")
    assert str(raised.value.message).startswith("access denied: s3.put_object")
    assert NEW_FILE in str(raised.value.message)
    assert serving(released, "test") == serving_before
    assert snapshot(released, "test") == bucket_before
    entry = Ledger(released, "test").latest()
    assert entry is not None and entry.outcome == "failed"
    assert entry.message == raised.value.message


def test_a_failed_first_deploy_takes_its_new_site_files_away_again(app, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    events = Events(app)
    bucket_before = snapshot(app, "test")  # what init left there

    def fails(*_: Any) -> str:
        events.new_file_sent.wait(ENOUGH)
        raise AwsError("lambda.publish_version on function x failed: ServiceException: boom")

    (app.config.project_dir / "site" / NEW_FILE).write_text("console.log('new')\n")
    monkeypatch.setattr(steps, "publish_version", fails)
    with pytest.raises(SdeliverError):
        steps.deploy(app, "test")
    assert f"put {NEW_FILE}" in events.seen
    assert snapshot(app, "test") == bucket_before


def test_an_error_of_no_sdeliver_kind_still_puts_back_and_is_recorded(released, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # e.g. botocore's ResponseStreamingError reading a body, or a bad zip: not an AwsError.
    serving_before = serving(released, "test")

    def broken(*_: Any, **__: Any) -> Any:
        raise OSError("connection reset while reading the site zip")

    monkeypatch.setattr(steps, "publish_site", broken)
    with pytest.raises(OSError):
        steps.deploy(released, "test")
    assert serving(released, "test") == serving_before
    entry = Ledger(released, "test").latest()
    assert entry is not None and entry.outcome == "failed"
    assert "connection reset" in (entry.message or "")


def test_e2e_failing_and_the_restore_failing_is_still_recorded(released, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(steps, "run_e2e", lambda *_: "failed")

    def cannot(*_: Any, **__: Any) -> None:
        raise AwsError("lambda.update_alias on alias test failed: ThrottlingException: slow down")

    monkeypatch.setattr(steps, "restore", cannot)
    result = steps.deploy(released, "test")
    entry = Ledger(released, "test").latest()
    assert entry is not None and entry.seq == result.seq
    assert (entry.outcome, entry.e2e) == ("failed", "failed")
    assert "could not restore test" in (entry.message or "") and "slow down" in (entry.message or "")
