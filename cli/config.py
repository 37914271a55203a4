"""sdeliver.yaml: a validated, typed model, and errors that name the file, line and key.

Loading never raises anything but `ConfigError` (exit 2): malformed YAML, unknown keys,
wrong types, impossible values, unreadable or oversized files all end in one message.
"""

from __future__ import annotations

import difflib
import re
import typing
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigError, UsageError
from .yamlsafe import YamlProblem, compose, construct

DEFAULT_CONFIG_NAME = "sdeliver.yaml"
MAX_CONFIG_BYTES = 1024 * 1024

HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
RESERVED_ENV_KEYS = {
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
}


def _relative_path(value: Any) -> Any:
    """A path inside the project directory: relative, no `..` escaping it."""
    if not isinstance(value, str) or not value.strip():
        return value  # let the type check say what is wrong
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    path = PurePosixPath(value.replace("\\", "/"))
    if path.is_absolute() or re.match(r"^[A-Za-z]:", value):
        raise ValueError(f"must be a path relative to the project directory, not {value!r}")
    depth = 0
    for part in path.parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            raise ValueError(f"must stay inside the project directory, {value!r} leaves it")
    return value


def _scalar_to_str(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


RelPath = Annotated[str, BeforeValidator(_relative_path)]
ENV_LIMIT_BYTES = 4096
EnvValue = Annotated[str, BeforeValidator(_scalar_to_str)]
Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$")]
# An environment's name is part of S3 bucket names (a-z 0-9 . - only), Lambda alias and
# API stage names; "." is left out because it breaks virtual-host TLS to a bucket.
EnvName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,19}$")]
ENV_NAME_RULE = "lowercase letters, digits and '-', starting with a letter, at most 20 characters"


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


# -- app resources ---------------------------------------------------------------------------

# A table's key in sdeliver.yaml: part of the table's name (<app>-<env>-<key>) and of its
# stage variable (TABLE_<KEY>, '-' as '_'), so '_' is left out: `a-b` and `a_b` would clash.
TableKeyName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,39}$")]
IndexName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{3,255}$")]
# API Gateway's rules for stage variables: names [A-Za-z0-9_], values from this set, 512 max.
STAGE_VARIABLE_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
STAGE_VARIABLE_VALUE = re.compile(r"^[A-Za-z0-9\-._~:/?#&=,]{1,512}$")
STAGE_VARIABLE_RESERVED = "alias"  # selects the function alias; sdeliver sets it
# An action names one service and one operation (`s3:GetObject`) or a prefix of some
# (`s3:Get*`); `*` alone or a whole service (`s3:*`) is refused.
IAM_ACTION = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9]+\*?$")


class TableAttribute(Model):
    name: Annotated[str, Field(min_length=1, max_length=255)]
    type: Literal["S", "N", "B"] = "S"


class TableIndex(Model):
    """A global secondary index, projecting every attribute."""

    key: TableAttribute
    sort_key: TableAttribute | None = None


class Table(Model):
    """A DynamoDB table per environment, on-demand billing, named <app>-<env>-<key>."""

    key: TableAttribute
    sort_key: TableAttribute | None = None
    ttl: Annotated[str, Field(min_length=1, max_length=255)] | None = Field(
        default=None, description="The attribute holding each item's expiry (epoch seconds)."
    )
    stream: Literal["KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"] | None = Field(
        default=None, description="The DynamoDB stream's view type; none without it."
    )
    indexes: dict[IndexName, TableIndex] = Field(
        default_factory=dict, description="Global secondary indexes (projection ALL)."
    )

    @model_validator(mode="after")
    def _attribute_types(self) -> Table:
        """One attribute, one type: DynamoDB refuses a table whose definitions disagree."""
        if self.sort_key is not None and self.sort_key.name == self.key.name:
            raise ValueError("sort_key must differ from key")
        seen: dict[str, str] = {}
        keys = [self.key, self.sort_key]
        keys += [k for index in self.indexes.values() for k in (index.key, index.sort_key)]
        for attribute in keys:
            if attribute is None:
                continue
            if seen.setdefault(attribute.name, attribute.type) != attribute.type:
                raise ValueError(f"attribute {attribute.name!r} is declared as both "
                                 f"{seen[attribute.name]} and {attribute.type}")
        return self


