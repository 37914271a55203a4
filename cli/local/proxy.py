"""API Gateway's REST proxy semantics: which resource a request reaches, the event a
Lambda proxy integration sends, and the HTTP response a handler's result stands for."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any

from .emulator import HOST

# moto stores `x-amazon-apigateway-any-method` under its upper-cased extension name.
ANY_METHODS = {"ANY", "X-AMAZON-APIGATEWAY-ANY-METHOD"}


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def message(cls, status: int, message: str) -> Response:
        body = json.dumps({"message": message}).encode()
        return cls(status, body, [("Content-Type", "application/json")])


def forbidden() -> Response:
    return Response.message(403, "Missing Authentication Token")


def internal_error() -> Response:
    return Response.message(500, "Internal server error")


def bad_gateway() -> Response:
    return Response.message(502, "Internal server error")


@dataclass
class Request:
    method: str
    path: str  # after /<env>/api or /<env>/site, starting with "/"
    query: list[tuple[str, str]]
    headers: list[tuple[str, str]]
    body: bytes = b""
    source_ip: str = HOST


# -- routes --------------------------------------------------------------------------------


def match_path(template: str, path: str) -> dict[str, str] | None:
    """Path parameters when `path` matches the resource `template`, else None."""
    wanted = [s for s in template.split("/") if s]
    given = [s for s in path.split("/") if s]
    params: dict[str, str] = {}
    for i, segment in enumerate(wanted):
        if segment.startswith("{") and segment.endswith("+}"):
            if i >= len(given):
                return None
            params[segment[1:-2]] = "/".join(given[i:])
            return params
        if i >= len(given):
            return None
        if segment.startswith("{") and segment.endswith("}"):
            params[segment[1:-1]] = given[i]
        elif segment != given[i]:
            return None
    return params if len(given) == len(wanted) else None


def _specificity(template: str) -> list[int]:
    # Literal segments beat {param}, which beats {greedy+}, as in API Gateway.
    score = []
    for segment in (s for s in template.split("/") if s):
        if segment.endswith("+}"):
            score.append(0)
        elif segment.startswith("{"):
            score.append(1)
        else:
            score.append(2)
    return score


def match_route(
    routes: dict[str, set[str]], path: str, method: str
) -> tuple[str, dict[str, str]] | None:
    """The resource serving `method path` and its path parameters; None when undeclared."""
    found = [(t, p) for t in routes if (p := match_path(t, path)) is not None]
    if not found:
        return None
    template, params = max(found, key=lambda item: _specificity(item[0]))
    methods = routes[template]
    if method.upper() in methods or methods & ANY_METHODS:
        return template, params
    return None


def weighted_version(alias: dict[str, Any], draw: float) -> str:
    """The version a request drawn at `draw` (0 <= draw < 1) reaches through `alias`."""
    weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    total = 0.0
    for version, weight in sorted(weights.items()):
        total += float(weight)
        if draw < total:
            return str(version)
    return str(alias["FunctionVersion"])


# -- the proxy event -----------------------------------------------------------------------


def _single(pairs: list[tuple[str, str]]) -> dict[str, str] | None:
    return {k: v for k, v in pairs} or None


def _multi(pairs: list[tuple[str, str]]) -> dict[str, list[str]] | None:
    found: dict[str, list[str]] = {}
    for key, value in pairs:
        found.setdefault(key, []).append(value)
    return found or None


def proxy_event(
    request: Request,
    *,
    env: str,
    resource: str,
    path_params: dict[str, str],
    stage_variables: dict[str, str],
    api_id: str,
    request_id: str,
) -> dict[str, Any]:
    """The event a REST API's Lambda proxy integration sends."""
    try:
        body: str | None = request.body.decode("utf-8") if request.body else None
        encoded = False
    except UnicodeDecodeError:
        body, encoded = base64.b64encode(request.body).decode(), True
    now = time.time()
    return {
        "resource": resource,
        "path": request.path,
        "httpMethod": request.method,
        "headers": _single(request.headers),
        "multiValueHeaders": _multi(request.headers),
        "queryStringParameters": _single(request.query),
        "multiValueQueryStringParameters": _multi(request.query),
        "pathParameters": path_params or None,
        "stageVariables": stage_variables or None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": request.method,
            "path": f"/{env}{request.path}",
            "stage": env,
            "requestId": request_id,
            "apiId": api_id,
            "protocol": "HTTP/1.1",
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "requestTimeEpoch": int(now * 1000),
            "identity": {
                "sourceIp": request.source_ip,
                "userAgent": _header(request, "user-agent"),
            },
        },
        "body": body,
        "isBase64Encoded": encoded,
    }


def _header(request: Request, name: str) -> str | None:
    return next((v for k, v in request.headers if k.lower() == name), None)


def proxy_response(result: Any) -> Response | None:
    """The HTTP response a proxy result stands for; None when it is malformed."""
    if not isinstance(result, dict):
        return None
    try:
        status = int(result.get("statusCode", 0))
    except (TypeError, ValueError):
        return None
    if not 100 <= status <= 599:
        return None
    headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
    for key, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((str(key), str(v)) for v in values)
    headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "application/json"))
    raw = result.get("body")
    if raw is None:
        body = b""
    elif result.get("isBase64Encoded"):
        try:
            body = base64.b64decode(str(raw))
        except ValueError:
            return None
    else:
        body = str(raw).encode("utf-8")
    return Response(status, body, headers)
