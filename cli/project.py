"""A project: one validated sdeliver.yaml, the AWS account it deploys to, and the names
of everything sdeliver creates there (derived in one place, so every module agrees)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from .aws import LOCALSTACK, Aws
from .config import Config, table_variable
from .names import localstack_website, website_endpoint
from .progress import Progress, Silent

TAG_APP = "sdeliver:app"
TAG_ENV = "sdeliver:env"
TAG_MANAGED_BY = "managed-by"


def bucket_name(*parts: str) -> str:
    """A valid S3 bucket name from parts; shortened with a digest when over 63 characters."""
    name = "-".join(parts).lower()
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:54].rstrip('-.')}-{digest}"


@dataclass
class Project:
    config: Config
    aws: Aws
    progress: Progress = field(default_factory=Silent)
    # Values learnt while applying a plan (a role's ARN, a new API's id) for later changes.
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def app(self) -> str:
        return self.config.app

    @property
    def region(self) -> str:
        return self.aws.region

    @property
    def account(self) -> str:
        return self.aws.account_id

    def tags(self, env: str | None = None) -> dict[str, str]:
        tags = {TAG_APP: self.app, TAG_MANAGED_BY: "sdeliver"}
        if env:
            tags[TAG_ENV] = env
        return tags

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:{self.aws.partition}:{service}:{self.region if region else ''}:"
            f"{self.account if account else ''}:{resource}"
        )

    # -- names ---------------------------------------------------------------------------

    @property
    def artifact_bucket(self) -> str:
        if self.config.artifacts.bucket:
            return self.config.artifacts.bucket
        if self.region == "us-east-1":
            return bucket_name(self.app, "artifacts", self.account)
        return bucket_name(self.app, "artifacts", self.account, self.region)

    def site_bucket(self, env: str) -> str:
        domain = self.config.env(env).domain
        return domain if domain else bucket_name(self.app, env, "site", self.account)

    @property
    def function_name(self) -> str:
        return self.config.function_name

    @property
    def function_arn(self) -> str:
        return self.arn("lambda", f"function:{self.function_name}")

    @property
    def execution_role(self) -> str:
        return f"{self.app}-function"[:64]

    def role_arn(self, role: str) -> str:
        return f"arn:{self.aws.partition}:iam::{self.account}:role/sdeliver/{role}"

    @property
    def api_name(self) -> str:
        return self.config.api_name

    def table_name(self, env: str, table: str) -> str:
        """A declared table's name in one environment: <app>-<env>-<table>."""
        return f"{self.app}-{env}-{table}"

    def table_arn(self, env: str, table: str) -> str:
        return self.arn("dynamodb", f"table/{self.table_name(env, table)}")

    def stage_variables(self, env: str) -> dict[str, str]:
        """Everything an environment's stage carries: the alias it invokes, each table's
        name (TABLE_<NAME>) and the environment's own variables. Test and prod run the
        same function versions, so what differs between them comes from here."""

        return {
            "alias": env,
            **{table_variable(t): self.table_name(env, t) for t in self.config.tables},
            **self.config.env(env).variables,
        }

    @property
    def prefix(self) -> str:
        """Where sdeliver keeps its state in the artifact bucket."""
        return f"sdeliver/{self.app}"

    def permission_id(self, env: str) -> str:
        return f"sdeliver-apigw-{env}"

    def api_url(self, api_id: str, env: str) -> str:
        endpoint = self.aws.endpoint_url
        if endpoint:
            base = endpoint.rstrip("/")
            return f"{base}/restapis/{api_id}/{env}/_user_request_/"
        suffix = "amazonaws.com.cn" if self.aws.partition == "aws-cn" else "amazonaws.com"
        return f"https://{api_id}.execute-api.{self.region}.{suffix}/{env}/"

    def site_url(self, env: str) -> str:
        """Where the environment's site answers: the configured `site_url`; on LocalStack its
        website host; else the domain, or the bucket's S3 website endpoint."""

        settings = self.config.env(env)
        if settings.site_url:
            return settings.site_url
        if self.aws.emulator == LOCALSTACK:
            assert self.aws.endpoint_url is not None
            return localstack_website(self.site_bucket(env), self.aws.endpoint_url)
        if settings.domain:
            return f"http://{settings.domain}/"
        return f"http://{website_endpoint(self.site_bucket(env), self.region)}/"
