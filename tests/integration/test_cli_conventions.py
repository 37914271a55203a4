"""What every command does alike (issue 13): data on stdout and progress on stderr, one
JSON error object with --json, --debug, suggestions, help with examples."""

from __future__ import annotations

import json
from pathlib import Path


def test_status_table_goes_to_stdout(sdeliver, project_dir: Path, endpoint: str) -> None:
    result = sdeliver("status", cwd=project_dir)
    assert result.code == 0, result.output
    assert "env" in result.stdout and "version" in result.stdout and "prod" in result.stdout
    assert result.stderr == ""


def test_history_table_goes_to_stdout(capsys) -> None:  # type: ignore[no-untyped-def]
    from sdeliver.commands.history import render_entries

    render_entries("prod", [{
        "seq": 1, "when": "2026-11-29T19:01:23Z", "action": "promote", "outcome": "succeeded",
        "release": "r-999cb239a58b", "lambda_version": "1", "e2e": "passed",
        "who": "arn:aws:sts::123456789012:user/moto",
    }])
    out, err = capsys.readouterr()
    assert "r-999cb239a58b" in out and "moto" in out
    assert err == ""
    render_entries("test", [])
    out, err = capsys.readouterr()
    assert out == "test: no releases yet\n" and err == ""


def _error_object(stdout: str) -> dict:  # type: ignore[type-arg]
    document = json.loads(stdout)  # one document, nothing else on stdout
    assert set(document) == {"error"}
    assert set(document["error"]) == {"code", "message", "hint"}
    return document["error"]  # type: ignore[no-any-return]


def test_json_failure_is_one_error_object(sdeliver, project_dir: Path, endpoint: str) -> None:
    failed = sdeliver("history", "--env", "prod", "--json", cwd=project_dir)  # no ledger yet
    assert failed.code == 1
    error = _error_object(failed.stdout)
    assert error["code"] == 1 and "bucket does not exist" in error["message"]
    assert error["hint"] == "run 'sdeliver reconcile' to create what sdeliver.yaml declares"
    assert "error:" in failed.stderr  # the line for people stays on stderr

    usage = sdeliver("--json", "status", "--env", "nope", cwd=project_dir)
    assert usage.code == 2
    assert _error_object(usage.stdout)["message"].startswith("unknown environment 'nope'")

    unknown = sdeliver("--json", "deplo", cwd=project_dir)
    assert unknown.code == 2
    assert "Did you mean 'deploy'" in _error_object(unknown.stdout)["message"]


def test_json_success_has_no_error_object(sdeliver, project_dir: Path, endpoint: str) -> None:
    result = sdeliver("status", "--json", cwd=project_dir)
    assert result.code == 0
    assert "error" not in json.loads(result.stdout)


def test_debug_shows_the_traceback(sdeliver, project_dir: Path) -> None:
    plain = sdeliver("status", "--env", "nope", cwd=project_dir)
    assert plain.code == 2 and "Traceback" not in plain.output
    debug = sdeliver("status", "--env", "nope", "--debug", cwd=project_dir)
    assert debug.code == 2  # the documented exit code still holds
    assert "Traceback" in debug.stderr and "unknown environment 'nope'" in debug.stderr
