"""(being written)"""

from __future__ import annotations

from ..plan import Change
from ..project import Project


def plan(project: Project) -> list[Change]:
    return []


def destroy(project: Project) -> list[Change]:
    return []


def website_endpoint(bucket: str, region: str) -> str:
    return f"{bucket}.s3-website-{region}.amazonaws.com"
