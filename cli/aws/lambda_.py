"""Lambda as sdeliver uses it: one function's configuration, its aliases, and the two waits
every change of a function needs (Lambda applies code and settings asynchronously).

"Not there" is None; the waits are botocore's waiters (`function_updated_v2`: the last
update applied; `function_active_v2`: a new function or version ready to invoke), with the
error a waiter gives up with translated by `Aws.wait`.
"""

from __future__ import annotations

from typing import Any

from . import Aws


def get_function(aws: Aws, name: str, *, missing: bool = True) -> dict[str, Any] | None:
    """GetFunction's answer (Configuration, Code, Tags); None when there is no function."""
    found: dict[str, Any] | None = aws.call("lambda", "get_function", resource=f"function {name}",
                                            missing=missing, FunctionName=name)
    return found


def version_configuration(aws: Aws, name: str, version: str) -> dict[str, Any] | None:
    """A published version's configuration (its description names the release)."""
    found: dict[str, Any] | None = aws.call(
        "lambda", "get_function_configuration", resource=f"function {name}:{version}",
        missing=True, FunctionName=name, Qualifier=version,
    )
    return found


def get_alias(aws: Aws, name: str, alias: str) -> dict[str, Any] | None:
    """The alias (FunctionVersion, RoutingConfig, RevisionId); None when there is none."""
    found: dict[str, Any] | None = aws.call(
        "lambda", "get_alias", resource=f"alias {name}:{alias}", missing=True,
        FunctionName=name, Name=alias,
    )
    return found


def wait_updated(aws: Aws, name: str, *, delay: float = 2) -> None:
    """Until the function's last update (code or settings) is applied (polled every
    `delay` seconds: a deploy waits on its critical path with 1)."""
    aws.wait("lambda", "function_updated_v2", resource=f"function {name}", delay=delay,
             FunctionName=name)


def wait_published(aws: Aws, name: str, version: str, *, delay: float = 2) -> None:
    """Until a version PublishVersion just made can be invoked."""
    aws.wait("lambda", "published_version_active", resource=f"function {name}", delay=delay,
             FunctionName=name, Qualifier=version)


def wait_active(aws: Aws, name: str, version: str | None = None) -> None:
    """Until the new function (or one of its versions) can be invoked."""
    if version is None:
        aws.wait("lambda", "function_active_v2", resource=f"function {name}", FunctionName=name)
    else:
        aws.wait("lambda", "function_active_v2", resource=f"function {name}:{version}",
                 FunctionName=name, Qualifier=version)
