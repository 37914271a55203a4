"""What moto 5.2 lacks for CloudFront hosting, for in-process tests.

moto 5.2.1 has ACM, distributions and Origin Access Control, but no CloudFront Functions
and no KeyValueStore (neither the `cloudfront` control plane operations nor the
`cloudfront-keyvaluestore` data plane). `EdgeFake` answers exactly those operations on one
project's clients, the way botocore's Stubber does (a `before-call` handler that returns
the response; parameters are validated against the service model first), but keeps state
so a plan can be applied and planned again. Every other call still goes to moto.

moto 5.2.1 also drops a distribution's OriginAccessControlId and FunctionAssociations on
the floor (its model never stores them); `keep_distribution_fields` makes it keep them, so
a second reconcile sees what the first one wrote.
"""

from __future__ import annotations

import contextlib
import io
import uuid
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from sdeliver.local.edge import distribution_field_inits

ACCOUNT = "123456789012"
CLOUDFRONT_OPS = {
    "CreateKeyValueStore", "DescribeKeyValueStore", "DeleteKeyValueStore", "CreateFunction",
    "UpdateFunction", "PublishFunction", "DescribeFunction", "GetFunction", "DeleteFunction",
}


# Services the CloudFront plan and the release commands call from several threads at once.
THREADED_SERVICES = ("cloudfront", "route53", "s3", "lambda", "apigateway", "acm", "iam")


def warm_moto_routers() -> None:
    """Build moto's request routers now, in this thread. moto builds one lazily at a
    service's first request, compiling werkzeug rules with ast.parse; on CPython 3.11.7,
    ast.parse in two threads at once can fail with "SystemError: AST constructor recursion
    depth mismatch" — and the plan asks several services side by side. Built once per
    process (moto caches them)."""
    from moto.core.routing import NotFound, get_service_router

    for name in THREADED_SERVICES:
        router = get_service_router(name)
        model = router._service_model
        for protocol in model.metadata.get("protocols", [model.protocol]):
            with contextlib.suppress(NotFound):  # a protocol moto has no router for
                router._get_router(protocol)


def keep_distribution_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import settings
    from moto.cloudfront import models

    warm_moto_routers()

    origin, behaviour = distribution_field_inits(models)
    monkeypatch.setattr(models.Origin, "__init__", origin)
    monkeypatch.setattr(models.DefaultCacheBehaviour, "__init__", behaviour)
    # Certificates issue at their first description after the request.
    monkeypatch.setattr(settings, "ACM_VALIDATION_WAIT", -1)
    # The KeyValueStore data plane signs with SigV4A, which botocore resolves only with
    # awscrt installed; EdgeFake answers before anything is signed, so none is needed here.
    import botocore.auth
    import botocore.regions

    monkeypatch.setattr(botocore.regions, "HAS_CRT", True)
    monkeypatch.setitem(botocore.regions.AUTH_TYPE_MAPS, "v4a", botocore.auth.SigV4Auth)


class _Missing(Exception):
    def __init__(self, code: str) -> None:
        self.code = code


