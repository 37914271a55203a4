"""The global options every command shares, and what they resolve to."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from .config import Config
    from .output import Reporter
    from .project import Project


@dataclass
class Globals:
    config_path: Path = Path("sdeliver.yaml")
    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    json: bool = False
    verbose: bool = False
    yes: bool = False
    local: bool = False
    _config: Config | None = None
    _project: Project | None = None
    _cleanups: list[Any] = field(default_factory=list)

    @property
    def reporter(self) -> Reporter:
        from .output import Reporter

        return Reporter(verbose=self.verbose)

    def config(self) -> Config:
        if self._config is None:
            # pydantic and yaml load here, not at start-up: --help and --version need neither.
            from .config import load_config

            self._config = load_config(self.config_path)
        return self._config

    def project(self, config: Config | None = None) -> Project:
        """The project with its AWS clients (imports boto3: only commands that call AWS)."""
        if self._project is None:
            from .aws import Aws
            from .project import Project

            config = config or self.config()
            endpoint = self.endpoint_url or os.environ.get("SDELIVER_ENDPOINT_URL") or None
            if self.local or (endpoint and _is_local_serve(endpoint, config)):
                # The emulator gets dummy credentials: a real profile never goes near it.
                from .local.emulator import local_endpoint

                self.profile = None
                session = local_endpoint(config, self.config_path, self.reporter.step)
                self._cleanups.append(session.close)
                endpoint = session.endpoint
            reporter = self.reporter
            aws = Aws(
                region=self.region or config.region,
                profile=None if self.local else self.profile,
                endpoint_url=endpoint,
                log=reporter.detail,
            )
            self._project = Project(config=config, aws=aws, progress=reporter)
        return self._project

    def close(self) -> None:
        if self._project is not None and self.verbose:
            from .output import info

            info(self._project.aws.stats.summary())
        while self._cleanups:
            self._cleanups.pop()()


def _is_local_serve(endpoint: str, config: Config) -> bool:
    """Whether the endpoint is this project's running `sdeliver local serve`."""
    from .endpoints import running_server

    running = running_server(config.project_dir)
    return running is not None and str(running["endpoint"]).rstrip("/") == endpoint.rstrip("/")


def state(ctx: typer.Context) -> Globals:
    root = ctx.find_root()
    if not isinstance(root.obj, Globals):
        root.obj = Globals()
    return root.obj
