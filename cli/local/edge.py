"""CloudFront hosting (`site.hosting: cloudfront`) on the local emulator: what moto lacks,
added to the moto server the emulator runs, and how this process's botocore reaches it.

In the emulator's process, `install_server()` (each item a gap of moto 5.2):
- moto has Create/Describe/Get/List/DeleteFunction but no UpdateFunction and no
  PublishFunction, and its Describe/GetFunction ignore `Stage` (nothing is ever LIVE):
  both operations are added, a publish keeps a LIVE copy, and Stage=LIVE reads that copy.
- moto drops a distribution's OriginAccessControlId and FunctionAssociations: kept, so a
  second reconcile sees what the first one wrote.
- moto issues an ACM certificate only ACM_VALIDATION_WAIT (60) seconds after its request:
  locally it issues at its first description, as soon as its validation records are written.
- moto has no KeyValueStore data plane (service cloudfront-keyvaluestore): `wsgi()` answers
  DescribeKeyValueStore, GetKey, PutKey, DeleteKey, ListKeys and UpdateKeys in front of
  moto, keeping each store's keys (and the ETag a write must match) on moto's store object,
  so a DeleteKeyValueStore or a reset of the emulator drops them with it.

In a process that talks to the emulator, `install_client(endpoint)`: botocore's endpoint rules
for cloudfront-keyvaluestore put the account id in front of a custom endpoint's host
(`http://123456789012.127.0.0.1:4566/...`, which no resolver knows) and ask for SigV4A, which
botocore signs only with awscrt installed (else MissingDependencyException, before anything
is sent). For the emulator's endpoints only, KVS clients send to the endpoint as given and
sign with SigV4 (the emulator checks no signature); every other endpoint, AWS's included,
keeps botocore's rules. So local mode needs no awscrt, and product code does not know.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

import botocore.handlers

KVS_SERVICE = "cloudfront-keyvaluestore"
KVS_PATH = re.compile(r"^/key-value-stores/(?P<arn>arn:[^/]*:key-value-store/[^/]+)"
                      r"(?P<keys>/keys(?:/(?P<key>.+))?)?$")
LIVE = "LIVE"

_lock = threading.Lock()
_endpoints: set[str] = set()  # this process's emulator endpoints (install_client)


# -- in the emulator -----------------------------------------------------------------------


def install_server() -> None:
    """Patch moto (in this process) with what CloudFront hosting needs; idempotent."""
    from moto import settings
    from moto.cloudfront import models, responses, urls

    # moto: certificates issue ACM_VALIDATION_WAIT seconds after the request (default 60).
    settings.ACM_VALIDATION_WAIT = -1
    if getattr(responses.CloudFrontResponse, "_sdeliver_edge", False):
        return
    _keep_distribution_fields(models)
    # moto: no PublishFunction route (its botocore model names the operation, its URLs not).
    urls.url_paths["{0}/2020-05-31/function/(?P<function_name>[^/]+)/publish$"] = (
        responses.CloudFrontResponse.dispatch)
    cls: Any = responses.CloudFrontResponse
    cls.update_function = _update_function
    cls.publish_function = _publish_function
    cls.describe_function = _staged(cls.describe_function, _describe_live)
    cls.get_function = _staged(cls.get_function, _get_live)
    cls._sdeliver_edge = True


def _keep_distribution_fields(models: Any) -> None:
    """moto's Origin and DefaultCacheBehaviour never store these two fields."""
    models.Origin.__init__, models.DefaultCacheBehaviour.__init__ = (
        distribution_field_inits(models))


def distribution_field_inits(models: Any) -> tuple[Any, Any]:
    """moto's Origin and DefaultCacheBehaviour constructors, keeping OriginAccessControlId
    and FunctionAssociations (the tests' in-process fake patches with them too)."""
    origin_init = models.Origin.__init__
    behaviour_init = models.DefaultCacheBehaviour.__init__

    def origin(self: Any, origin: dict[str, Any]) -> None:
        origin_init(self, origin)
        self.origin_access_control_id = origin.get("OriginAccessControlId", "")

    def behaviour(self: Any, config: dict[str, Any]) -> None:
        behaviour_init(self, config)
        self.function_associations = config.get("FunctionAssociations") or {"Quantity": 0}

    return origin, behaviour


