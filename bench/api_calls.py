"""Benchmark 4: AWS calls per command — reads and writes counted by sdeliver's botocore
hook (SDELIVER_CALL_LOG) — vs the minimum a hand-written boto3 script needs for the same
result (the reasoning for each minimum is in bench/RESULTS.md).

Goal: writes equal the minimum; zero writes for an unchanged deploy and a converged
reconcile.

Reproduce: python bench/api_calls.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from common import (
    PYTHON,
    counted,
    create_zone,
    figure,
    heading,
    moto_server,
    save,
    scratch,
    sdeliver,
    verdict,
    write_project,
)

# The fewest writes a hand-written boto3 script needs for the same end state, and the two
# more (create and delete the environment's lease) that the same guarantee against a
# concurrent release costs; the reasoning is in bench/RESULTS.md.
MINIMUM_WRITES = {
    "init (empty account)": (31, 0),
    "deploy (unchanged)": (0, 0),
    "reconcile (converged)": (0, 0),
    "promote test->prod": (7, 2),
    "rollback prod": (4, 2),
}

SCENARIOS = [
    # (label, argv, counted?) in order: each leaves the state the next one needs.
    ("init (empty account)", ["init", "--yes"], True),
    ("deploy (first)", ["deploy", "--env", "test"], False),
    ("deploy (unchanged)", ["deploy", "--env", "test"], True),
    ("reconcile (converged)", ["reconcile", "--yes"], True),
    ("promote test->prod", ["promote", "test", "prod"], True),
    ("edit the code, deploy", ["deploy", "--env", "test"], False),
    ("promote the new release", ["promote", "test", "prod"], False),
    ("rollback prod", ["rollback", "--alias", "prod"], True),
]


def main() -> None:
    heading("4. AWS calls per command (reads / writes)")
    results: dict[str, object] = {}
    met_all = True
    with scratch("calls") as work, moto_server() as server:
        create_zone(server)  # users bring their public hosted zone
        project = write_project(work / "project")
        log = work / "calls.log"
        for label, args, count in SCENARIOS:
            if label.startswith("edit"):
                app = project / "app" / "app.py"
                app.write_text(app.read_text() + "\n# a new release\n")
            done, calls = counted(sdeliver(*args), cwd=project, endpoint=server.endpoint, log=log)
            if not count:
                figure(f"({label})", f"{calls.reads} reads, {calls.writes} writes, "
                       f"{done.seconds:.1f}s")
                continue
            state, lease = MINIMUM_WRITES[label]
            minimum = state + lease
            met = calls.writes == minimum
            met_all &= met
            results[label] = {
                "reads": calls.reads, "writes": calls.writes, "minimum_writes": minimum,
                "minimum_state": state, "minimum_lease": lease,
                "met": met, "seconds": done.seconds, "write_ops": calls.write_ops(),
                "read_ops": calls.read_ops(),
            }
            wanted = f"minimum {state}" + (f" + {lease} lease" if lease else "")
            figure(label, f"{calls.reads} reads, {calls.writes} writes ({wanted}) "
                   + verdict("writes = minimum", met),
                   f"SDELIVER_CALL_LOG=calls.log sdeliver {' '.join(args)}")
            for op, n in sorted(calls.write_ops().items()):
                print(f"        write {op} x{n}")
            if label.startswith("init") and "s3 PutBucketEncryption" in calls.write_ops():
                print("        (moto gives a new bucket no default encryption and no public access"
                      " block; S3 does, and there sdeliver reads them and skips both writes)")
        results["goal_met"] = met_all
        print(f"  reproduce: {PYTHON} bench/api_calls.py")
        save("api_calls", results)
        (Path(work) / "done").write_text(json.dumps(results))


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"  ({time.monotonic() - started:.0f}s)")
