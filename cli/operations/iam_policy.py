"""The least-privilege IAM policy an operator (or a CI role) needs to run sdeliver.

One policy covers init, reconcile, deploy, promote, rollback, status, history, unlock and
destroy for this sdeliver.yaml: every statement names the actions sdeliver calls and the
resources it calls them on, by the names sdeliver derives (buckets, function, roles under
/sdeliver/, the pipeline). No statement has a `*` action. Where AWS cannot scope an action
to a resource (ListBuckets, ListHostedZonesByName, the account's Block Public Access
setting) the statement's resource is `*`, and says why in its Sid.

Action names follow the Service Authorization Reference ("Actions, resources, and
condition keys for AWS services"): most are `service:Operation`; S3's differ (HeadBucket
and ListObjectsV2 need s3:ListBucket, GetBucketEncryption needs
s3:GetEncryptionConfiguration ...) and API Gateway's are HTTP methods on resource paths.
GetCallerIdentity needs no permission.
"""

from __future__ import annotations

from typing import Any

from ..names import pipeline_name, source_rule_name, worker_name
from ..project import Project
from ..resources import codebuild, dns, iam
from ..resources import source as sources

S3_BUCKET_ACTIONS = [
    "s3:CreateBucket", "s3:DeleteBucket", "s3:ListBucket", "s3:ListBucketVersions",
    "s3:GetBucketLocation", "s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy",
    "s3:GetBucketWebsite", "s3:PutBucketWebsite", "s3:GetEncryptionConfiguration",
    "s3:PutEncryptionConfiguration", "s3:GetLifecycleConfiguration",
    "s3:PutLifecycleConfiguration", "s3:GetBucketTagging", "s3:PutBucketTagging",
    "s3:GetBucketVersioning", "s3:PutBucketVersioning", "s3:GetBucketPublicAccessBlock",
    "s3:PutBucketPublicAccessBlock",
]
S3_OBJECT_ACTIONS = [
    "s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject",
    "s3:DeleteObjectVersion",
]
LAMBDA_ACTIONS = [
    "lambda:CreateFunction", "lambda:DeleteFunction", "lambda:GetFunction",
    "lambda:GetFunctionConfiguration", "lambda:UpdateFunctionCode",
    "lambda:UpdateFunctionConfiguration", "lambda:PublishVersion",
    "lambda:ListVersionsByFunction", "lambda:CreateAlias", "lambda:GetAlias",
    "lambda:UpdateAlias", "lambda:DeleteAlias", "lambda:ListAliases", "lambda:AddPermission",
    "lambda:RemovePermission", "lambda:GetPolicy", "lambda:TagResource", "lambda:ListTags",
]
ROLE_ACTIONS = [
    "iam:CreateRole", "iam:DeleteRole", "iam:GetRole", "iam:UpdateAssumeRolePolicy",
    "iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy", "iam:ListRolePolicies",
    "iam:ListAttachedRolePolicies", "iam:DetachRolePolicy", "iam:ListRoleTags", "iam:TagRole",
]
PIPELINE_ACTIONS = [
    "codepipeline:CreatePipeline", "codepipeline:UpdatePipeline", "codepipeline:DeletePipeline",
    "codepipeline:GetPipeline", "codepipeline:GetPipelineState",
    "codepipeline:StartPipelineExecution", "codepipeline:ListTagsForResource",
    "codepipeline:TagResource", "codepipeline:DisableStageTransition",
    "codepipeline:EnableStageTransition",
]
CODEBUILD_ACTIONS = [
    "codebuild:CreateProject", "codebuild:UpdateProject", "codebuild:DeleteProject",
    "codebuild:BatchGetProjects",
]
TABLE_ACTIONS = [
    "dynamodb:CreateTable", "dynamodb:DescribeTable", "dynamodb:UpdateTable",
    "dynamodb:DeleteTable", "dynamodb:DescribeTimeToLive", "dynamodb:UpdateTimeToLive",
    "dynamodb:ListTagsOfResource", "dynamodb:TagResource",
]
APIGATEWAY_ACTIONS = [
    "apigateway:GET", "apigateway:POST", "apigateway:PUT", "apigateway:PATCH",
    "apigateway:DELETE",
]


def _statement(sid: str, actions: list[str], resources: list[str], **extra: Any) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources, **extra}


