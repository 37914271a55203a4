"""The names sdeliver derives for what it makes in AWS, where more than one module needs
them (and what AWS fixes: the S3 website endpoints and their hosted zones).

`Project` derives the names of one app's core resources (buckets, function, API, roles of
the function, tables); this module the region tables and the pipeline's names, so that the
modules that make, grant or wait for a resource agree on its name without importing
each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .errors import OperationFailed

if TYPE_CHECKING:
    from .project import Project

CLOUDFRONT_ZONE_ID = "Z2FDTNDATAQYW2"  # every CloudFront distribution's alias target zone

# S3 website endpoints and the Route53 hosted zone of each, for alias records. AWS publishes
# this table (General Reference, "Amazon S3 website endpoints":
# https://docs.aws.amazon.com/general/latest/gr/s3.html#s3_website_region_endpoints); no API
# returns it. The oldest regions use a dash before the region, all the others a dot.
# af-south-1 and eu-south-1 follow that table (Z83WF9RJE8B12, Z30OZKI7KPW7MI), as
# Terraform's AWS provider does; some libraries carry other ids. `dns.website_zone_id` in
# sdeliver.yaml overrides a region's id.
WEBSITE_ZONES: dict[str, tuple[str, str]] = {
    "us-east-1": ("s3-website-us-east-1.amazonaws.com", "Z3AQBSTGFYJSTF"),
    "us-east-2": ("s3-website.us-east-2.amazonaws.com", "Z2O1EMRO9K5GLX"),
    "us-west-1": ("s3-website-us-west-1.amazonaws.com", "Z2F56UZL2M1ACD"),
    "us-west-2": ("s3-website-us-west-2.amazonaws.com", "Z3BJ6K6RIION7M"),
    "af-south-1": ("s3-website.af-south-1.amazonaws.com", "Z83WF9RJE8B12"),
    "ap-east-1": ("s3-website.ap-east-1.amazonaws.com", "ZNB98KWMFR0R6"),
    "ap-south-1": ("s3-website.ap-south-1.amazonaws.com", "Z11RGJOFQNVJUP"),
    "ap-south-2": ("s3-website.ap-south-2.amazonaws.com", "Z02976202B4EZMXIPMXF7"),
    "ap-northeast-1": ("s3-website-ap-northeast-1.amazonaws.com", "Z2M4EHUR26P7ZW"),
    "ap-northeast-2": ("s3-website.ap-northeast-2.amazonaws.com", "Z3W03O7B5YMIYP"),
    "ap-northeast-3": ("s3-website.ap-northeast-3.amazonaws.com", "Z2YQB5RD63NC85"),
    "ap-southeast-1": ("s3-website-ap-southeast-1.amazonaws.com", "Z3O0J2DXBE1FTB"),
    "ap-southeast-2": ("s3-website-ap-southeast-2.amazonaws.com", "Z1WCIGYICN2BYD"),
    "ap-southeast-3": ("s3-website.ap-southeast-3.amazonaws.com", "Z01846753K324LI26A3VV"),
    "ap-southeast-4": ("s3-website.ap-southeast-4.amazonaws.com", "Z0312387243XT5FE14WFO"),
    "ap-southeast-5": ("s3-website.ap-southeast-5.amazonaws.com", "Z08660063OXLMA7F1FJHU"),
    "ca-central-1": ("s3-website.ca-central-1.amazonaws.com", "Z1QDHH18159H29"),
    "ca-west-1": ("s3-website.ca-west-1.amazonaws.com", "Z03565811Z33SLEZTHOUL"),
    "eu-central-1": ("s3-website.eu-central-1.amazonaws.com", "Z21DNDUVLTQW6Q"),
    "eu-central-2": ("s3-website.eu-central-2.amazonaws.com", "Z030506016YDQGETNASS"),
    "eu-west-1": ("s3-website-eu-west-1.amazonaws.com", "Z1BKCTXD74EZPE"),
    "eu-west-2": ("s3-website.eu-west-2.amazonaws.com", "Z3GKZC51ZF0DB4"),
    "eu-west-3": ("s3-website.eu-west-3.amazonaws.com", "Z3R1K369G5AVDG"),
    "eu-north-1": ("s3-website.eu-north-1.amazonaws.com", "Z3BAZG2TWCNX0D"),
    "eu-south-1": ("s3-website.eu-south-1.amazonaws.com", "Z30OZKI7KPW7MI"),
    "eu-south-2": ("s3-website.eu-south-2.amazonaws.com", "Z0081959F7139GRJC19J"),
    "il-central-1": ("s3-website.il-central-1.amazonaws.com", "Z09640613K4A3MN55U7GU"),
    "me-central-1": ("s3-website.me-central-1.amazonaws.com", "Z06143092I8HRXZRUZROF"),
    "me-south-1": ("s3-website.me-south-1.amazonaws.com", "Z1MPMWCPA7YB62"),
    "sa-east-1": ("s3-website-sa-east-1.amazonaws.com", "Z7KQH4QJS55SO"),
    "us-gov-east-1": ("s3-website.us-gov-east-1.amazonaws.com", "Z2NIFVYYW2VKV1"),
    "us-gov-west-1": ("s3-website-us-gov-west-1.amazonaws.com", "Z31GFT0UA1I2HV"),
    "cn-north-1": ("s3-website.cn-north-1.amazonaws.com.cn", "Z5CN8UMXT92WN"),
    "cn-northwest-1": ("s3-website.cn-northwest-1.amazonaws.com.cn", "Z282HJ1KT0DH03"),
}


def website_zone(region: str) -> tuple[str, str]:
    """(endpoint host, Route53 hosted zone id) of the S3 website endpoint of a region."""
    try:
        return WEBSITE_ZONES[region]
    except KeyError:
        raise OperationFailed(
            f"sdeliver does not know the S3 website endpoint of region {region}",
            hint="deploy to a region listed in AWS's 'Amazon S3 website endpoints' table",
        ) from None


def website_endpoint(bucket: str, region: str) -> str:
    """The host that serves a bucket's website, e.g. b.s3-website-us-east-1.amazonaws.com."""
    return f"{bucket}.{website_zone(region)[0]}"


