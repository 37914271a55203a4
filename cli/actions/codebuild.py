"""`python -m sdeliver.actions.codebuild`: one pipeline step inside sdeliver's CodeBuild
project (`pipeline.build: codebuild`), the way the worker function runs it in Lambda.

CodeBuild has already extracted the action's input artifact into CODEBUILD_SRC_DIR and
uploads the output artifact from there (the buildspec's `artifacts`), so this only runs
the step SDELIVER_ACTION names (against SDELIVER_ENV) through the same operation, and
exits 0, or non-zero with one line saying why: CodePipeline shows the build as failed.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import time
import traceback
from collections.abc import Mapping
from pathlib import Path

from ..errors import EXIT_FAILED, EXIT_USAGE, EnvironmentLocked, SdeliverError
from ..operations.pipeline import project_at
from ..operations.pipeline_actions import run_action
from ..pipeline_spec import ACTIONS
from ..release import CACHE
from .worker import LogProgress, own_aws

# The Lambda worker returns to CodePipeline and is invoked again while a lease is held;
# a build waits for it instead, this long at most.
LOCK_WAIT_SECONDS = 600
LOCK_POLL_SECONDS = (10.0, 20.0)


def fail(message: str, code: int = EXIT_FAILED) -> int:
    print(f"error: {' '.join(message.split())}", file=sys.stderr, flush=True)
    return code


def run(environ: Mapping[str, str]) -> int:
    tree = Path(environ.get("CODEBUILD_SRC_DIR") or os.getcwd())
    try:
        return _step(environ, tree)
    finally:
        # The tree is the output artifact: the release marker goes on to the deploy actions,
        # the build cache (a second copy of the zips) does not, as with the worker's upload.
        shutil.rmtree(tree / CACHE, ignore_errors=True)


def _step(environ: Mapping[str, str], tree: Path) -> int:
    action = environ.get("SDELIVER_ACTION", "")
    env = environ.get("SDELIVER_ENV") or None
    if action not in ACTIONS:
        return fail(f"SDELIVER_ACTION={action!r} is not one of {', '.join(ACTIONS)}", EXIT_USAGE)
    # The input artifact's revision (a commit, an S3 version), as the worker records it.
    revision = environ.get("CODEBUILD_RESOLVED_SOURCE_VERSION") or None
    progress = LogProgress()
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            project = project_at(tree, own_aws(), progress)
            result = run_action(project, action, env, revision=revision)
            break
        except EnvironmentLocked as err:
            if time.monotonic() >= deadline:
                return fail(f"{err.message} (waited {LOCK_WAIT_SECONDS}s)", err.exit_code)
            progress.step(f"waiting: {err.message}")
            time.sleep(random.uniform(*LOCK_POLL_SECONDS))  # noqa: S311 - jitter, not secrets
        except SdeliverError as err:
            return fail(err.message, err.exit_code)
        except Exception as err:  # a bug: its traceback in the log, then the one line
            traceback.print_exc(file=sys.stdout)
            return fail(f"internal error in sdeliver: {type(err).__name__}: {err}")
    if not result.ok:
        return fail(result.summary)
    progress.step(f"{action}: {result.summary}")
    return 0


def main() -> int:
    return run(os.environ)


if __name__ == "__main__":
    sys.exit(main())