class EdgeFake:
    def __init__(self) -> None:
        self.stores: dict[str, dict[str, Any]] = {}  # name -> store
        self.functions: dict[str, dict[str, Any]] = {}  # name -> {DEVELOPMENT, LIVE}
        self.puts: list[tuple[str, str]] = []  # (key, value) of every PutKey

    def install(self, aws: Any) -> EdgeFake:
        for service in ("cloudfront", "cloudfront-keyvaluestore"):
            events = aws.client(service).meta.events
            events.register("before-parameter-build.*.*", self._keep_params)
            events.register("before-call.*.*", self._answer)
        return self

    @staticmethod
    def _keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["edge_fake_params"] = dict(params)

    def _answer(self, model: Any, context: dict[str, Any], **_: Any) -> Any:
        service = model.service_model.service_name
        if service == "cloudfront" and model.name not in CLOUDFRONT_OPS:
            return None  # moto's
        handler = getattr(self, f"{'kvs' if service != 'cloudfront' else 'cf'}_{model.name}")
        try:
            body = handler(**context["edge_fake_params"])
        except _Missing as missing:
            return (AWSResponse(None, 404, {}, None),
                    {"Error": {"Code": missing.code, "Message": "not found"},
                     "ResponseMetadata": {"HTTPStatusCode": 404}})
        return AWSResponse(None, 200, {}, None), {**body, "ResponseMetadata": {
            "HTTPStatusCode": 200}}

    # -- cloudfront: key value stores --------------------------------------------------

    def _store(self, name: str) -> dict[str, Any]:
        if name not in self.stores:
            raise _Missing("EntityNotFound")
        return self.stores[name]

    def cf_CreateKeyValueStore(self, Name: str, **_: Any) -> dict[str, Any]:
        store_id = str(uuid.uuid4())
        self.stores[Name] = {"Name": Name, "Id": store_id, "Status": "READY", "data": {},
                             "ARN": f"arn:aws:cloudfront::{ACCOUNT}:key-value-store/{store_id}"}
        return {"KeyValueStore": self._public(self.stores[Name]), "ETag": "E1"}

    @staticmethod
    def _public(store: dict[str, Any]) -> dict[str, Any]:
        return {k: store[k] for k in ("Name", "Id", "ARN", "Status")} | {
            "Comment": "", "LastModifiedTime": "2026-01-01T00:00:00Z"}

    def cf_DescribeKeyValueStore(self, Name: str) -> dict[str, Any]:
        return {"KeyValueStore": self._public(self._store(Name)), "ETag": "E1"}

    def cf_DeleteKeyValueStore(self, Name: str, IfMatch: str) -> dict[str, Any]:
        self._store(Name)
        del self.stores[Name]
        return {}

    # -- cloudfront: functions ---------------------------------------------------------

    def _summary(self, name: str, stage: str) -> dict[str, Any]:
        if name not in self.functions or stage not in self.functions[name]:
            raise _Missing("NoSuchFunctionExists")
        version = self.functions[name][stage]
        return {"Name": name, "Status": "DEPLOYED", "FunctionConfig": version["config"],
                "FunctionMetadata": {
                    "FunctionARN": f"arn:aws:cloudfront::{ACCOUNT}:function/{name}",
                    "Stage": stage, "LastModifiedTime": "2026-01-01T00:00:00Z"}}

    def cf_CreateFunction(self, Name: str, FunctionConfig: Any, FunctionCode: bytes
                          ) -> dict[str, Any]:
        self.functions[Name] = {"DEVELOPMENT": {"config": FunctionConfig, "code": FunctionCode}}
        return {"FunctionSummary": self._summary(Name, "DEVELOPMENT"), "ETag": "E1"}

    def cf_UpdateFunction(self, Name: str, IfMatch: str, FunctionConfig: Any,
                          FunctionCode: bytes) -> dict[str, Any]:
        self._summary(Name, "DEVELOPMENT")
        self.functions[Name]["DEVELOPMENT"] = {"config": FunctionConfig, "code": FunctionCode}
        return {"FunctionSummary": self._summary(Name, "DEVELOPMENT"), "ETag": "E2"}

    def cf_PublishFunction(self, Name: str, IfMatch: str) -> dict[str, Any]:
        self._summary(Name, "DEVELOPMENT")
        self.functions[Name]["LIVE"] = dict(self.functions[Name]["DEVELOPMENT"])
        return {"FunctionSummary": self._summary(Name, "LIVE")}

    def cf_DescribeFunction(self, Name: str, Stage: str = "DEVELOPMENT") -> dict[str, Any]:
        return {"FunctionSummary": self._summary(Name, Stage), "ETag": "E1"}

    def cf_GetFunction(self, Name: str, Stage: str = "DEVELOPMENT") -> dict[str, Any]:
        self._summary(Name, Stage)
        return {"FunctionCode": io.BytesIO(self.functions[Name][Stage]["code"]), "ETag": "E1"}

    def cf_DeleteFunction(self, Name: str, IfMatch: str) -> dict[str, Any]:
        self._summary(Name, "DEVELOPMENT")
        del self.functions[Name]
        return {}

    # -- cloudfront-keyvaluestore ------------------------------------------------------

    def _by_arn(self, arn: str) -> dict[str, Any]:
        for store in self.stores.values():
            if store["ARN"] == arn:
                return store
        raise _Missing("ResourceNotFoundException")

    def kvs_DescribeKeyValueStore(self, KvsARN: str) -> dict[str, Any]:
        store = self._by_arn(KvsARN)
        return {"KvsARN": KvsARN, "ItemCount": len(store["data"]), "TotalSizeInBytes": 0,
                "Created": "2026-01-01T00:00:00Z", "ETag": f"E{len(self.puts)}"}

    def kvs_GetKey(self, KvsARN: str, Key: str) -> dict[str, Any]:
        store = self._by_arn(KvsARN)
        if Key not in store["data"]:
            raise _Missing("ResourceNotFoundException")
        return {"Key": Key, "Value": store["data"][Key], "ItemCount": len(store["data"]),
                "TotalSizeInBytes": 0}

    def kvs_PutKey(self, KvsARN: str, Key: str, Value: str, IfMatch: str) -> dict[str, Any]:
        store = self._by_arn(KvsARN)
        store["data"][Key] = Value
        self.puts.append((Key, Value))
        return {"ETag": f"E{len(self.puts)}", "ItemCount": len(store["data"]),
                "TotalSizeInBytes": 0}

    def live(self, name: str) -> str | None:
        return self.stores[name]["data"].get("release") if name in self.stores else None