def localstack_website(bucket: str, endpoint_url: str) -> str:
    """LocalStack serves a website bucket at <bucket>.s3-website.localhost.localstack.cloud, on
    the endpoint's port (the name resolves to 127.0.0.1)."""
    port = urlsplit(endpoint_url).port or 4566
    return f"http://{bucket}.s3-website.localhost.localstack.cloud:{port}/"


# -- the pipeline ----------------------------------------------------------------------------


def pipeline_name(project: Project) -> str:
    assert project.config.pipeline is not None and project.config.pipeline.name is not None
    return project.config.pipeline.name


def pipeline_role_name(project: Project) -> str:
    return f"{project.app}-pipeline"[:64]


def worker_name(project: Project) -> str:
    return f"{project.app}-pipeline-worker"[:64]


def worker_role_name(project: Project) -> str:
    return f"{project.app}-pipeline-worker"[:64]


def codebuild_name(project: Project) -> str:
    return f"{project.app}-pipeline-build"[:255]


def codebuild_role_name(project: Project) -> str:
    return f"{project.app}-pipeline-build"[:64]


def connection_name(project: Project) -> str:
    return f"{project.app}-github"[:32]  # AWS: at most 32 characters


def source_rule_name(project: Project) -> str:
    return f"{project.app}-pipeline-source"[:64]


def events_role_name(project: Project) -> str:
    return f"{project.app}-pipeline-events"[:64]


def pipeline_role_names(project: Project) -> list[str]:
    """The roles the pipeline's runs assume (its own, the worker's, CodeBuild's, the S3
    source's events role), as declared in sdeliver.yaml."""
    pipeline = project.config.pipeline
    if pipeline is None:
        return []
    names = [pipeline_role_name(project), worker_role_name(project)]
    if pipeline.build == "codebuild":
        names.append(codebuild_role_name(project))
    if pipeline.source.provider == "s3":
        names.append(events_role_name(project))
    return names