def operator_policy(project: Project) -> dict[str, Any]:
    """The policy document (IAM JSON) for this project's operator."""
    partition, region = project.aws.partition, project.region
    buckets = [project.artifact_bucket, *(project.site_bucket(env)
                                          for env in project.config.environments)]
    functions = [project.function_name]
    roles = [role.name for role in iam.roles(project)]
    if project.config.pipeline is not None:
        functions.append(worker_name(project))
    statements = [
        _statement("AccountWideListBucketsAndBlockPublicAccess",
                   ["s3:ListAllMyBuckets", "s3:GetAccountPublicAccessBlock"], ["*"]),
        _statement("Buckets", S3_BUCKET_ACTIONS,
                   [f"arn:{partition}:s3:::{b}" for b in buckets]),
        _statement("Objects", S3_OBJECT_ACTIONS,
                   [f"arn:{partition}:s3:::{b}/*" for b in buckets]),
        _statement("Functions", LAMBDA_ACTIONS, [
            arn for name in functions
            for arn in (project.arn("lambda", f"function:{name}"),
                        project.arn("lambda", f"function:{name}:*"))]),
        _statement("Roles", ROLE_ACTIONS, [project.role_arn(name) for name in roles]),
        _statement("PassRoles", ["iam:PassRole"], [project.role_arn(name) for name in roles],
                   Condition={"StringEquals": {"iam:PassedToService": _passed_to(project)}}),
        # API ids are chosen by AWS at creation: scoped to the REST APIs of this region.
        _statement("RestApi", APIGATEWAY_ACTIONS, [
            f"arn:{partition}:apigateway:{region}::/restapis",
            f"arn:{partition}:apigateway:{region}::/restapis/*",
            f"arn:{partition}:apigateway:{region}::/tags/*",
        ]),
    ]
    if project.config.tables:
        statements.append(_statement("Tables", TABLE_ACTIONS, [
            project.table_arn(env, key)
            for key in project.config.tables for env in project.config.environments]))
    if project.config.site is not None and project.config.site.hosting == "cloudfront":
        # Distributions, OACs, functions and stores get ids from AWS at creation; certificate
        # ARNs too. Scoped to the services, as the ids cannot be known beforehand.
        statements += [
            _statement("CloudFrontHosting", [
                f"cloudfront:{action}" for action in (
                    "CreateDistribution", "CreateDistributionWithTags", "GetDistribution",
                    "GetDistributionConfig", "UpdateDistribution", "DeleteDistribution",
                    "ListDistributions", "TagResource", "ListTagsForResource",
                    "CreateOriginAccessControl", "GetOriginAccessControl",
                    "UpdateOriginAccessControl", "DeleteOriginAccessControl",
                    "ListOriginAccessControls", "CreateFunction", "DescribeFunction",
                    "GetFunction", "UpdateFunction", "PublishFunction", "DeleteFunction",
                    "CreateKeyValueStore", "DescribeKeyValueStore", "DeleteKeyValueStore",
                )] + [
                f"cloudfront-keyvaluestore:{action}"
                for action in ("DescribeKeyValueStore", "GetKey", "PutKey")
            ], ["*"]),
            _statement("Certificates", [
                "acm:ListCertificates", "acm:DescribeCertificate", "acm:RequestCertificate",
                "acm:AddTagsToCertificate"], ["*"]),
            _statement("ValidationAndAliasRecords", ["route53:ChangeResourceRecordSets",
                                                     "route53:ListResourceRecordSets",
                                                     "route53:GetChange"], ["*"]),
        ]
    statements += _dns(project)
    statements += _pipeline(project)
    alarms = sorted({name for env in project.config.environments.values() for name in env.alarms})
    if alarms:
        statements.append(_statement("CanaryAlarms", ["cloudwatch:DescribeAlarms"], [
            project.arn("cloudwatch", f"alarm:{name}") for name in alarms]))
    return {"Version": "2012-10-17", "Statement": statements}


def _passed_to(project: Project) -> list[str]:
    services = ["lambda.amazonaws.com"]
    if project.config.pipeline is not None:
        services.append("codepipeline.amazonaws.com")
    if codebuild.enabled(project):
        services.append("codebuild.amazonaws.com")
    if project.config.pipeline is not None and project.config.pipeline.source.provider == "s3":
        services.append("events.amazonaws.com")  # the rule that starts the pipeline
    return services


def _dns(project: Project) -> list[dict[str, Any]]:
    names = sorted(dns.domains(project).values())
    if not names:
        return []
    partition = project.aws.partition
    zone = dns.find_zone(project, required=False)
    return [
        _statement("FindHostedZone", ["route53:ListHostedZonesByName"], ["*"]),
        _statement("DomainRecords", ["route53:ListResourceRecordSets",
                                     "route53:ChangeResourceRecordSets"],
                   [f"arn:{partition}:route53:::hostedzone/{zone or '*'}"]),
        _statement("RecordChanges", ["route53:GetChange"], [f"arn:{partition}:route53:::change/*"]),
    ]


def _pipeline(project: Project) -> list[dict[str, Any]]:
    pipeline = project.config.pipeline
    if pipeline is None:
        return []
    found = [_statement("Pipeline", PIPELINE_ACTIONS,
                        [project.arn("codepipeline", pipeline_name(project))])]
    if codebuild.enabled(project):
        found.append(
            _statement("BuildProject", CODEBUILD_ACTIONS, [codebuild.project_arn(project)]))
    source = pipeline.source
    if source.provider == "github" and not source.connection_arn:

        connections = project.arn(sources.CONNECTIONS, "connection/*")
        found.append(_statement("MakeConnection", [
            "codestar-connections:CreateConnection", "codestar-connections:ListConnections",
            "codestar-connections:GetConnection", "codestar-connections:TagResource",
            "codestar-connections:PassConnection"], [connections]))
    if source.provider == "s3":

        found.append(_statement("SourceEvents", [
            "events:DescribeRule", "events:PutRule", "events:ListTargetsByRule",
            "events:PutTargets", "events:RemoveTargets", "events:DeleteRule",
            "events:TagResource"], [project.arn("events", f"rule/{source_rule_name(project)}")]))
        found.append(_statement("SourceBucketEvents", [
            "s3:GetBucketNotification", "s3:PutBucketNotification"],
            [f"arn:{project.aws.partition}:s3:::{source.bucket}"]))
    if source.connection_arn:
        # CreatePipeline and UpdatePipeline pass the connection to CodePipeline.
        found.append(_statement("SourceConnection", ["codestar-connections:PassConnection",
                                                     "codeconnections:PassConnection"],
                                [source.connection_arn]))
    if source.token:
        kind, where = source.token.split(":", 1)
        if kind == "ssm":
            arn = project.arn("ssm", f"parameter/{where.lstrip('/')}")
            found.append(_statement("SourceToken", ["ssm:GetParameter"], [arn]))
        else:
            # A secret's ARN ends in a random suffix after its name.
            arn = where if where.startswith("arn:") else project.arn(
                "secretsmanager", f"secret:{where}-*")
            found.append(_statement("SourceToken", ["secretsmanager:GetSecretValue"], [arn]))
    return found