def _function(response: Any, *, if_match: bool) -> Any:
    from moto.cloudfront.exceptions import CloudFrontException

    function = response.backend.describe_function(response._get_param("Name"))
    if if_match and response._get_param("IfMatch") != function.etag:
        raise CloudFrontException("PreconditionFailed",
                                  "The If-Match version is missing or not valid")
    return function


def _update_function(self: Any) -> Any:
    """UpdateFunction: new DEVELOPMENT config and code (moto lacks the operation)."""
    from moto.cloudfront.models import random_id
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow

    function = _function(self, if_match=True)
    function.config = self._get_param("FunctionConfig", {})
    function.code = self._get_param("FunctionCode")
    function.etag = random_id()
    function.last_modified_time = utcnow()
    return ActionResult({"FunctionSummary": function.function_summary, "ETag": function.etag})


def _publish_function(self: Any) -> Any:
    """PublishFunction: DEVELOPMENT becomes LIVE (moto lacks the operation)."""
    from moto.core.responses import ActionResult

    function = _function(self, if_match=True)
    function.status = "UNASSOCIATED"
    function._sdeliver_live = {"config": function.config, "code": function.code,
                               "etag": function.etag + "L"}
    return ActionResult({"FunctionSummary": _live_summary(function)})


def _live(self: Any) -> Any:
    from moto.cloudfront.exceptions import NoSuchFunctionExists

    function = _function(self, if_match=False)
    if getattr(function, "_sdeliver_live", None) is None:
        raise NoSuchFunctionExists(function.name)
    return function


def _live_summary(function: Any) -> dict[str, Any]:
    summary = dict(function.function_summary)
    live = function._sdeliver_live
    summary["FunctionConfig"] = live["config"]
    summary["Status"] = "DEPLOYED"
    summary["FunctionMetadata"] = {**summary["FunctionMetadata"], "Stage": LIVE}
    return summary


def _describe_live(self: Any) -> Any:
    from moto.core.responses import ActionResult

    function = _live(self)
    return ActionResult({"FunctionSummary": _live_summary(function),
                         "ETag": function._sdeliver_live["etag"]})


def _get_live(self: Any) -> Any:
    from moto.core.responses import ActionResult

    function = _live(self)
    return ActionResult({"FunctionCode": function._sdeliver_live["code"],
                         "ETag": function._sdeliver_live["etag"],
                         "ContentType": "application/octet-stream"})


def _staged(development: Callable[[Any], Any], live: Callable[[Any], Any]
            ) -> Callable[[Any], Any]:
    """moto answers every Stage with DEVELOPMENT: Stage=LIVE reads the published copy."""

    def read(self: Any) -> Any:
        return live(self) if self._get_param("Stage") == LIVE else development(self)

    return read


# -- the KeyValueStore data plane ----------------------------------------------------------


class KvsError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def wsgi(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """moto's WSGI app with the KeyValueStore data plane in front of it."""

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        matched = KVS_PATH.match(environ.get("PATH_INFO") or "")
        if matched is None:
            return app(environ, start_response)
        try:
            body, headers = kvs_request(
                str(environ.get("REQUEST_METHOD") or "GET"), matched["arn"],
                matched["keys"] is not None, matched["key"], _read_body(environ),
                environ.get("HTTP_IF_MATCH"))
            status = "200 OK"
        except KvsError as err:
            body = {"Message": err.message}
            headers = {"x-amzn-ErrorType": err.code}
            status = f"{err.status} {err.code}"
        data = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"),
                                ("Content-Length", str(len(data))), *headers.items()])
        return [data]

    return serve


def _read_body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return environ["wsgi.input"].read(length) if length > 0 else b""


def _store(arn: str) -> Any:
    from moto.cloudfront.models import cloudfront_backends

    account = arn.split(":")[4]
    partition = arn.split(":")[1]
    backend = cloudfront_backends[account][partition]
    store: Any
    for store in backend.key_value_stores.values():
        if store.arn == arn:
            if not hasattr(store, "_sdeliver_items"):
                store._sdeliver_items = {}
                store._sdeliver_etag = 0
            return store
    raise KvsError(404, "ResourceNotFoundException", f"key value store {arn} does not exist")


