"""CORS, foreign integrations and "no release yet", through the real CLI and the local
gateway (which serves the site and the API on two origins, as AWS does)."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import new_app

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _request(url: str, method: str = "GET", headers: dict[str, str] | None = None
             ) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def _with_cors(directory: Path, cors: str = "  cors: {}\n") -> None:
    path = directory / "sdeliver.yaml"
    text = path.read_text()
    path.write_text(text.replace("api:\n  openapi: api/openapi.yaml\n",
                                 "api:\n  openapi: api/openapi.yaml\n" + cors))


def _no_e2e(directory: Path) -> None:
    path = directory / "sdeliver.yaml"
    path.write_text(path.read_text().replace("    e2e: python tests/e2e/test_app.py\n",
                                             "    e2e_timeout: 60\n"))


def _urls(directory: Path, env: str) -> tuple[str, str]:
    """(api, site) URLs of env, from the site's config.json once released."""
    from sdeliver.endpoints import _gateways, api_base

    gateway = next(iter(_gateways.values()))
    return f"{api_base(gateway)}/{env}/api/", f"{gateway}/{env}/site/"


def _preflight(api: str, origin: str) -> tuple[int, dict[str, str]]:
    status, headers, _ = _request(api + "hello", "OPTIONS", {
        "Origin": origin, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "content-type",
    })
    return status, {k.lower(): v for k, v in headers.items()}


def _init_and_deploy(sdeliver: Callable[..., Any], directory: Path) -> None:
    for args in (("init", "--yes"), ("deploy", "--env", "test")):
        result = sdeliver(*args, cwd=directory)
        assert result.code == 0, result.output


def test_site_and_api_are_two_origins_and_a_preflight_fails_without_cors(
    sdeliver, tmp_path: Path, endpoint: str
) -> None:  # type: ignore[no-untyped-def]
    with new_app(sdeliver, tmp_path, endpoint, "nocors", "") as directory:
        _no_e2e(directory)
        _init_and_deploy(sdeliver, directory)
        config = json.loads(_request(_urls(directory, "test")[1] + "config.json")[2])
        api, site = config["apiBaseurl"], _urls(directory, "test")[1]
        assert api.startswith("http://localhost:") and site.startswith("http://127.0.0.1:")
        origin = site.split("/test/")[0]

        status, headers = _preflight(api, origin)

        assert status == 403  # /hello declares no OPTIONS: API Gateway's answer
        assert "access-control-allow-origin" not in headers


def test_with_cors_the_preflight_allows_the_site_origin_only(
    sdeliver, tmp_path: Path, endpoint: str
) -> None:  # type: ignore[no-untyped-def]
    with new_app(sdeliver, tmp_path, endpoint, "cors", "") as directory:
        _no_e2e(directory)
        _with_cors(directory)
        _init_and_deploy(sdeliver, directory)
        api, site = _urls(directory, "test")
        origin = site.split("/test/")[0]

        status, headers = _preflight(api, origin)
        other_status, other = _preflight(api, "http://elsewhere.example")
        missing, error_headers, _ = _request(api + "nowhere", headers={"Origin": origin})

    assert status == 200
    assert headers["access-control-allow-origin"] == origin
    assert "GET" in headers["access-control-allow-methods"].split(",")
    assert "Content-Type" in headers["access-control-allow-headers"].split(",")
    assert headers["access-control-max-age"] == "600"
    # One allowed origin: a static header (a browser refuses it for another origin).
    assert other_status == 200 and other["access-control-allow-origin"] == origin
    # The gateway responses (DEFAULT_4XX) carry it too.
    assert missing == 403
    assert {k.lower(): v for k, v in error_headers.items()}[
        "access-control-allow-origin"] == origin


def test_several_origins_are_answered_one_at_a_time(
    sdeliver, tmp_path: Path, endpoint: str
) -> None:  # type: ignore[no-untyped-def]
    cors = "  cors:\n    origins: [http://a.example, http://b.example]\n    max_age: 60\n"
    with new_app(sdeliver, tmp_path, endpoint, "many", "") as directory:
        _no_e2e(directory)
        _with_cors(directory, cors)
        _init_and_deploy(sdeliver, directory)
        api, _ = _urls(directory, "test")

        answers = {o: _preflight(api, o)[1] for o in ("http://b.example", "http://c.example")}

    assert answers["http://b.example"]["access-control-allow-origin"] == "http://b.example"
    assert "access-control-allow-origin" not in answers["http://c.example"]
    assert answers["http://b.example"]["access-control-max-age"] == "60"


