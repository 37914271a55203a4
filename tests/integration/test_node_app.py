"""A Node.js app with a DynamoDB table per environment, CORS to its site and a Swagger 2 API
(tests/fixtures/node-app, shaped like Stelligent's dromedary), driven through the real CLI
with `--local` exactly as a user types it: init, deploy, promote, a second release, rollback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("node") is None,
                       reason="no 'node' on PATH: the local gateway runs nodejs22.x handlers on it"),
]

FIXTURE = Path(__file__).parents[1] / "fixtures" / "node-app"
APP = "dromedary"


def _env() -> dict[str, str]:
    env = {
        **os.environ,
        # `sdeliver` and the e2e's `python` are this interpreter's.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "SDELIVER_LOCAL_IDLE": "120",  # a server a failure leaves stops by itself
    }
    env.pop("SDELIVER_ENDPOINT_URL", None)
    return env


def _sdeliver(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["sdeliver", *args], cwd=directory, env=_env(), capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, f"sdeliver {' '.join(args)}: {done.stdout}{done.stderr}"
    return done


def _config(status: dict, env: str) -> dict:
    """The API's /config answer to a request from env's site, which it allows (CORS)."""
    doc = status["environments"][env]
    site = urllib.parse.urlsplit(doc["site_url"])
    origin = f"{site.scheme}://{site.netloc}"
    request = urllib.request.Request(doc["api_url"] + "config", headers={"Origin": origin})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers.get("Access-Control-Allow-Origin") == origin
        assert origin.startswith("http://127.0.0.1:")  # not the API's origin (localhost)
        return dict(json.load(response))


def _status(directory: Path) -> dict:
    return dict(json.loads(_sdeliver(directory, "--local", "status", "--json").stdout))


def _release(directory: Path, version: str) -> None:
    handler = directory / "app" / "index.js"
    text = handler.read_text()
    assert 'const VERSION = "v1";' in text
    handler.write_text(text.replace('const VERSION = "v1";', f'const VERSION = "{version}";'))


def test_a_node_app_with_a_table_deploys_promotes_and_rolls_back_locally(tmp_path: Path) -> None:
    app = tmp_path / APP
    shutil.copytree(FIXTURE, app)
    try:
        _sdeliver(app, "--local", "init", "--yes")
        deployed = _sdeliver(app, "--local", "deploy", "--env", "test")
        assert "e2e passed" in deployed.stderr
        assert f"test: table {APP}-test-items, API v1" in deployed.stdout + deployed.stderr
        promoted = _sdeliver(app, "--local", "promote", "test->prod")
        assert "e2e passed" in promoted.stderr
        assert f"prod: table {APP}-prod-items, API v1" in promoted.stdout + promoted.stderr
        first = _status(app)["environments"]["prod"]["release"]

        _release(app, "v2")
        _sdeliver(app, "--local", "deploy", "--env", "test")
        _sdeliver(app, "--local", "promote", "test->prod")
        assert _config(_status(app), "prod") == {"table": f"{APP}-prod-items", "version": "v2"}

        _sdeliver(app, "--local", "rollback", "--alias", "prod")

        status = _status(app)
        prod, test = _config(status, "prod"), _config(status, "test")
    finally:
        stopped = subprocess.run(["sdeliver", "local", "stop"], cwd=app, env=_env(),
                                 capture_output=True, text=True, timeout=60, check=False)
    assert stopped.returncode == 0, stopped.stderr
    assert prod == {"table": f"{APP}-prod-items", "version": "v1"}  # the first release again
    assert test == {"table": f"{APP}-test-items", "version": "v2"}
    environments = status["environments"]
    assert set(environments) == {"test", "prod"}
    assert all(doc["in_sync"] for doc in environments.values()), status
    assert environments["prod"]["release"] == first  # the ledger agrees with what answers
    assert environments["test"]["release"] != first