def _etag(store: Any) -> str:
    return f"KV{store._sdeliver_etag:08d}"


def _sizes(store: Any) -> dict[str, int]:
    items = store._sdeliver_items
    return {"ItemCount": len(items),
            "TotalSizeInBytes": sum(len(k) + len(v) for k, v in items.items())}


def kvs_request(method: str, arn: str, keys: bool, key: str | None, body: bytes,
                if_match: str | None) -> tuple[dict[str, Any], dict[str, str]]:
    """One data-plane request: (JSON body, headers), or KvsError."""
    with _lock:
        store = _store(arn)
        items: dict[str, str] = store._sdeliver_items
        if not keys and method == "GET":  # DescribeKeyValueStore
            created = store.last_modified_time
            return ({"KvsARN": arn, "Created": _timestamp(created), "Status": "READY",
                     "LastModified": _timestamp(created), **_sizes(store)},
                    {"ETag": _etag(store)})
        if key is not None and method == "GET":  # GetKey
            if key not in items:
                raise KvsError(404, "ResourceNotFoundException", f"no key {key}")
            return {"Key": key, "Value": items[key], **_sizes(store)}, {}
        if keys and key is None and method == "GET":  # ListKeys
            return {"Items": [{"Key": k, "Value": v} for k, v in sorted(items.items())]}, {}
        if if_match != _etag(store):
            raise KvsError(409, "ConflictException",
                           f"If-Match {if_match} is not the store's ETag {_etag(store)}")
        document = json.loads(body or b"{}")
        if key is not None and method == "PUT":  # PutKey
            items[key] = str(document["Value"])
        elif key is not None and method == "DELETE":  # DeleteKey
            if key not in items:
                raise KvsError(404, "ResourceNotFoundException", f"no key {key}")
            del items[key]
        elif key is None and method == "POST":  # UpdateKeys
            for put in document.get("Puts") or []:
                items[put["Key"]] = str(put["Value"])
            for gone in document.get("Deletes") or []:
                items.pop(gone["Key"], None)
        else:
            raise KvsError(400, "ValidationException", f"{method} is not an operation here")
        store._sdeliver_etag += 1
        return _sizes(store), {"ETag": _etag(store)}


def _timestamp(value: Any) -> float:
    if isinstance(value, datetime):
        return value.replace(tzinfo=value.tzinfo or timezone.utc).timestamp()
    return datetime.now(timezone.utc).timestamp()


# -- in a process that talks to the emulator -----------------------------------------------


def install_client(endpoint: str) -> None:
    """Make this process's KVS clients of `endpoint` reach the emulator (see above).

    Registered with botocore's built-in handlers, which every session made afterwards
    installs (the Aws of this command, the gateway's)."""
    with _lock:
        _endpoints.add(endpoint.rstrip("/"))
        spec = (f"creating-client-class.{KVS_SERVICE}", _add_local_signing)
        if spec not in botocore.handlers.BUILTIN_HANDLERS:
            botocore.handlers.BUILTIN_HANDLERS.append(spec)


def is_emulator(endpoint: str | None) -> bool:
    return endpoint is not None and endpoint.rstrip("/") in _endpoints


def _add_local_signing(base_classes: list[type], **_: Any) -> None:
    base_classes.insert(0, _EmulatorEndpoint)


class _EmulatorEndpoint:
    """A KVS client mixin: requests to the emulator go to its URL as given, SigV4-signed."""

    meta: Any

    def _resolve_endpoint_ruleset(self, operation_model: Any, params: Any,
                                  request_context: Any, ignore_signing_region: bool = False
                                  ) -> Any:
        if not is_emulator(self.meta.endpoint_url):
            return super()._resolve_endpoint_ruleset(  # type: ignore[misc]
                operation_model, params, request_context, ignore_signing_region)
        request_context["auth_type"] = "v4"
        request_context.setdefault("signing", {}).update(
            signing_name=KVS_SERVICE, region=self.meta.region_name)
        return self.meta.endpoint_url, {}, {}
