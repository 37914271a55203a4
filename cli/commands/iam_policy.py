"""`sdeliver iam-policy`: the IAM policy an operator or a CI role needs for this app."""

from __future__ import annotations

import typer

from ..context import state
from ._shared import epilog

EPILOG = epilog(
    "sdeliver iam-policy > sdeliver-policy.json",
    "aws iam put-role-policy --role-name ci-deployer --policy-name sdeliver "
    "--policy-document file://sdeliver-policy.json",
)


def iam_policy(ctx: typer.Context) -> None:
    """Print the least-privilege IAM policy that runs every sdeliver command for this app.

    Covers init, reconcile, deploy, promote, rollback, status, history, unlock and destroy:
    each statement lists the actions sdeliver calls, on the resources sdeliver.yaml names
    (buckets, the function, roles under /sdeliver/, the REST APIs, the pipeline). No `*`
    action. The document goes to stdout (also with --json); attach it to the operator's
    user or role.
    """
    from ..operations.iam_policy import operator_policy
    from ..output import emit_json, info

    g = state(ctx)
    project = g.project()
    emit_json(operator_policy(project))
    if not g.json:
        info(f"attach this policy to the role or user that runs sdeliver for {project.app}")
