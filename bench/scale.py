"""Benchmark 5: scale — a converged `reconcile` and `status` with 1, 2, 5 and 10
environments, and `history` of a ledger with 10, 100 and 1,000 entries: wall time and AWS
calls at each size.

Goal: calls and time grow linearly (or less), not worse: calls fit a + b*n exactly, and the
time each added environment (entry) costs does not grow with n (within 1.5x, for noise).

Reproduce: python bench/scale.py [--envs 1,2,5,10] [--entries 10,100,1000]
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from common import (
    PYTHON,
    Server,
    clean_env,
    counted,
    create_zone,
    figure,
    heading,
    moto_server,
    run,
    save,
    scratch,
    sdeliver,
    verdict,
    write_project,
)


def linear(sizes: list[int], values: list[float], *, noise: float) -> bool:
    """Whether the last step costs no more per unit than the whole range does on average
    (so the growth is linear or less), give or take `noise` in absolute terms."""
    overall = (values[-1] - values[0]) / (sizes[-1] - sizes[0])
    last = (values[-1] - values[-2]) / (sizes[-1] - sizes[-2])
    return last <= 1.5 * max(overall, 0) + noise / (sizes[-1] - sizes[-2]) if noise else (
        last <= overall + 1e-9
    )


def best_of(times: int, argv: list[str], **kwargs: Any) -> tuple[Any, Any]:
    """The fastest of a few runs (the first warms the server), with its calls."""
    runs = [counted(argv, **kwargs) for _ in range(times)]
    return min(runs, key=lambda r: r[0].seconds)


def environments(server: Server, sizes: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in sizes:
        server.reset()
        create_zone(server)
        with scratch(f"scale-{n}") as work:
            names = [f"env{i:02d}" for i in range(1, n + 1)]
            project = write_project(work / "project", names)
            log = work / "calls.log"
            env = clean_env(SDELIVER_ENDPOINT_URL=server.endpoint)
            run(sdeliver("init", "--yes"), cwd=project, env=env, timeout=600)
            row: dict[str, Any] = {}
            for label, args in (("reconcile", ["reconcile", "--yes"]), ("status", ["status"])):
                done, calls = best_of(2, sdeliver(*args), cwd=project,
                                      endpoint=server.endpoint, log=log)
                row[label] = {"seconds": done.seconds, "reads": calls.reads,
                              "writes": calls.writes}
            out[str(n)] = row
            figure(f"{n:>2} environments",
                   "reconcile {seconds:.2f}s {reads} reads {writes} writes; ".format(
                       **row["reconcile"])
                   + "status {seconds:.2f}s {reads} reads".format(**row["status"]))
    return out


def entry(seq: int) -> bytes:
    return json.dumps({
        "seq": seq, "env": "test", "action": "deploy", "outcome": "succeeded",
        "release": f"r-{seq:012x}", "lambda_version": str(seq), "code_sha256": "x" * 44,
        "api_deployment_id": f"d{seq}", "who": "arn:aws:iam::123456789012:user/bench",
        "when": "2026-01-01T00:00:00Z", "e2e": "passed", "replaces": seq - 1 or None,
    }).encode()


def history(server: Server, sizes: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    server.reset()
    create_zone(server)
    with scratch("history") as work:
        project = write_project(work / "project")
        log = work / "calls.log"
        run(sdeliver("init", "--yes"), cwd=project,
            env=clean_env(SDELIVER_ENDPOINT_URL=server.endpoint))
        s3 = server.client("s3")
        bucket = next(b["Name"] for b in s3.list_buckets()["Buckets"] if "artifacts" in b["Name"])
        written = 0
        for n in sizes:
            def put(seq: int) -> None:
                s3.put_object(Bucket=bucket, Body=entry(seq),
                              Key=f"sdeliver/dromedary/releases/test/{seq:010d}.json")

            with ThreadPoolExecutor(8) as pool:
                list(pool.map(put, range(written + 1, n + 1)))
            written = n
            row: dict[str, Any] = {}
            for label, args in (("history", ["history", "--env", "test", "--json"]),
                                ("history --limit 10",
                                 ["history", "--env", "test", "--limit", "10", "--json"])):
                done, calls = counted(sdeliver(*args), cwd=project, endpoint=server.endpoint,
                                      log=log)
                shown = len(json.loads(done.stdout)["entries"])
                row[label] = {"seconds": done.seconds, "reads": calls.reads,
                              "writes": calls.writes, "entries": shown}
            out[str(n)] = row
            figure(f"{n:>5} ledger entries",
                   "history {seconds:.2f}s {reads} reads; ".format(**row["history"])
                   + "--limit 10 {seconds:.2f}s {reads} reads".format(
                       **row["history --limit 10"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--envs", default="1,2,5,10")
    parser.add_argument("--entries", default="10,100,1000")
    options = parser.parse_args()
    env_sizes = [int(x) for x in options.envs.split(",")]
    entry_sizes = [int(x) for x in options.entries.split(",")]
    heading("5. scale")
    results: dict[str, Any] = {}
    with moto_server() as server:
        results["environments"] = envs = environments(server, env_sizes)
        results["history"] = hist = history(server, entry_sizes)
    verdicts = {}
    for label in ("reconcile", "status"):
        reads = [envs[str(n)][label]["reads"] for n in env_sizes]
        seconds = [envs[str(n)][label]["seconds"] for n in env_sizes]
        verdicts[f"{label} calls"] = linear(env_sizes, reads, noise=0)
        verdicts[f"{label} time"] = linear(env_sizes, seconds, noise=0.3)
    reads = [hist[str(n)]["history"]["reads"] for n in entry_sizes]
    seconds = [hist[str(n)]["history"]["seconds"] for n in entry_sizes]
    verdicts["history calls"] = linear(entry_sizes, reads, noise=0)
    verdicts["history time"] = linear(entry_sizes, seconds, noise=0.3)
    for label, met in verdicts.items():
        figure(label, verdict("grows linearly or less", met))
    results["verdicts"] = verdicts
    results["goal_met"] = all(verdicts.values())
    print(f"  reproduce: {PYTHON} bench/scale.py --envs {options.envs} "
          f"--entries {options.entries}")
    save("scale", results)


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"  ({time.monotonic() - started:.0f}s)")