class Permission(Model):
    """An extra statement for the function's execution role (an Allow)."""

    sid: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,100}$")] | None = None
    actions: list[str] = Field(min_length=1)
    resources: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    allow_any_resource: bool = Field(
        default=False,
        description="Let resources be '*': only for actions AWS cannot scope to a resource "
        "(xray:PutTraceSegments, cloudwatch:PutMetricData ...).",
    )
    condition: dict[str, dict[str, Any]] | None = None

    @field_validator("actions")
    @classmethod
    def _actions(cls, value: list[str]) -> list[str]:
        for action in value:
            if action == "*" or action.endswith(":*"):
                raise ValueError(f"action {action!r} allows every action of a service; "
                                 "name the actions the function calls")
            if not IAM_ACTION.match(action):
                raise ValueError(f"action {action!r} is not service:Operation")
        return value

    @model_validator(mode="after")
    def _resources(self) -> Permission:
        for resource in self.resources:
            if resource != "*" and not resource.startswith("arn:"):
                raise ValueError(f"resource {resource!r} is not an ARN (or '*')")
            if resource == "*" and not self.allow_any_resource:
                raise ValueError("resource '*' needs allow_any_resource: true (only for "
                                 "actions AWS cannot scope to a resource)")
        return self


def _stage_variables(value: dict[str, str]) -> dict[str, str]:
    for key, item in value.items():
        if not STAGE_VARIABLE_NAME.match(key):
            raise ValueError(f"variable name {key!r} is not valid: letters, digits and '_'")
        if key == STAGE_VARIABLE_RESERVED:
            raise ValueError(f"variable {key!r} is set by sdeliver (it selects the alias)")
        if not STAGE_VARIABLE_VALUE.match(item):
            raise ValueError(f"variable {key}'s value is not valid for a stage variable: "
                             "1 to 512 of letters, digits and - . _ ~ : / ? # & = ,")
    return value


class Function(Model):
    name: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = None
    runtime: Annotated[
        str, Field(pattern=r"^(python|nodejs|java|dotnet|ruby|provided)[0-9a-z.]*$")
    ] = "python3.12"
    handler: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\s]+$")] = (
        "app.handler"
    )
    source: RelPath = "app/"
    memory: Annotated[int, Field(ge=128, le=10240)] = 128
    timeout: Annotated[int, Field(ge=1, le=900)] = 10
    architecture: Literal["x86_64", "arm64"] = "x86_64"
    environment: dict[str, EnvValue] = Field(default_factory=dict)
    secrets: list[str] = Field(
        default_factory=list,
        description="Names of `environment` keys whose values are never printed or recorded.",
    )
    permissions: list[Permission] = Field(
        default_factory=list,
        description="Extra statements for the execution role (test and prod share it).",
    )

    @field_validator("environment")
    @classmethod
    def _env_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not re.match(r"^[A-Za-z][A-Za-z0-9_]*$", key):
                raise ValueError(f"environment variable name {key!r} is not valid")
            if key in RESERVED_ENV_KEYS:
                raise ValueError(f"environment variable {key!r} is reserved by Lambda")
        # Lambda refuses more than 4 KB of variables with an error that echoes them all,
        # secrets included: refuse first, naming no value.
        size = sum(len(k.encode()) + len(v.encode()) for k, v in value.items())
        if size > ENV_LIMIT_BYTES:
            raise ValueError(f"environment variables total {size} bytes; Lambda allows "
                             f"{ENV_LIMIT_BYTES} (4 KB) for all names and values together")
        return value

    @model_validator(mode="after")
    def _secrets_declared(self) -> Function:
        unknown = [s for s in self.secrets if s not in self.environment]
        if unknown:
            raise ValueError(f"secrets names keys missing from environment: {', '.join(unknown)}")
        return self

    def settings(self) -> dict[str, Any]:
        """The declared settings a published Lambda version snapshots, in sdeliver.yaml's
        names (the role is derived from the app, not declared)."""
        return {
            "runtime": self.runtime,
            "handler": self.handler,
            "memory": self.memory,
            "timeout": self.timeout,
            "environment": dict(self.environment),
        }


