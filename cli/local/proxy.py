"""API Gateway's REST proxy semantics: which resource a request reaches, the event a
Lambda proxy integration sends, and the HTTP response a handler's result stands for."""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from ..endpoints import HOST

# A header name is an RFC 9110 token; a value holds no CR, LF or NUL (API Gateway refuses
# a response that would inject a header).
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
BAD_VALUE = re.compile(r"[\r\n\0]")

# moto stores `x-amazon-apigateway-any-method` under its upper-cased extension name.
ANY_METHODS = {"ANY", "X-AMAZON-APIGATEWAY-ANY-METHOD"}


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    # Why the answer is an error, for the request log; never sent.
    detail: str = field(default="", compare=False)
    # The function's own answer (a proxy result), not one API Gateway made (its gateway
    # responses, which CORS's DEFAULT_4XX/5XX headers apply to).
    from_function: bool = field(default=False, compare=False)

    @classmethod
    def message(cls, status: int, message: str, detail: str = "") -> Response:
        body = json.dumps({"message": message}).encode()
        return cls(status, body, [("Content-Type", "application/json")], detail=detail)


def forbidden() -> Response:
    return Response.message(403, "Missing Authentication Token")


def internal_error(detail: str = "") -> Response:
    return Response.message(500, "Internal server error", detail)


def bad_gateway(detail: str = "", *, reason: str | None = None) -> Response:
    """API Gateway's 502; `reason` (sdeliver's own, e.g. a runtime it cannot run) is shown."""
    document = {"message": "Internal server error"}
    if reason:
        document["sdeliver"] = reason
    body = json.dumps(document).encode()
    headers = [("Content-Type", "application/json")]
    return Response(502, body, headers, detail=detail or reason or "")


class MalformedResponse(ValueError):
    """A handler result API Gateway would refuse as a "Malformed Lambda proxy response"."""


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


def proxy_response(result: Any) -> Response:
    """The HTTP response a proxy result stands for; MalformedResponse when API Gateway
    would refuse it (502 on AWS)."""
    if not isinstance(result, dict):
        raise MalformedResponse("the result is not a JSON object")
    try:
        status = int(result.get("statusCode", 0))
    except (TypeError, ValueError):
        code = result.get("statusCode")
        raise MalformedResponse(f"statusCode {code!r} is not a number") from None
    if not 100 <= status <= 599:
        raise MalformedResponse(f"statusCode {status} is not an HTTP status")
    headers = _result_headers(result)
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "application/json"))
    raw = result.get("body")
    if raw is None:
        body = b""
    elif not isinstance(raw, str):
        raise MalformedResponse(f"body is a {type(raw).__name__}, not a string")
    elif result.get("isBase64Encoded"):
        try:
            body = base64.b64decode(raw, validate=True)
        except ValueError:
            raise MalformedResponse("body is not valid base64 (isBase64Encoded)") from None
    else:
        body = raw.encode("utf-8")
    return Response(status, body, headers, from_function=True)


def _result_headers(result: dict[str, Any]) -> list[tuple[str, str]]:
    single, multi = result.get("headers") or {}, result.get("multiValueHeaders") or {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        raise MalformedResponse("headers and multiValueHeaders must be objects")
    pairs = [(str(k), v) for k, v in single.items()]
    for key, values in multi.items():
        if not isinstance(values, list):
            raise MalformedResponse(f"multiValueHeaders[{key!r}] is not a list")
        pairs.extend((str(key), v) for v in values)
    headers = []
    for name, value in pairs:
        text = value if isinstance(value, str) else json.dumps(value)
        if not HEADER_NAME.fullmatch(name) or BAD_VALUE.search(text):
            raise MalformedResponse(f"header {name!r}: {text!r} is not a valid HTTP header")
        if name.lower() != "content-length":
            headers.append((name, text))
    return headers
