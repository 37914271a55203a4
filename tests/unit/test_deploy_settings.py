"""A deploy publishes a new Lambda version when only the function's settings changed
(issue 13, item 3): a published version snapshots them."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from sdeliver.aws import Aws
from sdeliver.config import load_config
from sdeliver.operations import deploy as steps
from sdeliver.progress import Silent
from sdeliver.project import Project
from sdeliver.release import build
from sdeliver.resources import function

from tests.unit.test_deploy_steps import app, aws  # noqa: F401 - the same provisioned app


@pytest.fixture
def config_path(project_dir: Path, app: Project) -> Path:
    """The example app, provisioned, with quick offline commands and test deployed."""
    first = steps.deploy(app, "test")
    assert first.outcome == "succeeded" and first.version == "1"
    return project_dir / "sdeliver.yaml"


def changed(path: Path, old: str, new: str) -> Project:
    """A project (as a new command would load it) after one edit of sdeliver.yaml."""
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    config = load_config(path)
    return Project(config=config, aws=Aws(region=config.region), progress=Silent())


def test_changed_settings_publish_a_version_and_say_what_changed(config_path: Path) -> None:
    project = changed(config_path, "memory: 256 ", "memory: 512 ")
    result = steps.deploy(project, "test")
    assert result.outcome == "succeeded" and result.version == "2"
    assert "function settings changed: memory 256 → 512" in project.progress.lines  # type: ignore[attr-defined]
    published = boto3.client("lambda", region_name="us-east-1").get_function_configuration(
        FunctionName=project.function_name, Qualifier="test")
    assert published["Version"] == "2" and published["MemorySize"] == 512


def test_a_changed_environment_is_shown(config_path: Path) -> None:
    project = changed(config_path, "LOG_LEVEL: info", "LOG_LEVEL: debug")
    result = steps.deploy(project, "test")
    assert result.version == "2"
    assert ('function settings changed: environment {"LOG_LEVEL": "info"} → '
            '{"LOG_LEVEL": "debug"}') in project.progress.lines  # type: ignore[attr-defined]
    published = boto3.client("lambda", region_name="us-east-1").get_function_configuration(
        FunctionName=project.function_name, Qualifier="2")
    assert published["Environment"]["Variables"] == {"LOG_LEVEL": "debug"}


def test_unchanged_settings_are_still_unchanged(config_path: Path) -> None:
    config = load_config(config_path)
    project = Project(config=config, aws=Aws(region=config.region), progress=Silent())
    again = steps.deploy(project, "test")
    assert again.outcome == "unchanged" and again.version == "1"


def test_the_release_id_is_code_and_configuration(config_path: Path) -> None:
    before = build(changed(config_path, "timeout: 10 ", "timeout: 10 ")).release_id
    after = build(changed(config_path, "timeout: 10 ", "timeout: 20 ")).release_id
    assert before != after


def test_settings_are_what_reconcile_declares(config_path: Path) -> None:
    """After such a deploy, reconcile finds no drift in the function."""
    project = changed(config_path, "timeout: 10 ", "timeout: 30 ")
    steps.deploy(project, "test")
    change = function.plan(project)
    assert all(c.action == "none" for c in change if c.kind == function.KIND)
