"""What the roles sdeliver makes are made of, shared by every module that declares one:
`Role` (name, the service that assumes it, inline policies), the policies of a log group
and of the site buckets, and the ARN a role has.

The `iam-role` kind (resources/iam.py) plans every declared role; the modules that declare
the pipeline's roles (pipeline, worker, codebuild, source) build them from these pieces
without importing that planner, which imports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..project import Project

LOGS_POLICY = "sdeliver-logs"


@dataclass(frozen=True)
class Role:
    name: str
    service: str  # the AWS service principal that assumes the role
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)  # inline, by name
    description: str = "managed by sdeliver"

    def trust_policy(self) -> dict[str, Any]:
        return {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": self.service},
                    "Action": "sts:AssumeRole",
                }
            ],
        }


def log_group_arn(project: Project, function_name: str) -> str:
    return project.arn("logs", f"log-group:/aws/lambda/{function_name}")


def logs_policy(project: Project, function_name: str) -> dict[str, Any]:
    return log_group_policy(project, f"/aws/lambda/{function_name}")


def log_group_policy(project: Project, group_name: str) -> dict[str, Any]:
    """Create and write to one log group (a function's, a CodeBuild project's), no other."""
    group = project.arn("logs", f"log-group:{group_name}")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "CreateOwnLogGroup",
                "Effect": "Allow",
                "Action": "logs:CreateLogGroup",
                "Resource": [group, f"{group}:*"],
            },
            {
                "Sid": "WriteOwnLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": f"{group}:*",
            },
        ],
    }


def role_arn(project: Project, name: str) -> str:
    """The ARN a role has (learnt by plan or apply), or the one it will have once created."""
    known: dict[str, str] = project.facts.get("role_arns", {})
    return known.get(name) or project.role_arn(name)


def site_statements(project: Project) -> list[dict[str, Any]]:
    """What publishing a site does to each environment's bucket (a restore too): for the
    roles of the pipeline worker and the CodeBuild project, which both publish."""
    if not project.config.site:
        return []
    sites = [f"arn:{project.aws.partition}:s3:::{project.site_bucket(env)}"
             for env in project.config.environments]
    return [
        {"Sid": "SiteContent", "Effect": "Allow",
         "Action": ["s3:PutObject", "s3:DeleteObject"],
         "Resource": [f"{arn}/*" for arn in sites]},
        {"Sid": "SiteListing", "Effect": "Allow", "Action": "s3:ListBucket",
         "Resource": sites},
        # config.json names the release the bucket holds, or a publish under way: read first.
        {"Sid": "SiteConfig", "Effect": "Allow", "Action": "s3:GetObject",
         "Resource": [f"{arn}/config.json" for arn in sites]
         + ([f"{arn}/releases/*/config.json" for arn in sites]
            if project.config.site.hosting == "cloudfront" else [])},
        *_live_release_statements(project),
    ]


def _live_release_statements(project: Project) -> list[dict[str, Any]]:
    """CloudFront hosting: reading and switching the live release (cdn.switch_release)."""
    if project.config.site is None or project.config.site.hosting != "cloudfront":
        return []
    stores = f"arn:{project.aws.partition}:cloudfront::{project.account}:key-value-store/*"
    return [{"Sid": "LiveRelease", "Effect": "Allow", "Action": [
        "cloudfront:DescribeKeyValueStore", "cloudfront-keyvaluestore:DescribeKeyValueStore",
        "cloudfront-keyvaluestore:GetKey", "cloudfront-keyvaluestore:PutKey"],
        "Resource": stores}]
