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


def _commands() -> list[list[str]]:
    """Every command's argv, groups' subcommands included."""
    import typer
    from sdeliver.app import app

    root = typer.main.get_command(app)
    found: list[list[str]] = []
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        found.append([name])
        for sub in getattr(command, "commands", {}):
            found.append([name, sub])
    return found


def test_every_command_has_examples_in_its_help(sdeliver, tmp_path: Path) -> None:
    commands = _commands()
    assert ["config", "validate"] in commands and ["pipeline", "run"] in commands
    for argv in commands:
        result = sdeliver(*argv, "--help", cwd=tmp_path)
        assert result.code == 0, argv
        assert "Examples:\n" in result.stdout, f"sdeliver {' '.join(argv)} --help has no examples"


def test_help_summaries_are_not_cut(sdeliver, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("COLUMNS", "80")
    for argv in ([], ["config"], ["local"], ["pipeline"]):
        result = sdeliver(*argv, "--help", cwd=tmp_path)
        listed = result.stdout.split("Commands:", 1)[1]
        assert "..." not in listed and "…" not in listed, listed


def test_unknown_commands_get_a_suggestion(sdeliver, tmp_path: Path) -> None:
    assert "Did you mean 'deploy'" in sdeliver("deplyo", cwd=tmp_path).stderr
    wrong = sdeliver("config", "valdate", cwd=tmp_path)
    assert wrong.code == 2 and "Did you mean 'validate'" in wrong.stderr


def test_every_config_error_on_the_command_line(sdeliver, tmp_path: Path) -> None:
    (tmp_path / "sdeliver.yaml").write_text(
        "app: shop\nfunction:\n  memroy: 256\n  timeout: 901\nenvironments: {test: {}}\n")
    result = sdeliver("config", "validate", cwd=tmp_path)
    assert result.code == 2
    assert result.stderr.splitlines() == [
        "error: sdeliver.yaml: 2 errors:",
        "  sdeliver.yaml:4: function.timeout: Input should be less than or equal to 900",
        "  sdeliver.yaml:3: function.memroy: unknown key (did you mean 'memory'?)",
    ]


def test_declining_a_prompt_says_nothing_changed(sdeliver, project_dir: Path, hosted_zone: str,
                                                  monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import typer
    from sdeliver.commands import _shared

    monkeypatch.setattr(_shared, "interactive", lambda: True)
    monkeypatch.setattr(typer, "confirm", lambda *_a, **_k: False)
    result = sdeliver("reconcile", cwd=project_dir)
    assert result.code == 0
    assert result.stderr.rstrip().endswith("Nothing changed.")


def test_what_a_shell_leaves_of_an_unquoted_route_suggests_quotes(sdeliver,
                                                                  project_dir: Path) -> None:
    result = sdeliver("promote", "test-", cwd=project_dir)
    assert result.code == 2
    assert result.stderr.splitlines() == [
        "error: 'test-' is half a route: the shell read '>' as a redirection (and may have "
        "written a file named after the target)",
        "  quote the route: sdeliver promote 'test->TARGET'",
    ]


def test_scaffold_comments_quote_the_route() -> None:
    from sdeliver.commands.new import templates

    for path in Path(str(templates())).rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert "promote test->" not in text, path


def test_every_declined_prompt_says_nothing_changed(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """destroy and unlock said nothing at all when declined."""
    import typer
    from sdeliver.commands import _shared
    from sdeliver.context import Globals

    monkeypatch.setattr(_shared, "interactive", lambda: True)
    monkeypatch.setattr(typer, "confirm", lambda *_a, **_k: False)
    assert _shared.confirm(Globals(), "Delete 3 resource(s)?") is False
    assert capsys.readouterr().err == "Nothing changed.\n"


def test_shell_completion_is_offered() -> None:
    import shlex
    import subprocess
    import sys

    # --show-completion detects the shell it runs under (shellingham, through the parent
    # processes): run from bash, as a user types it, whatever started the tests. (Two
    # commands, so that bash waits for python instead of becoming it.)
    line = f"{shlex.quote(sys.executable)} -m sdeliver --show-completion; exit $?"
    shown = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=60,
                           check=False)
    assert shown.returncode == 0, shown.stderr
    assert "_sdeliver_completion" in shown.stdout and "complete " in shown.stdout
