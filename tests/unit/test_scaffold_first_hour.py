"""The first hour (issue 13): `init --app X --yes` in an empty directory writes the app
`new` writes; the scaffold's e2e runs with the standard library alone."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sdeliver.config import load_config

from tests.unit.test_new import FILES, written


def test_init_in_an_empty_directory_writes_the_app_new_writes(sdeliver, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / ".git").mkdir()  # a fresh `git init` is still an empty directory
    result = sdeliver("init", "--app", "shop", "--yes", "--write-only", cwd=tmp_path)
    assert result.code == 0, result.output
    assert written(tmp_path) - {p for p in written(tmp_path) if p.startswith(".git/")} == FILES
    assert "as 'sdeliver new' does" in result.stderr
    assert load_config(tmp_path / "sdeliver.yaml").app == "shop"
    assert sdeliver("config", "validate", cwd=tmp_path).code == 0


def test_init_names_the_region_given(sdeliver, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = sdeliver("init", "--app", "shop", "--yes", "--write-only", "--region", "eu-west-1",
                      cwd=tmp_path)
    assert result.code == 0, result.output
    assert load_config(tmp_path / "sdeliver.yaml").region == "eu-west-1"


def test_init_beside_existing_code_writes_only_the_configuration(sdeliver, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "app.py").write_text("def handler(e, c):\n    return {}\n")
    result = sdeliver("init", "--app", "shop", "--yes", "--write-only", cwd=tmp_path)
    assert result.code == 0, result.output
    assert written(tmp_path) == {"app/app.py", "sdeliver.yaml"}


def test_init_in_an_empty_directory_provisions(sdeliver, tmp_path: Path, emulator: str) -> None:  # type: ignore[no-untyped-def]
    """The --help example, verbatim: `sdeliver init --app shop --yes` (the scaffold's HTTPS
    hosting: on sdeliver's emulator, in the scaffold's zone example.com)."""
    result = sdeliver("init", "--app", "shop", "--yes", cwd=tmp_path)
    assert result.code == 0, result.output


# -- the scaffold's e2e without pytest ---------------------------------------------------------


class _App(http.server.BaseHTTPRequestHandler):
    """What a deployed scaffold serves: the site at /site/, the API at /api/."""

    version = "v1"

    def do_GET(self) -> None:
        base = f"http://{self.headers['Host']}"
        routes = {
            "/site/": ("text/html", b'<html><script src="app.js"></script></html>'),
            "/site/config.json": ("application/json", json.dumps(
                {"apiBaseurl": f"{base}/api/", "env": "test", "version": "x"}).encode()),
            "/api/hello?name=e2e": ("application/json", json.dumps(
                {"message": "Hello, e2e!", "version": self.version}).encode()),
            "/api/health": ("application/json", json.dumps({"ok": True}).encode()),
        }
        content_type, body = routes.get(self.path, ("text/plain", b""))
        self.send_response(200 if self.path in routes else 404)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def deployed() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _App)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run_e2e(app: Path, base: str) -> subprocess.CompletedProcess[str]:
    """As sdeliver runs it, but with -S: no site-packages, so certainly no pytest."""
    config = load_config(app / "sdeliver.yaml")
    command = config.environments["test"].e2e
    assert command == "python tests/e2e/test_app.py"
    env = {"SDELIVER_API_URL": f"{base}/api/", "SDELIVER_SITE_URL": f"{base}/site/",
           "SDELIVER_ENV": "test", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-S", *command.split()[1:]], cwd=app, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_scaffold_e2e_passes_with_the_standard_library_alone(sdeliver, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                 deployed: str) -> None:
    assert sdeliver("new", "shop", cwd=tmp_path).code == 0
    done = run_e2e(tmp_path / "shop", deployed)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "all passed"


def test_the_scaffold_e2e_fails_with_exit_1_naming_each_failure(sdeliver, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                deployed: str, monkeypatch) -> None:
    monkeypatch.setattr(_App, "version", "")  # hello answers without a version
    assert sdeliver("new", "shop", cwd=tmp_path).code == 0
    done = run_e2e(tmp_path / "shop", deployed)
    assert done.returncode == 1
    assert "FAIL test_hello_answers_with_a_greeting_and_the_version" in done.stdout
    assert done.stdout.splitlines()[-1] == "1 failed"
