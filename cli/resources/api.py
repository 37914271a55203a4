"""(being written)"""

from __future__ import annotations

from ..plan import Change
from ..project import Project


def plan(project: Project) -> list[Change]:
    return []


def destroy(project: Project) -> list[Change]:
    return []
