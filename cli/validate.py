"""What `config validate` checks beyond the schema: the files sdeliver.yaml names, and a
runtime AWS still accepts. No AWS calls.

Loading a config checks only the document itself (a deploy on another machine may build
the sources first); `config validate` is where a user asks whether it will all work.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .config import Config, _Lines, _where
from .errors import ConfigError
from .local.runner import local_runtime_problem
from .openapi import foreign_integrations, load_document, stage_variables, to_openapi3
from .yamlsafe import compose

# Runtimes AWS has deprecated: it applies no more security patches, and then blocks
# creating functions with them, then updating them. From the "Deprecated runtimes" table of
# https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html#runtimes-deprecated
# (as of November 2026). botocore's Runtime enum still lists them all, so it cannot tell.
DEPRECATED_RUNTIMES = frozenset({
    "python2.7", "python3.6", "python3.7", "python3.8", "python3.9",
    "nodejs", "nodejs4.3", "nodejs4.3-edge", "nodejs6.10", "nodejs8.10", "nodejs10.x",
    "nodejs12.x", "nodejs14.x", "nodejs16.x", "nodejs18.x", "nodejs20.x",
    "java8",
    "dotnetcore1.0", "dotnetcore2.0", "dotnetcore2.1", "dotnetcore3.1", "dotnet5.0",
    "dotnet6", "dotnet7",
    "ruby2.5", "ruby2.7", "ruby3.2",
    "go1.x", "provided",
})


# Commands the worker Lambda (a Python runtime with boto3, nothing else) does not have, and
# the modules `python -m` cannot find there. CodeBuild's standard image has them all.
NOT_IN_LAMBDA = frozenset({
    "pip", "pip3", "pytest", "tox", "nox", "poetry", "pipenv", "uv", "hatch", "ruff", "mypy",
    "npm", "npx", "node", "yarn", "pnpm", "make", "gcc", "docker", "mvn", "gradle", "go",
    "cargo", "java", "dotnet", "ruby", "bundle", "git",
})


def runner_warnings(config: Config) -> list[str]:
    """Commands that need a toolchain the pipeline's runner lacks (file:line: key: why).

    Only `pipeline.build: lambda` has such gaps: the worker function has Python and boto3
    but no pip, pytest, npm or node, and 512 MB of /tmp. A warning, not an error: the
    command may only run by hand, or the tool may be vendored in the source.
    """
    if config.pipeline is None or config.pipeline.build != "lambda":
        return []
    lines = _lines(config.path)
    commands = [(("build", "commands", str(i)), c) for i, c in enumerate(config.build.commands)]
    commands += [(("environments", env, "e2e"), e.e2e)
                 for env, e in config.environments.items() if e.e2e]
    found = []
    for loc, command in commands:
        missing = sorted(_tools(command) & NOT_IN_LAMBDA)
        if missing:
            where = _where(config.path, lines.line_of(loc))
            found.append(
                f"{where}: {'.'.join(loc)}: needs {', '.join(missing)}, which the pipeline's "
                "worker Lambda lacks (pipeline.build: lambda); use build: codebuild"
            )
    return found


def _tools(command: str) -> set[str]:
    """The programs a shell command runs, and the modules of its `python -m` calls."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        words = command.split()
    tools = set()
    starts = True
    for index, word in enumerate(words):
        if word in ("&&", "||", ";", "|") or word.endswith(";"):
            starts = True
            continue
        if starts and "=" not in word:
            tools.add(Path(word).name)
            starts = False
        if word == "-m" and index + 1 < len(words):
            tools.add(words[index + 1].split(".")[0])
    return tools



def check_files(config: Config) -> list[str]:
    """Raise one ConfigError listing every problem (file:line: key: problem), or return the
    warnings (what deploy may refuse, e.g. foreign integrations)."""
    lines = _lines(config.path)
    problems: list[str] = []
    warnings: list[str] = []

    def problem(*loc: str, message: str) -> None:
        problems.append(f"{_where(config.path, lines.line_of(loc))}: {'.'.join(loc)}: {message}")

    runtime = config.function.runtime
    if runtime in DEPRECATED_RUNTIMES:
        problem("function", "runtime",
                message=f"{runtime} is deprecated: AWS no longer accepts it for new or updated "
                "functions (python3.12, nodejs22.x, ... are current)")
    elif (why := local_runtime_problem(runtime)) is not None:
        # AWS may run it; sdeliver's local mode cannot: said now, refused by --local commands.
        warnings.append(f"{_where(config.path, lines.line_of(('function', 'runtime')))}: "
                        f"function.runtime: {why} (--local is refused for it)")
    _directory(config, "function", "source", config.function.source, problem)
    if config.site is not None:
        _directory(config, "site", "source", config.site.source, problem)
    if config.api.openapi is not None:

        try:  # the same loader deploy uses: what passes here builds there
            document = load_document(SimpleNamespace(config=config), config.api.openapi)  # type: ignore[arg-type]
        except ConfigError as err:
            problem("api", "openapi", message=err.message.removeprefix("api.openapi: "))
        else:
            warnings += _foreign(config, document, lines)
    if len(problems) == 1:
        raise ConfigError(problems[0])
    if problems:
        raise ConfigError(f"{config.path}: {len(problems)} errors:\n  " + "\n  ".join(problems))
    return warnings


def _foreign(config: Config, document: dict[str, Any], lines: _Lines) -> list[str]:
    """Operations whose own integration deploy refuses (unless allowed). The account is
    not known without AWS: deploy checks it."""

    assert config.api.openapi is not None
    try:
        converted = to_openapi3(document, config.api.openapi)
    except ConfigError:  # deploy reports it, with the rest of the conversion
        return []
    found = foreign_integrations(converted, region=config.region, account=None,
                                 known=stage_variables(config))
    where = _where(config.path, lines.line_of(("api", "openapi")))
    allowed = config.api.allow_foreign_integrations
    then = "allowed by api.allow_foreign_integrations" if allowed else (
        "deploy refuses it unless api.allow_foreign_integrations is true")
    return [f"{where}: api.openapi: {config.api.openapi}: {item} ({then})" for item in found]


def _directory(config: Config, section: str, key: str, value: str, problem) -> None:  # type: ignore[no-untyped-def]
    path = config.resolve(value)
    if not path.exists():
        problem(section, key, message=f"{value} does not exist in {config.project_dir}")
    elif not path.is_dir():
        problem(section, key, message=f"{value} is not a directory")


def _lines(path: Path) -> _Lines:
    """Where each key stands (the document already parsed once: it is valid YAML)."""
    lines = _Lines()
    node = compose(path.read_text(encoding="utf-8-sig"))
    if node is not None:
        lines.walk(node, ())
    return lines