ORIGIN = r"^(\*|https?://[^\s/]+)$"


class Cors(Model):
    """Cross-origin access to the API (browsers on the site's origin calling execute-api)."""

    origins: list[Annotated[str, Field(pattern=ORIGIN)]] | None = Field(
        default=None,
        description="Origins allowed to call the API (scheme://host[:port], or '*'); "
        "default: every environment's site origin.",
    )
    methods: list[Annotated[str, Field(pattern=r"^[A-Z]+$")]] = Field(
        default_factory=lambda: ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    )
    headers: list[Annotated[str, Field(pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")]] = Field(
        default_factory=lambda: ["Content-Type", "Authorization", "X-Api-Key",
                                 "X-Amz-Date", "X-Amz-Security-Token"]
    )
    max_age: int = Field(default=600, ge=0, le=86400)


class Api(Model):
    name: Annotated[str | None, Field(min_length=1, max_length=128)] = None
    openapi: RelPath | None = None
    description: str = "managed by sdeliver"
    cors: Cors | None = None
    allow_foreign_integrations: bool = Field(
        default=False,
        description="Deploy operations whose own integration names another account or "
        "region, or stage variables sdeliver does not set (refused by default).",
    )


class Site(Model):
    source: RelPath = "site/"
    hosting: Literal["s3-website", "cloudfront"] = Field(
        default="s3-website",
        description="s3-website: a public website bucket, plain HTTP. cloudfront: HTTPS through "
        "a CloudFront distribution per environment (ACM certificate, private bucket, /api/* "
        "to the API, each release under its own prefix, switched in one write).",
    )
    retention: int = Field(
        default=10, ge=1, le=1000,
        description="cloudfront hosting: how many releases' sites each environment's bucket "
        "keeps under releases/ (the live one and those rollback goes back to first); older "
        "ones are removed after a successful release. A rollback to a removed one uploads it "
        "again from the artifact bucket.",
    )
    config: dict[str, Any] = Field(default_factory=dict)

    @field_validator("config")
    @classmethod
    def _reserved(cls, value: dict[str, Any]) -> dict[str, Any]:
        taken = sorted({"apiBaseurl", "version", "env", "release"} & set(value))
        if taken:
            raise ValueError(f"keys {', '.join(taken)} are written by sdeliver; remove them")
        return value


class Build(Model):
    commands: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    timeout: int = Field(
        default=900, ge=1, le=86400,
        description="Seconds each build command may run before it is stopped (default 15 min).",
    )


class Environment(Model):
    domain: str | None = None
    e2e: Annotated[str, Field(min_length=1)] | None = None
    e2e_timeout: int = Field(
        default=1800, ge=1, le=86400,
        description="Seconds the e2e command may run before it is stopped and fails (30 min).",
    )
    alarms: list[str] = Field(
        default_factory=list, description="CloudWatch alarms that stop a canary when in ALARM."
    )
    site_url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$")] | None = Field(
        default=None,
        description="The site's URL for status and e2e, where sdeliver cannot derive it "
        "(an emulator it does not know); not used with --local.",
    )
    variables: dict[str, EnvValue] = Field(
        default_factory=dict,
        description="Stage variables of this environment's stage (event.stageVariables), "
        "beside alias and TABLE_<NAME> which sdeliver sets.",
    )

    @field_validator("variables")
    @classmethod
    def _variables(cls, value: dict[str, str]) -> dict[str, str]:
        return _stage_variables(value)

    @field_validator("domain")
    @classmethod
    def _hostname(cls, value: str | None) -> str | None:
        if value is not None:
            value = value.rstrip(".").lower()
            if not HOSTNAME.match(value):
                raise ValueError(f"{value!r} is not a valid DNS name")
            if len(value) > 63:  # the site bucket is named after the domain
                raise ValueError(f"{value!r} is longer than 63 characters, S3's limit for a "
                                 "bucket name (the site bucket is named after the domain)")
        return value


class Dns(Model):
    zone: str
    website_zone_id: Annotated[str, Field(pattern=r"^Z[A-Z0-9]{4,31}$")] | None = Field(
        default=None,
        description="The Route53 hosted zone id of the region's S3 website endpoint, when "
        "AWS's table (Amazon S3 website endpoints) differs from the one sdeliver knows.",
    )

    @field_validator("zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        value = value.rstrip(".").lower()
        if not HOSTNAME.match(value):
            raise ValueError(f"{value!r} is not a valid DNS zone name")
        return value


class PipelineSource(Model):
    provider: Literal["github", "github-oauth", "s3"] = "github"
    repo: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")] | None = None
    branch: Annotated[str, Field(min_length=1)] = "main"
    connection_arn: (
        Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:(codestar-connections|codeconnections):")]
        | None
    ) = None
    token: Annotated[str, Field(pattern=r"^(ssm|secretsmanager):.+$")] | None = Field(
        default=None,
        description="Where the GitHub OAuth token is kept: ssm:/param/name or secretsmanager:name.",
    )
    bucket: str | None = None
    key: str | None = None

    @model_validator(mode="after")
    def _provider_fields(self) -> PipelineSource:
        needed = {
            "github": ("repo",),  # without connection_arn, init creates a connection
            "github-oauth": ("repo", "token"),
            "s3": ("bucket", "key"),
        }[self.provider]
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(f"provider {self.provider} needs {' and '.join(missing)}")
        return self


class PipelineCodeBuild(Model):
    """The CodeBuild project Commit and EndToEnd run in (`pipeline.build: codebuild`, the
    default)."""

    image: Annotated[str, Field(pattern=r"^[^\s]{1,255}$")] = Field(
        default="aws/codebuild/standard:7.0",
        description="A CodeBuild image with Python >= 3.10 (an aarch64 image runs on ARM).",
    )
    compute_type: Literal[
        "BUILD_GENERAL1_SMALL",
        "BUILD_GENERAL1_MEDIUM",
        "BUILD_GENERAL1_LARGE",
        "BUILD_GENERAL1_XLARGE",
        "BUILD_GENERAL1_2XLARGE",
    ] = "BUILD_GENERAL1_SMALL"
    timeout: Annotated[int, Field(ge=5, le=2160)] = Field(
        default=60, description="Minutes a build may run before CodeBuild stops it."
    )


class Pipeline(Model):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9.@_-]{1,100}$")] | None = None
    source: PipelineSource
    approval: bool = False
    build: Literal["lambda", "codebuild"] = Field(
        default="codebuild",
        description="Where Dependencies, BuildAndPackage and EndToEnd (the steps that run "
        "the project's commands) run: a CodeBuild project sdeliver creates (the default: "
        "pip, pytest, npm, node), or the sdeliver worker function (lambda: Python only, "
        "512 MB of /tmp).",
    )
    codebuild: PipelineCodeBuild | None = None

    @model_validator(mode="after")
    def _codebuild_settings(self) -> Pipeline:
        if self.build == "codebuild" and self.codebuild is None:
            self.codebuild = PipelineCodeBuild()
        elif self.build != "codebuild" and self.codebuild is not None:
            raise ValueError("codebuild: settings apply only with build: codebuild")
        return self


class Artifacts(Model):
    bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")] | None = None


class Config(Model):
    app: Name
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")] = "us-east-1"
    function: Function = Field(default_factory=Function)
    api: Api = Field(default_factory=Api)
    site: Site | None = Field(default_factory=Site)
    build: Build = Field(default_factory=Build)
    environments: dict[EnvName, Environment] = Field(min_length=1)
    dns: Dns | None = None
    pipeline: Pipeline | None = None
    artifacts: Artifacts = Field(default_factory=Artifacts)
    tables: dict[TableKeyName, Table] = Field(
        default_factory=dict,
        description="DynamoDB tables, one per environment, named <app>-<env>-<name>.",
    )

    # Where the file was read from; not part of the document.
    _path: Path = Path(DEFAULT_CONFIG_NAME)

    @model_validator(mode="after")
    def _defaults(self) -> Config:
        if self.function.name is None:
            self.function.name = f"{self.app}-app"
        if self.api.name is None:
            self.api.name = self.app
        if self.pipeline is not None and self.pipeline.name is None:
            self.pipeline.name = f"{self.app}-delivery"
        return self

    @property
    def path(self) -> Path:
        return self._path

    @property
    def project_dir(self) -> Path:
        return self._path.parent

    @property
    def function_name(self) -> str:
        assert self.function.name is not None  # filled by _defaults
        return self.function.name

    @property
    def api_name(self) -> str:
        assert self.api.name is not None
        return self.api.name

    def resolve(self, relative: str) -> Path:
        return (self.project_dir / relative).resolve()

    def env(self, name: str) -> Environment:
        if name not in self.environments:
            known = ", ".join(self.environments)
            raise UsageError(f"unknown environment {name!r}: {self.path.name} declares {known}")
        return self.environments[name]

    @property
    def first_env(self) -> str:
        return next(iter(self.environments))

    def dump(self) -> dict[str, Any]:
        """The resolved configuration for people and scripts: secrets shown as "(secret)"."""
        document = self.model_dump(mode="json")
        environment = document["function"]["environment"]
        for key in self.function.secrets:
            environment[key] = "(secret)"
        return document


# -- loading -------------------------------------------------------------------------------


class _Lines:
    """Maps a key path to the line it stands on, from the composed YAML node tree."""

    def __init__(self) -> None:
        self.lines: dict[tuple[str, ...], int] = {}

    def walk(self, node: yaml.Node, path: tuple[str, ...]) -> None:
        """`node` is within the node budget (yamlsafe.compose), aliases and all."""
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                child = (*path, key)
                if key in seen:
                    raise _located(child, key_node.start_mark.line + 1, "duplicate key")
                seen.add(key)
                self.lines[child] = key_node.start_mark.line + 1
                self.walk(value_node, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.walk(item, (*path, str(index)))

    def line_of(self, path: tuple[str, ...]) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())


class _LocatedError(Exception):
    def __init__(self, path: tuple[str, ...], line: int | None, message: str) -> None:
        self.path, self.line, self.message = path, line, message


def _located(path: tuple[str, ...], line: int | None, message: str) -> _LocatedError:
    return _LocatedError(path, line, message)


def _where(file: Path, line: int | None) -> str:
    return f"{file}:{line}" if line else str(file)


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: {size} bytes is too large for a configuration file")
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such file",
            hint="run 'sdeliver init' to write one, or pass --config PATH",
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a configuration file") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read: {err.strerror or err}") from None
    if b"\x00" in data:
        raise ConfigError(f"{path}: is a binary file, not YAML")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: is not UTF-8 text (byte {err.start})") from None


