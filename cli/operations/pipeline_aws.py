"""The pipeline in AWS: its state, a new run, the declaration sdeliver would create."""

from __future__ import annotations

from typing import Any

from ..errors import OperationFailed, UsageError
from ..project import Project
from ..resources import pipeline
from ..resources.source import connection_status


def pipeline_name(project: Project) -> str:
    if project.config.pipeline is None:
        raise UsageError(
            f"{project.config.path.name} declares no pipeline",
            hint="add a pipeline: section (see config/sdeliver.example.yaml)",
        )
    assert project.config.pipeline.name is not None  # filled by the config's defaults
    return project.config.pipeline.name


def _on_pipeline(project: Project, operation: str) -> tuple[str, dict[str, Any]]:
    """The pipeline's name and the answer of `operation` on it; a one-line error if the
    pipeline does not exist in AWS."""
    name = pipeline_name(project)
    found = project.aws.call(
        "codepipeline", operation, resource=f"pipeline {name}", missing=True, name=name
    )
    if found is None:
        raise OperationFailed(
            f"pipeline {name} does not exist", hint="run 'sdeliver init' (or reconcile) first"
        )
    return name, found


def status(project: Project) -> dict[str, Any]:
    """Each stage and action with its latest status, revision and time, and the GitHub
    connection's state (PENDING until a person authorises it)."""
    name, found = _on_pipeline(project, "get_pipeline_state")
    stages = []
    for stage in found.get("stageStates") or []:
        actions = []
        for action in stage.get("actionStates") or []:
            latest = action.get("latestExecution") or {}
            changed = latest.get("lastStatusChange")
            actions.append(
                {
                    "name": action.get("actionName"),
                    "status": latest.get("status"),
                    "revision": (action.get("currentRevision") or {}).get("revisionId"),
                    "time": str(changed) if changed is not None else None,
                    "summary": latest.get("summary"),
                    "message": (latest.get("errorDetails") or {}).get("message"),
                }
            )
        stages.append(
            {
                "name": stage.get("stageName"),
                "status": (stage.get("latestExecution") or {}).get("status"),
                "actions": actions,
            }
        )
    return {"pipeline": name, "version": found.get("pipelineVersion"),
            "connection": connection_status(project), "stages": stages}


def start(project: Project) -> str:
    _, started = _on_pipeline(project, "start_pipeline_execution")
    return str(started["pipelineExecutionId"])


def show(project: Project) -> dict[str, Any]:
    """The pipeline sdeliver would create (the data reconcile compares; tokens masked)."""
    pipeline_name(project)
    return pipeline.declaration(project)


