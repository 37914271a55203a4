"""The one place that talks to AWS: session, clients, retries, waiters, error translation.

Nothing else in sdeliver imports boto3 or handles botocore exceptions. Every call goes
through `Aws.call` (or `paginate` / `wait`), which counts it (reads vs writes, for
`-v` and the benchmarks), retries what eventual consistency makes transient, and turns
whatever AWS answers into an `AwsError` whose one line names the operation, the resource
and what to do.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import boto3
import botocore.config
import botocore.exceptions
import botocore.loaders
from botocore.parsers import ResponseParserError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from ..errors import AwsError, ConfigError

READ_PREFIXES = (
    "Get", "List", "Describe", "Head", "Lookup", "Search", "Test", "Select", "BatchGet",
)

ACCESS_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
}

# Codes that mean "what you asked for is not there"; callers pass `missing=` to get None.
NOT_FOUND = {
    "NoSuchBucket",
    "NoSuchKey",
    "NotFound",
    "404",
    "NoSuchEntity",
    "ResourceNotFoundException",
    "NoSuchHostedZone",
    "NoSuchBucketPolicy",
    "NoSuchWebsiteConfiguration",
    "NoSuchPublicAccessBlockConfiguration",
    "ServerSideEncryptionConfigurationNotFoundError",
    "NoSuchTagSet",
    "PipelineNotFoundException",
    "NotFoundException",  # API Gateway
}

# What an emulator answers for a service (or an operation) it does not offer. LocalStack
# (InternalFailure, HTTP 501): "The API for service codepipeline is either not included in
# your current license plan or has not yet been emulated by LocalStack", before 4.4 "API
# for service 'codepipeline' not yet implemented or pro feature".
NOT_OFFERED = "NotOffered"
NOT_OFFERED_SIGNS = (
    "not included in your current license plan",
    "not available in your current license plan",
    "not yet been emulated",
    "not yet implemented or pro feature",
)
# Services only the pipeline uses: leaving the pipeline out leaves them alone.
PIPELINE_SERVICES = {"codepipeline", "codebuild", "codestar-connections", "codeconnections"}
SKIP_PIPELINE_HINT = (
    "leave the pipeline out for this endpoint: pass --skip pipeline to init, reconcile and "
    "destroy (or set SDELIVER_SKIP=pipeline); LocalStack Pro or AWS offer it"
)
LOCALSTACK = "localstack"
LOCALSTACK_HEALTH = "/_localstack/health"

# Eventual consistency, retried with jitter on top of botocore's own retries.
IAM_PROPAGATION = "iam-propagation"
FUNCTION_BUSY = "function-busy"
APIGW_BUSY = "apigw-busy"
PIPELINE_ROLE_PROPAGATION = "pipeline-role-propagation"
CODEBUILD_ROLE_PROPAGATION = "codebuild-role-propagation"


def _is_iam_propagation(code: str, message: str) -> bool:
    return code == "InvalidParameterValueException" and (
        "cannot be assumed" in message
        or ("role" in message.lower() and "assume" in message.lower())
    )


TRANSIENT: dict[str, Callable[[str, str], bool]] = {
    IAM_PROPAGATION: _is_iam_propagation,
    FUNCTION_BUSY: lambda code, message: (
        code in {"ResourceConflictException"}
        and ("in progress" in message or "update" in message.lower())
    ),
    APIGW_BUSY: lambda code, message: code in {"TooManyRequestsException", "ConflictException"},
    # A role created moments ago: CodePipeline cannot assume it yet.
    PIPELINE_ROLE_PROPAGATION: lambda code, message: (
        code == "InvalidStructureException" and "AssumeRole" in message
    ),
    # The same for CodeBuild: "CodeBuild is not authorized to perform: sts:AssumeRole".
    CODEBUILD_ROLE_PROPAGATION: lambda code, message: (
        code == "InvalidInputException" and "sts:AssumeRole" in message
    ),
}


# One loader of botocore's service models for every session of this process: a new
# session would read and parse each service's JSON model again (about 0.1 s a client),
# which a process making several Aws objects (the pipeline worker, the tests) pays each time.
_MODELS = botocore.loaders.create_loader()


# Attempts at a call whose connection failed (refused, unknown host, connect timeout):
# botocore's standard mode would make `max_attempts` (10) with backoff, 24-36 s before
# saying that an endpoint is unreachable. Throttling and 5xx keep all their attempts.
CONNECT_ATTEMPTS = 3
CONNECT_TIMEOUT = 5

# What a server that is not AWS (or an AWS emulator) answers makes botocore fail to parse:
# ResponseParserError (not a BotoCoreError), or a KeyError for a well-formed page.
NOT_AN_AWS_ANSWER = (ResponseParserError, KeyError)


def _fail_fast_on_connection_errors(
    attempts: int, caught_exception: Exception | None = None, **_: Any
) -> None:
    """A needs-retry hook that runs before botocore's: after CONNECT_ATTEMPTS failed
    connections, raise the connection error instead of retrying on."""
    if attempts >= CONNECT_ATTEMPTS and isinstance(
        caught_exception, botocore.exceptions.EndpointConnectionError
    ):
        raise caught_exception


def _to_endpoint(request: Any, endpoint_url: str, **_: Any) -> None:
    """Send a KeyValueStore call to the emulator's endpoint itself: botocore's endpoint
    rules put the store's account id in front of a custom endpoint's host
    (123456789012.127.0.0.1:4566), which resolves nowhere. Before signing: the signature
    covers the host."""
    wanted = urllib.parse.urlsplit(endpoint_url)
    url = urllib.parse.urlsplit(request.url)
    request.url = urllib.parse.urlunsplit(url._replace(netloc=wanted.netloc))


class Credentials(Protocol):
    """Keys to sign with (what `actions.job.Credentials` holds)."""

    @property
    def access_key_id(self) -> str: ...

    @property
    def secret_access_key(self) -> str: ...

    @property
    def session_token(self) -> str | None: ...


@dataclass
class CallStats:
    reads: int = 0
    writes: int = 0
    waited: float = 0.0
    uploaded_bytes: int = 0
    operations: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def summary(self) -> str:
        return (
            f"AWS calls: {self.reads} reads, {self.writes} writes; "
            f"{self.uploaded_bytes} bytes uploaded; {self.waited:.1f}s waited on AWS"
        )


def is_write(operation: str) -> bool:
    return not operation.startswith(READ_PREFIXES)


class Aws:
    """Clients for one account and region, created lazily and shared across threads."""

    retry_max_seconds: float = float(os.environ.get("SDELIVER_RETRY_MAX_SECONDS", "90"))
    # How every wait between attempts sleeps (sdeliver's own retries, lease polling, the
    # canary's interval) unless a caller passes its own: tests pass or set a fast one.
    sleep_default: Callable[[float], None] = time.sleep

    def __init__(
        self,
        *,
        region: str,
        profile: str | None = None,
        endpoint_url: str | None = None,
        max_attempts: int = 10,
        log: Callable[[str], None] | None = None,
        credentials: Credentials | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        """credentials: sign with these keys instead of the profile's (a pipeline job's
        artifact credentials) — same retries, counting and errors.
        sleep: how to wait between attempts (default `Aws.sleep_default`)."""
        self.sleep: Callable[[float], None] = sleep or Aws.sleep_default
        self.region = region
        self.profile = profile
        self.endpoint_url = endpoint_url
        self.log = log or (lambda _message: None)
        self.stats = CallStats()
        # Told (service, API operation name) once per `call`, before it is made, however
        # many attempts botocore's retries make: `plan.execute` records a change's calls.
        self.observers: list[Callable[[str, str], None]] = []
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._identity: dict[str, str] | None = None
        self._identity_lock = threading.Lock()
        self._emulator: str | None = None
        self._emulator_lock = threading.Lock()
        self._call_log = os.environ.get("SDELIVER_CALL_LOG")
        self._params_log = os.environ.get("SDELIVER_CALL_PARAMS_LOG")
        self._config = botocore.config.Config(
            retries={"mode": "standard", "max_attempts": max_attempts},
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=60,
            max_pool_connections=32,
            user_agent_extra="sdeliver",
        )
        try:
            if credentials is not None:
                self._session = boto3.session.Session(
                    aws_access_key_id=credentials.access_key_id,
                    aws_secret_access_key=credentials.secret_access_key,
                    aws_session_token=credentials.session_token,
                    region_name=region,
                )
            else:
                self._session = boto3.session.Session(profile_name=profile, region_name=region)
        except botocore.exceptions.ProfileNotFound:
            raise ConfigError(
                f"AWS profile {profile!r} is not configured",
                hint="list profiles with 'aws configure list-profiles'",
            ) from None
        self._session._session.register_component("data_loader", _MODELS)

    # -- clients -------------------------------------------------------------------------

    def client(self, service: str) -> Any:
        """service: a boto3 service name, or "name@region" for a client of another region
        (ACM certificates for CloudFront live in us-east-1 whatever the app's region)."""
        with self._lock:
            if service not in self._clients:
                session: Any = self._session  # boto3-stubs' overloads want a literal name
                name, _, region = service.partition("@")
                client = session.client(
                    name, endpoint_url=self.endpoint_url, config=self._config,
                    **({"region_name": region} if region else {}),
                )
                client.meta.events.register("before-call.*.*", self._count)
                client.meta.events.register("after-call.*.*", self._log_retries)
                client.meta.events.register_first(
                    "needs-retry", _fail_fast_on_connection_errors
                )
                if name == "cloudfront-keyvaluestore" and self.endpoint_url:
                    client.meta.events.register(
                        "before-sign.cloudfront-keyvaluestore.*",
                        partial(_to_endpoint, endpoint_url=self.endpoint_url),
                    )
                if self._params_log:
                    # First: what sdeliver passed, before botocore's handlers add their own.
                    client.meta.events.register_first(
                        "provide-client-params.*.*", self._record_params
                    )
                self._clients[service] = client
            return self._clients[service]

    def _count(self, model: Any, **_: Any) -> None:
        name = model.name
        with self.stats.lock:
            self.stats.operations[name] += 1
            if is_write(name):
                self.stats.writes += 1
            else:
                self.stats.reads += 1
            if self._call_log:
                service = model.service_model.service_name
                with open(self._call_log, "a", encoding="utf-8") as fh:
                    fh.write(f"{service} {name}\n")

    def _record_params(self, model: Any, params: Mapping[str, Any], **_: Any) -> None:
        """Append one JSON line per call to SDELIVER_CALL_PARAMS_LOG: service, operation and
        the parameter paths passed (names, never values), so tests can check every call
        against an older botocore's service models and against `sdeliver iam-policy`."""
        line = json.dumps({
            "service": model.service_model.service_name,
            "operation": model.name,
            "params": sorted(parameter_paths(params, model.input_shape)),
        })
        with self.stats.lock, open(str(self._params_log), "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def _log_retries(self, model: Any, parsed: Any = None, **_: Any) -> None:
        """Say (with -v) when botocore's own retries hid throttling or a 5xx from us."""
        attempts = (parsed or {}).get("ResponseMetadata", {}).get("RetryAttempts", 0)
        if attempts:
            service = model.service_model.service_name
            self.log(f"{service}.{model.name}: succeeded after {attempts} retries")

    # -- identity ------------------------------------------------------------------------

    def identity(self) -> dict[str, str]:
        # Asked from deploy's threads too: one GetCallerIdentity, not one per thread.
        with self._identity_lock:
            if self._identity is None:
                found = self.call("sts", "get_caller_identity", resource="the caller")
                self._identity = {"account": found["Account"], "arn": found["Arn"]}
            return self._identity

    @property
    def account_id(self) -> str:
        return self.identity()["account"]

    @property
    def caller_arn(self) -> str:
        return self.identity()["arn"]

    @property
    def partition(self) -> str:
        if self.region.startswith("cn-"):
            return "aws-cn"
        if self.region.startswith("us-gov-"):
            return "aws-us-gov"
        return "aws"

    # -- the endpoint --------------------------------------------------------------------

    @property
    def emulator(self) -> str:
        """Which emulator --endpoint-url is: "localstack", or "" (AWS, moto, or unknown).

        Asked once, from LocalStack's health endpoint, and only when a URL depends on it."""
        if not self.endpoint_url:
            return ""
        with self._emulator_lock:
            if self._emulator is None:
                self._emulator = detect_emulator(self.endpoint_url)
            return self._emulator

    # -- calls ---------------------------------------------------------------------------

    def call(
        self,
        service: str,
        operation: str,
        *,
        resource: str = "",
        missing: bool = False,
        retry: tuple[str, ...] = (),
        ignore: tuple[str, ...] = (),
        **params: Any,
    ) -> Any:
        """Call one operation.

        missing: return None when AWS says the resource does not exist.
        retry: names from TRANSIENT to retry (bounded, with jitter) before giving up.
        ignore: error codes that mean the call's effect is already there (returns None).
        """
        client = self.client(service)
        method = getattr(client, operation)
        if self.observers:
            name = client.meta.method_to_api_mapping.get(operation, operation)
            for observe in list(self.observers):
                observe(service, name)

        def transient(exc: BaseException) -> bool:
            if not isinstance(exc, botocore.exceptions.ClientError):
                return False
            code, message = _code(exc), _message(exc)
            return any(TRANSIENT[name](code, message) for name in retry)

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            self.log(f"retrying {service}.{operation} ({resource}): {exc}")

        try:
            if not retry:
                return method(**params)
            for attempt in Retrying(
                retry=retry_if_exception(transient),
                wait=wait_random_exponential(multiplier=0.5, max=10),
                stop=stop_after_delay(self.retry_max_seconds) | stop_after_attempt(30),
                before_sleep=before_sleep,
                sleep=self.sleep,
                reraise=True,
            ):
                with attempt:
                    return method(**params)
        except botocore.exceptions.ClientError as err:
            code = _code(err)
            if missing and code in NOT_FOUND:
                return None
            if code in ignore:
                return None
            raise self.translate(err, service, operation, resource) from None
        except (botocore.exceptions.BotoCoreError, *NOT_AN_AWS_ANSWER) as err:
            raise self.translate(err, service, operation, resource) from None
        except NotImplementedError:
            # An in-process emulator (moto's mock) lacking the operation raises this
            # instead of answering; callers that can do without it list the code in ignore.
            if "NotImplemented" in ignore:
                return None
            raise AwsError(
                f"{service}.{operation}: the endpoint does not implement it",
                code="NotImplemented",
            ) from None
        return None  # pragma: no cover - Retrying always returns or raises

    def paginate(
        self, service: str, operation: str, key: str, *, resource: str = "", **params: Any
    ) -> Iterator[Any]:
        """Every item of a paginated list call (all pages, never only the first)."""
        client = self.client(service)
        try:
            if client.can_paginate(operation):
                for page in client.get_paginator(operation).paginate(**params):
                    yield from page.get(key, [])
            else:
                yield from self.call(service, operation, resource=resource, **params).get(key, [])
        except botocore.exceptions.ClientError as err:
            raise self.translate(err, service, operation, resource) from None
        except (botocore.exceptions.BotoCoreError, *NOT_AN_AWS_ANSWER) as err:
            raise self.translate(err, service, operation, resource) from None

    def wait(
        self,
        service: str,
        waiter: str,
        *,
        resource: str = "",
        delay: float = 2,
        max_attempts: int = 150,
        **params: Any,
    ) -> None:
        started = time.monotonic()
        try:
            self.client(service).get_waiter(waiter).wait(
                WaiterConfig={"Delay": delay, "MaxAttempts": max_attempts}, **params
            )
        except botocore.exceptions.WaiterError as err:
            reason = (
                err.last_response.get("Error", {}).get("Message") if err.last_response else None
            )
            if service == "lambda" and not reason:
                reason = self._function_reason(err.last_response, params)
            raise AwsError(
                f"waiting for {resource or service} ({waiter}) failed: "
                f"{reason or err.kwargs.get('reason') or err}",
                code="WaiterError",
            ) from None
        except botocore.exceptions.ClientError as err:
            raise self.translate(err, service, waiter, resource) from None
        except (botocore.exceptions.BotoCoreError, *NOT_AN_AWS_ANSWER) as err:
            raise self.translate(err, service, waiter, resource) from None
        finally:
            with self.stats.lock:
                self.stats.waited += time.monotonic() - started

    def _function_reason(self, last: Mapping[str, Any] | None, params: dict[str, Any]) -> str:
        """Why a function is Failed (or its update failed): Lambda's own one line, from the
        waiter's last answer or, when that lacks it, from GetFunctionConfiguration."""
        found: Mapping[str, Any] = (last or {}).get("Configuration") or last or {}
        if not _state_reason(found) and params.get("FunctionName"):
            try:
                found = self.client("lambda").get_function_configuration(
                    FunctionName=params["FunctionName"],
                    **({"Qualifier": params["Qualifier"]} if params.get("Qualifier") else {}),
                )
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
                return ""
        return _state_reason(found)

    def add_uploaded(self, size: int) -> None:
        with self.stats.lock:
            self.stats.uploaded_bytes += size

    # -- errors --------------------------------------------------------------------------

    def translate(self, err: Exception, service: str, operation: str, resource: str) -> AwsError:
        what = f"{service}.{operation}" + (f" on {resource}" if resource else "")
        if isinstance(err, botocore.exceptions.NoCredentialsError):
            return AwsError(
                "no AWS credentials found",
                code="NoCredentials",
                hint="set AWS_PROFILE (or pass --profile), or run with --local",
            )
        if isinstance(err, botocore.exceptions.NoRegionError):
            return AwsError("no AWS region set", hint="set region: in sdeliver.yaml or --region")
        if isinstance(err, botocore.exceptions.EndpointConnectionError):
            return AwsError(
                f"cannot reach AWS for {what}: {err}",
                code="EndpointConnectionError",
                hint="check the network, the region, or --endpoint-url",
            )
        if isinstance(err, NOT_AN_AWS_ANSWER):
            return AwsError(
                f"{what} failed: {self.endpoint_url or 'AWS'} did not answer as AWS does "
                "(the response is not an AWS API response)",
                code="NotAnAwsResponse",
                hint="check --endpoint-url: it must be an AWS emulator (moto, LocalStack)",
            )
        if isinstance(err, botocore.exceptions.ClientError):
            code, message = _code(err), _message(err)
            if _not_offered(err):
                return self._not_offered(service, operation, message)
            if code in ("403", "Forbidden") and operation == "head_bucket":
                return AwsError(
                    f"{what}: the bucket exists but is not ours: another AWS account owns it "
                    "(or these credentials may not read it)",
                    code="BucketAlreadyExists",
                    hint="choose another name (artifacts.bucket, or the environment's domain)",
                )
            if code in ACCESS_DENIED:
                return AwsError(
                    f"access denied: {what}: {message or code}",
                    code=code,
                    hint="grant this permission to the credentials in use, or another --profile",
                )
            if code in NOT_FOUND:
                return AwsError(
                    f"{what}: not found: {message or code}",
                    code=code,
                    hint="run 'sdeliver reconcile' to create what sdeliver.yaml declares",
                )
            if code == "BucketAlreadyExists":
                return AwsError(
                    f"{what}: the bucket name is taken by another AWS account",
                    code=code,
                    hint="choose another name (artifacts.bucket, or the environment's domain)",
                )
            return AwsError(f"{what} failed: {code}: {message}", code=code)
        return AwsError(f"{what} failed: {err}", code=type(err).__name__)

    def _not_offered(self, service: str, operation: str, message: str) -> AwsError:
        where = f"the endpoint {self.endpoint_url}" if self.endpoint_url else "this endpoint"
        what = f"{service}.{operation}" if "API action" in message else service
        said = message.split(". ")[0].rstrip(".") or "HTTP 501"
        return AwsError(
            f"{where} does not offer {what} ({said})",
            code=NOT_OFFERED,
            hint=SKIP_PIPELINE_HINT if service in PIPELINE_SERVICES
            else "use an endpoint that offers it (LocalStack Pro, or AWS)",
        )


def _not_offered(err: botocore.exceptions.ClientError) -> bool:
    """An emulator's "this service (or operation) is not here", never a transient failure."""
    message = _message(err)
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return any(sign in message for sign in NOT_OFFERED_SIGNS) or (
        status == 501 and _code(err) == "InternalFailure"
    )


def _state_reason(found: Mapping[str, Any]) -> str:
    for state, reason in (("State", "StateReason"), ("LastUpdateStatus", "LastUpdateStatusReason")):
        if found.get(reason):
            return f"{state} {found.get(state) or 'Failed'}: {found[reason]}"
    return ""


def detect_emulator(endpoint_url: str) -> str:
    """"localstack" when the endpoint answers LocalStack's health check, else ""."""
    url = endpoint_url.rstrip("/") + LOCALSTACK_HEALTH
    try:
        with urllib.request.urlopen(url, timeout=3) as answer:  # noqa: S310 - the user's endpoint
            document = json.loads(answer.read(256 * 1024))
    except (OSError, ValueError, urllib.error.URLError):
        return ""
    return LOCALSTACK if isinstance(document, dict) and "services" in document else ""


def parameter_paths(params: Any, shape: Any, prefix: str = "") -> set[str]:
    """The names in a call's parameters as dotted paths (`pipeline.executionMode`,
    `Tags{}`, `stages[].name`): structures are followed member by member; a map stops at
    `{}` (its keys are the caller's data), a list continues through `[]`."""
    found: set[str] = set()
    if shape is None:
        return found
    if shape.type_name == "structure" and isinstance(params, Mapping):
        for name, value in params.items():
            path = f"{prefix}.{name}" if prefix else name
            found.add(path)
            found |= parameter_paths(value, shape.members.get(name), path)
    elif shape.type_name == "list" and isinstance(params, list):
        for item in params:
            found |= parameter_paths(item, shape.member, f"{prefix}[]")
    elif shape.type_name == "map":
        found.add(f"{prefix}{{}}")
    return found


def error_code(err: BaseException) -> str:
    """The AWS error code of a failure, or '' when it is not one."""
    if isinstance(err, AwsError):
        return err.code
    if isinstance(err, botocore.exceptions.ClientError):
        return str(_code(err))
    return ""


def _code(err: botocore.exceptions.ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _message(err: botocore.exceptions.ClientError) -> str:
    return str(err.response.get("Error", {}).get("Message", ""))


def tags_dict(tags: list[Mapping[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or []}
