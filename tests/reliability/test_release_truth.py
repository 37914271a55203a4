"""Release truth: after a kill (SIGKILL) or a Ctrl-C at any point of a deploy or a
promote, `status --json` names the release that actually serves, and the record and the
live pointers end up agreeing: a Ctrl-C puts back and records before exiting 130; after a
kill, the next `rollback` returns to the release that served before the killed command.

Each cut is made before the first write of each kind (as in test_interruption.py); the
second deploy and promote of the workflow are cut, so that a release served before them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import client
from tests.reliability.conftest import (
    APP,
    ARTIFACTS,
    FUNCTION,
    SITES,
    WORKFLOW,
    Crash,
    Run,
    Tripwire,
    cut_points,
    fresh_account,
    ledger_entries,
    run_step,
    run_workflow,
)
from tests.reliability.test_interruption import orphan_leases

pytestmark = pytest.mark.integration

# The command cut (the second deploy, the second promote), and the environment it moves.
CUT = {"deploy": (3, "test"), "promote": (4, "prod")}


def serving(endpoint: str, env: str) -> dict[str, Any]:
    """What the environment serves: alias version and weights, the stage's deployment,
    the release config.json names and every other site object's ETag."""
    lam, apigw, s3 = client(endpoint, "lambda"), client(endpoint, "apigateway"), client(endpoint, "s3")
    alias = lam.get_alias(FunctionName=FUNCTION, Name=env)
    api = next(a for a in apigw.get_rest_apis()["items"] if a["name"] == APP)
    objects = s3.list_objects_v2(Bucket=SITES[env]).get("Contents", [])
    config = json.loads(s3.get_object(Bucket=SITES[env], Key="config.json")["Body"].read())
    return {
        "version": alias["FunctionVersion"],
        "weights": (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {},
        "deployment": apigw.get_stage(restApiId=api["id"], stageName=env)["deploymentId"],
        "site_release": config.get("release"),
        "site": {o["Key"]: o["ETag"] for o in objects if o["Key"] != "config.json"},
    }


def status_of(sdeliver: Run, app_dir: Path, env: str) -> dict[str, Any]:
    result = sdeliver("status", "--json", cwd=app_dir)
    assert result.code == 0, result.output
    return dict(json.loads(result.stdout)["environments"][env])


def names_what_serves(
    doc: dict[str, Any], now: dict[str, Any], before: dict[str, Any], recorded: list[dict[str, Any]]
) -> list[str]:
    """What is wrong with a status document about an environment that serves `now`, after
    a killed command that wrote the ledger entries `recorded`."""
    wrong = []
    if doc["version"] != now["version"] or doc["deployment_id"] != now["deployment"]:
        wrong.append(f"status shows pointers {doc['version']}/{doc['deployment_id']}, live {now}")
    if recorded:  # it died after recording its move: the record is the truth
        if not doc["in_sync"] or doc["release"] != recorded[-1]["release"]:
            wrong.append(f"the move was recorded, yet status says {doc}")
    elif now == before:
        if not doc["in_sync"]:
            wrong.append(f"nothing moved, yet status reports drift: {doc.get('drift')}")
    elif doc["in_sync"]:
        wrong.append(f"pointers moved without a record, yet status is in sync: {doc}")
    elif now["version"] != before["version"] and doc["live"]["alias"] is None:
        wrong.append(f"the alias moved to another release, status does not name it: {doc['live']}")
    return wrong


def prepare(sdeliver: Run, app_dir: Path, endpoint: str, tripwire: Tripwire, position: int) -> None:
    fresh_account(endpoint)
    tripwire.arm(None)
    run_workflow(sdeliver, app_dir, WORKFLOW[:position])


def kinds_of(command: str, sdeliver: Run, app_dir: Path, endpoint: str, tripwire: Tripwire) -> list[str]:
    position, _ = CUT[command]
    prepare(sdeliver, app_dir, endpoint, tripwire, position)
    tripwire.arm(None)
    assert run_step(sdeliver, app_dir, WORKFLOW[position]).code == 0
    return list(tripwire.kinds)


@pytest.mark.parametrize("command", list(CUT))
def test_after_a_kill_status_names_what_serves_and_rollback_returns_to_before(
    command: str, sdeliver: Run, app_dir: Path, endpoint: str, hosted_zone: str, tripwire: Tripwire
) -> None:
    position, env = CUT[command]
    failures: list[str] = []
    cuts = cut_points(kinds_of(command, sdeliver, app_dir, endpoint, tripwire))
    for k in cuts:
        prepare(sdeliver, app_dir, endpoint, tripwire, position)
        before = serving(endpoint, env)
        entries = len(ledger_entries(endpoint)[env])
        tripwire.arm(k)
        with pytest.raises(Crash):
            run_step(sdeliver, app_dir, WORKFLOW[position])
        tripwire.arm(None)
        orphan_leases(endpoint)
        now = serving(endpoint, env)
        recorded = ledger_entries(endpoint)[env][entries:]
        doc = status_of(sdeliver, app_dir, env)
        failures += [f"k={k}: {w}" for w in names_what_serves(doc, now, before, recorded)]
        if now == before:
            continue  # nothing moved: a rollback would go further back, rightly
        back = sdeliver("rollback", "--env", env, cwd=app_dir)
        if back.code != 0:
            failures.append(f"k={k}: rollback exit {back.code}: {back.output.strip()[-300:]}")
        elif serving(endpoint, env) != before:
            failures.append(f"k={k}: rollback left {serving(endpoint, env)}, before was {before}")
        elif not status_of(sdeliver, app_dir, env)["in_sync"]:
            failures.append(f"k={k}: after the rollback status still reports drift")
    assert len(cuts) > 1
    assert failures == []


@pytest.mark.parametrize("command", list(CUT))
def test_a_ctrl_c_at_any_point_puts_back_and_records_before_exiting_130(
    command: str, sdeliver: Run, app_dir: Path, endpoint: str, hosted_zone: str, tripwire: Tripwire
) -> None:
    position, env = CUT[command]
    failures: list[str] = []
    kinds = kinds_of(command, sdeliver, app_dir, endpoint, tripwire)
    cuts = cut_points(kinds)
    for k in cuts:
        prepare(sdeliver, app_dir, endpoint, tripwire, position)
        before = serving(endpoint, env)
        entries = len(ledger_entries(endpoint)[env])
        tripwire.arm(k, interrupt=True)
        result = run_step(sdeliver, app_dir, WORKFLOW[position])
        tripwire.arm(None)
        if result.code != 130:
            failures.append(f"k={k}: exit {result.code}: {result.output.strip()[-300:]}")
            continue
        now, doc = serving(endpoint, env), status_of(sdeliver, app_dir, env)
        recorded = ledger_entries(endpoint)[env][entries:]
        if not doc["in_sync"]:
            failures.append(f"k={k}: after Ctrl-C status reports drift: {doc.get('drift')}")
        if now != before and [e["outcome"] for e in recorded] != ["succeeded"]:
            failures.append(f"k={k}: not put back ({now} != {before}), recorded {recorded}")
        if now == before and any(e["outcome"] == "succeeded" for e in recorded):
            failures.append(f"k={k}: put back, yet recorded as succeeded: {recorded}")
        # Stopped while deleting its own lease, a command leaves it: it names this process,
        # and once the process is gone the next command takes it over.
        if kinds[k] != "DeleteObject locks" and _leases(endpoint):
            failures.append(f"k={k}: a lease was left behind: {_leases(endpoint)}")
    assert len(cuts) > 1
    assert failures == []


def _leases(endpoint: str) -> list[str]:
    found = client(endpoint, "s3").list_objects_v2(Bucket=ARTIFACTS, Prefix=f"sdeliver/{APP}/locks/")
    return [o["Key"] for o in found.get("Contents", [])]
