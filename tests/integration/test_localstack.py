"""Issue 17's "done when": the sample app, `pipeline:` section and all, delivered through an
endpoint that answers as LocalStack community does (tests/localstack_stub.py) — provisioned
with the pipeline left out, deployed, promoted, rolled back and destroyed, its e2e run
against the site URL that LocalStack serves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.helpers import CallLog
from tests.localstack_stub import LocalStackStub
from tests.unit.test_localstack import get

pytestmark = pytest.mark.integration

HOSTS = {env: f"{bucket}.s3-website.localhost.localstack.cloud"
         for env, bucket in {"test": "test.dromedary.example.com",
                             "prod": "dromedary.example.com"}.items()}
# The e2e: the site answers at SDELIVER_SITE_URL (its host resolved to 127.0.0.1, as
# *.localhost.localstack.cloud is) with the release's index.html.
CHECK_SITE = """\
import http.client, os, sys, urllib.parse
url = urllib.parse.urlsplit(os.environ["SDELIVER_SITE_URL"])
assert url.hostname.endswith(".s3-website.localhost.localstack.cloud"), url
conn = http.client.HTTPConnection("127.0.0.1", url.port, timeout=10)
conn.request("GET", "/", headers={"Host": url.netloc})
sys.exit(0 if conn.getresponse().status == 200 else 1)
"""


def test_the_sample_app_is_delivered_through_localstack(
    sdeliver, project_dir: Path, hosted_zone: str, endpoint: str,  # type: ignore[no-untyped-def]
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    (project_dir / "check_site.py").write_text(CHECK_SITE)
    config = project_dir / "sdeliver.yaml"
    config.write_text(config.read_text().replace("e2e: python -m pytest tests/e2e -q",
                                                 "e2e: python check_site.py"))
    index = (project_dir / "site" / "index.html").read_bytes()
    calls = CallLog(tmp_path / "calls.log", monkeypatch)
    with LocalStackStub(endpoint) as stub:
        monkeypatch.setenv("SDELIVER_ENDPOINT_URL", stub.url)
        init = sdeliver("init", "--yes", "--skip", "pipeline", cwd=project_dir)
        assert init.code == 0, init.output
        assert init.stderr.count("pipeline: left out") == 1
        monkeypatch.setenv("SDELIVER_SKIP", "pipeline")

        first = sdeliver("deploy", "--json")
        assert first.code == 0, first.output
        assert json.loads(first.stdout)["e2e"] == "passed"
        assert get(stub.url, HOSTS["test"]) == (200, index)

        calls.reset()
        again = sdeliver("deploy", "--json")  # nothing changed: the API is not imported again
        assert again.code == 0, again.output
        assert not any(c.endswith(" PutRestApi") for c in calls.calls())

        promoted = sdeliver("promote", "test->prod", "--json")
        assert promoted.code == 0, promoted.output
        assert json.loads(promoted.stdout)["e2e"] == "passed"
        assert get(stub.url, HOSTS["prod"]) == (200, index)

        (project_dir / "site" / "index.html").write_bytes(b"<h1>v2</h1>\n")
        assert sdeliver("deploy").code == 0
        assert sdeliver("promote", "test->prod").code == 0
        assert get(stub.url, HOSTS["prod"]) == (200, b"<h1>v2</h1>\n")
        back = sdeliver("rollback", "--alias", "prod", "--json")
        assert back.code == 0, back.output
        assert get(stub.url, HOSTS["prod"]) == (200, index)

        status = json.loads(sdeliver("status", "--json").stdout)["environments"]
        assert {env: status[env]["site_url"] for env in HOSTS} == {
            env: f"http://{host}:{stub.port}/" for env, host in HOSTS.items()}

        gone = sdeliver("destroy", "--yes", "--purge")
        assert gone.code == 0, gone.output
        assert set(stub.refused) == {"s3 DeleteObject If-Match"}  # no CodePipeline, no CodeBuild


def test_the_readmes_localstack_lines_run_as_written(
    project_dir: Path, hosted_zone: str, endpoint: str,  # type: ignore[no-untyped-def]
) -> None:
    """The README's sdeliver lines for LocalStack, verbatim, against the stub (LocalStack's
    own start, the aws CLI and the exports are its setup, done here by the fixtures)."""
    import os
    import subprocess
    import sys

    from tests.integration.test_local import readme_block

    lines = [line for line in readme_block("## With LocalStack") if line.startswith("sdeliver ")]
    assert [line.split("#")[0].split()[1] for line in lines] == [
        "init", "deploy", "promote", "status", "destroy"]
    (project_dir / "check_site.py").write_text(CHECK_SITE)
    config = project_dir / "sdeliver.yaml"
    config.write_text(config.read_text().replace("e2e: python -m pytest tests/e2e -q",
                                                 "e2e: python check_site.py"))
    with LocalStackStub(endpoint) as stub:
        env = {**os.environ, "SDELIVER_ENDPOINT_URL": stub.url, "SDELIVER_SKIP": "pipeline",
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        done = subprocess.run(["bash", "-c", "set -e\n" + "\n".join(lines)], cwd=project_dir,
                              env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pipeline: left out" in done.stderr
    assert "s3-website.localhost.localstack.cloud" in done.stdout