def test_no_environment_serves_before_its_first_release(
    sdeliver, tmp_path: Path, endpoint: str
) -> None:  # type: ignore[no-untyped-def]
    with new_app(sdeliver, tmp_path, endpoint, "fresh", "") as directory:
        _no_e2e(directory)
        result = sdeliver("init", "--yes", cwd=directory)
        assert result.code == 0, result.output
        api, site = _urls(directory, "prod")
        before = _request(api + "hello")
        config = json.loads(_request(site + "config.json")[2])
        result = sdeliver("deploy", "--env", "test", cwd=directory)
        assert result.code == 0, result.output
        test_api, _ = _urls(directory, "test")
        test_answer = _request(test_api + "hello")
        prod_answer = _request(api + "hello")
        status = sdeliver("--json", "status", cwd=directory)
        table = sdeliver("status", cwd=directory)

    assert before[0] == 503 and json.loads(before[2]) == {"message": "no release yet"}
    assert config["release"] is None and config["status"] == "no release yet"
    assert test_answer[0] == 200
    assert prod_answer[0] == 503  # test's release is not prod's until promoted
    prod = json.loads(status.stdout)
    prod = prod["environments"]["prod"]
    assert prod["release"] is None and prod["no_release"] is True
    assert "no release yet" in table.stdout


FOREIGN = """\
openapi: 3.0.1
info: {title: x, version: "1.0"}
paths:
  /hello:
    get:
      responses: {"200": {description: ok}}
  /legacy:
    get:
      responses: {"200": {description: ok}}
      x-amazon-apigateway-integration:
        type: aws_proxy
        httpMethod: POST
        uri: arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:999999999999:function:other:${stageVariables.lambdaAlias}/invocations
  /proxied:
    get:
      responses: {"200": {description: ok}}
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: GET
        uri: https://example.com/
"""


def test_a_foreign_integration_is_warned_refused_and_never_proxied_locally(
    sdeliver, tmp_path: Path, endpoint: str
) -> None:  # type: ignore[no-untyped-def]
    with new_app(sdeliver, tmp_path, endpoint, "foreign", "") as directory:
        _no_e2e(directory)
        (directory / "api" / "openapi.yaml").write_text(FOREIGN)

        validated = sdeliver("config", "validate", cwd=directory)
        refused = sdeliver("init", "--yes", cwd=directory)
        _with_cors(directory, "  allow_foreign_integrations: true\n")
        _init_and_deploy(sdeliver, directory)
        api, _ = _urls(directory, "test")
        legacy = _request(api + "legacy")
        proxied = _request(api + "proxied")
        hello = _request(api + "hello")

    assert validated.code == 0
    assert "GET /legacy" in validated.output and "lambdaAlias" in validated.output
    assert "eu-west-1" in validated.output and "/proxied" not in validated.output
    assert refused.code == 2
    assert "GET /legacy" in refused.output and "allow_foreign_integrations" in refused.output
    assert legacy[0] == 501 and "other" in json.loads(legacy[2])["sdeliver"]
    assert proxied[0] == 501 and "http_proxy" in json.loads(proxied[2])["sdeliver"]
    assert hello[0] == 200


# -- a real browser ------------------------------------------------------------------------

PREFLIGHTED = 'fetch(config.apiBaseurl + "hello", {headers: {"Content-Type": "application/json"}})'


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install "
                    "chromium): the browser test needs a real browser's CORS checks")
def test_a_browser_shows_the_api_answer_from_the_site_across_origins(
    sdeliver, tmp_path: Path, endpoint: str
) -> None:  # type: ignore[no-untyped-def]
    with new_app(sdeliver, tmp_path, endpoint, "browser", "") as directory:
        _no_e2e(directory)
        script = directory / "site" / "app.js"
        # A request a browser preflights (a JSON content type), as a real app's would be.
        script.write_text(script.read_text().replace('fetch(config.apiBaseurl + "hello")',
                                                     PREFLIGHTED))
        assert PREFLIGHTED in script.read_text()
        _init_and_deploy(sdeliver, directory)
        _, site = _urls(directory, "test")
        without = _chromium(site, tmp_path / "profile")
        _with_cors(directory)
        result = sdeliver("deploy", "--env", "test", cwd=directory)
        assert result.code == 0, result.output

        dom = _chromium(site, tmp_path / "profile2")

    # Without api.cors the browser refuses the API's answer, as it would on AWS.
    assert "the API did not answer" in without, without
    assert "Hello, world! (API v1)" in dom, dom
    assert "test · release" in dom


def _chromium(url: str, profile: Path) -> str:
    assert CHROMIUM is not None
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={profile}", "--dump-dom",
         "--virtual-time-budget=5000", url],
        capture_output=True, text=True, timeout=60, check=False,
    )
    return done.stdout