def _message(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid value"))
    if err.get("type") == "extra_forbidden":
        return "unknown key"
    if err.get("type") == "missing":
        return "is required"
    loc = tuple(err.get("loc") or ())
    if err.get("type") == "string_pattern_mismatch" and loc[::2] == ("environments", "[key]"):
        return f"{err.get('input')!r} is not a valid environment name: {ENV_NAME_RULE}"
    if err.get("type") == "string_pattern_mismatch":
        pattern = (err.get("ctx") or {}).get("pattern", "")
        return f"{err.get('input')!r} is not valid here (must match {pattern})"
    return msg.removeprefix("Value error, ")


def _suggestion(loc: tuple[str, ...], err: dict[str, Any]) -> str:
    """' (did you mean 'memory'?)' for an unknown key close to a key its section knows."""
    if err.get("type") != "extra_forbidden" or not loc:
        return ""

    def is_model(value: Any) -> bool:
        return isinstance(value, type) and issubclass(value, BaseModel)

    def unwrap(annotation: Any) -> Any:  # Site | None -> Site
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if not is_model(annotation) and len(args) == 1 else annotation

    section: Any = Config
    for part in loc[:-1]:
        section = unwrap(section)
        if is_model(section):
            field = section.model_fields.get(part)
            section = field.annotation if field is not None else None
        else:  # dict[str, Environment]: this part is the key
            args = typing.get_args(section)
            section = args[-1] if args else None
    section = unwrap(section)
    if not is_model(section):
        return ""
    known = [field.alias or name for name, field in section.model_fields.items()]
    close = difflib.get_close_matches(loc[-1], known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse_config(text: str, path: Path) -> Config:
    """Validate one YAML document; every problem is a `ConfigError` naming file:line and key."""
    try:
        node = compose(text)
    except YamlProblem as err:
        raise ConfigError(f"{_where(path, err.line)}: {err.message}") from None
    if node is None:
        raise ConfigError(f"{path}: is empty; it must declare at least app and environments")
    lines = _Lines()
    try:
        lines.walk(node, ())
        data = construct(node)
    except _LocatedError as err:
        raise ConfigError(
            f"{_where(path, err.line)}: {'.'.join(err.path)}: {err.message}"
        ) from None
    except RecursionError:
        raise ConfigError(f"{path}: the document nests too deeply") from None
    except YamlProblem as err:
        raise ConfigError(f"{_where(path, err.line)}: {err.message}") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{_where(path, 1)}: the document must be a mapping of keys, not a "
            f"{type(data).__name__}"
        )
    try:
        config = Config.model_validate(data)
    except ValidationError as err:
        found = []
        for each in err.errors():
            loc = tuple(str(part) for part in each["loc"] if part != "[key]")
            key = ".".join(loc) or "(document)"
            message = _message(dict(each)) + _suggestion(loc, dict(each))
            found.append(f"{_where(path, lines.line_of(loc))}: {key}: {message}")
        if len(found) == 1:
            raise ConfigError(found[0]) from None
        # Every error, one per line: fixing them one run at a time is a slow loop.
        raise ConfigError(f"{path}: {len(found)} errors:\n  " + "\n  ".join(found)) from None
    except RecursionError:
        raise ConfigError(f"{path}: the document nests too deeply") from None
    config._path = path
    _check_semantics(config, lines, path)
    return config


def _check_semantics(config: Config, lines: _Lines, path: Path) -> None:
    """Rules that span keys: each error still points at the key to change."""

    def fail(loc: tuple[str, ...], message: str) -> None:
        raise ConfigError(f"{_where(path, lines.line_of(loc))}: {'.'.join(loc)}: {message}")

    seen: dict[str, str] = {}
    for name, env in config.environments.items():
        if env.domain is None:
            continue
        loc = ("environments", name, "domain")
        if env.domain in seen:
            fail(loc, f"{env.domain} is already the domain of environment {seen[env.domain]}")
        seen[env.domain] = name
        if config.dns is None:
            fail(loc, "a domain needs dns.zone (the hosted zone its record goes in)")
        elif not (env.domain == config.dns.zone or env.domain.endswith("." + config.dns.zone)):
            fail(loc, f"{env.domain} is not inside dns.zone {config.dns.zone}")
    table_variables = {table_variable(name) for name in config.tables}
    for name, env in config.environments.items():
        for key in env.variables:
            if key in table_variables:
                fail(("environments", name, "variables", key),
                     "is set by sdeliver to the name of a table declared in tables")
    if config.site is not None and config.site.hosting == "cloudfront":
        for name, env in config.environments.items():
            if env.domain is None:
                fail(("environments", name), "site.hosting cloudfront needs a domain in every "
                     "environment (its certificate and distribution alias)")
    if config.site is not None and config.function.source.rstrip("/") == config.site.source.rstrip(
        "/"
    ):
        fail(("site", "source"), "must not be the same directory as function.source")


def table_variable(name: str) -> str:
    """The stage variable that carries a table's name: TABLE_<NAME>, '-' as '_'."""
    return "TABLE_" + name.upper().replace("-", "_")


def load_config(path: Path | str) -> Config:
    path = Path(path)
    return parse_config(_read_text(path), path)


def json_schema() -> dict[str, Any]:
    schema = Config.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "sdeliver.yaml"
    return schema
