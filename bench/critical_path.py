"""Benchmark 6 (issue 10): each command's critical path — the AWS round trips it makes one
after another — through a loopback proxy that holds every request a fixed latency.

Round trips = (wall time with the latency − wall time without) / latency, median of 3 each
way. "Without" goes through the same proxy at 0 ms, so only the held time differs. Beside it,
the proxy's own view: the chain — the longest chain of requests each sent after the answer
to the one before it — which leaves out the client's and the server's CPU time, so it stays
the same on a loaded machine where two runs' wall times differ by several latencies; the
verdict uses the chain. The scenario is the example project (a function, an API, a site, two
environments test and prod), round after round, each on the state the last left:

  edit app/app.py, `deploy --env test`    a code change (no API or site change)
  `promote test prod`
  `rollback --alias prod`
  `reconcile --yes`                          converged
  `status`

Then a site publish of 2,000 files (bench/site_publish.py's site; what deploy does for a
site: build the zip, publish it) through the proxy vs `aws s3 sync` through the same proxy
(the aws CLI's default of 10 concurrent requests; sdeliver's 16 upload threads).

Goals: deploy ≤ 12, promote ≤ 8, rollback ≤ 8, converged reconcile ≤ 4, status ≤ 3 round
trips; publish ≤ 0.5× aws s3 sync.

Reproduce: python bench/critical_path.py [--latency-ms 100] [--runs 3] [--publish-runs 1]
           [--only deploy,promote,rollback,reconcile,status,publish] [--trace]
           [--upload-threads N]   (an experiment: publish with N upload threads)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from common import (
    PYTHON,
    clean_env,
    create_zone,
    heading,
    moto_server,
    require_aws_cli,
    run,
    save,
    scratch,
    sdeliver,
    verdict,
    write_project,
)
from latency_proxy import chain, held_latencies, latency_proxy, waves
from site_publish import DRIVER, make_site

GOALS = {"deploy": 12, "promote": 8, "rollback": 8, "reconcile": 4, "status": 3}
PUBLISH_GOAL = 0.5
COMMANDS = {
    "deploy": ["deploy", "--env", "test"],
    "promote": ["promote", "test", "prod"],
    "rollback": ["rollback", "--alias", "prod"],
    "reconcile": ["reconcile", "--yes"],
    "status": ["status"],
}
LABELS = {
    "deploy": "deploy (code change)",
    "promote": "promote test prod",
    "rollback": "rollback --alias prod",
    "reconcile": "reconcile (converged)",
    "status": "status",
}


def command(project: Path, endpoint: str, args: list[str]) -> float:
    env = clean_env(SDELIVER_ENDPOINT_URL=endpoint)
    return run(sdeliver(*args), cwd=project, env=env).seconds


def edit_code(project: Path, n: int) -> None:
    app = project / "app" / "app.py"
    app.write_text(app.read_text() + f"\n# release {n}\n")


def commands(options: argparse.Namespace, latency: float) -> dict[str, Any]:
    names = [n for n in COMMANDS if n in options.only]
    samples: dict[str, dict[str, list[float]]] = {n: {"with": [], "without": []} for n in names}
    held: dict[str, list[float]] = {n: [] for n in names}
    chains: dict[str, list[int]] = {n: [] for n in names}
    requests: dict[str, list[int]] = {n: [] for n in names}
    trace: dict[str, list[list[str]]] = {}
    with scratch("critical") as work, moto_server() as server, \
            latency_proxy(server.endpoint, latency) as slow, \
            latency_proxy(server.endpoint, 0.0) as fast:
        create_zone(server)
        project = write_project(work / "project")
        for args in (["init", "--yes"], ["deploy", "--env", "test"], ["promote", "test", "prod"]):
            command(project, server.endpoint, args)  # the starting state, no latency
        release = 0
        for i in range(options.runs):
            for proxy in (fast, slow):  # alternate, so drift in the load hits both sides
                mode = "with" if proxy is slow else "without"
                for name in names:
                    if name == "deploy":
                        release += 1
                        edit_code(project, release)
                    elif name == "promote" and "deploy" not in names:
                        release += 1
                        edit_code(project, release)
                        command(project, server.endpoint, COMMANDS["deploy"])
                    proxy.take()
                    seconds = command(project, proxy.endpoint, COMMANDS[name])
                    found = proxy.take()
                    samples[name][mode].append(seconds)
                    if proxy is slow:
                        held[name].append(held_latencies(found, latency))
                        chains[name].append(chain(found))
                        requests[name].append(len(found))
                        trace[name] = waves(found)
                    print(f"    run {i + 1} {mode:>7} latency: {LABELS[name]:<24} "
                          f"{seconds:6.2f}s  {len(found)} requests", flush=True)
    results: dict[str, Any] = {}
    for name in names:
        with_, without = (statistics.median(samples[name][m]) for m in ("with", "without"))
        results[name] = {
            "round_trips": (with_ - without) / latency,
            "held_round_trips": statistics.median(held[name]),
            "chain": statistics.median(chains[name]),
            "requests": statistics.median(requests[name]),
            "seconds_with": with_, "seconds_without": without,
            "samples": samples[name], "goal": GOALS[name],
            "waves": trace[name],
        }
    return results


def publish(options: argparse.Namespace, latency: float) -> dict[str, Any]:
    aws = require_aws_cli()
    sd_times: list[float] = []
    aws_times: list[float] = []
    with scratch("critical-site") as work, moto_server() as server, \
            latency_proxy(server.endpoint, latency) as slow:
        site = work / "site"
        total = make_site(site)
        s3 = server.client("s3")
        for i in range(options.publish_runs):
            for who in ("sd", "aws"):
                bucket = f"bench-{who}-{i}"
                s3.create_bucket(Bucket=bucket)
                if who == "sd":
                    argv = [PYTHON, "-c", DRIVER, str(site), bucket, slow.endpoint,
                            str(work / f"cache-{i}"), "trust",
                            *([str(options.upload_threads)] if options.upload_threads else [])]
                else:
                    argv = [*aws, "--endpoint-url", slow.endpoint, "s3", "sync", str(site),
                            f"s3://{bucket}/", "--delete", "--only-show-errors"]
                slow.take()
                seconds = run(argv, env=clean_env(), timeout=1800).seconds
                found = slow.take()
                (sd_times if who == "sd" else aws_times).append(seconds)
                print(f"    run {i + 1}: {'sdeliver' if who == 'sd' else 'aws s3 sync':<12} "
                      f"{seconds:6.2f}s  {len(found)} requests, "
                      f"{held_latencies(found, latency):.0f} latencies held", flush=True)
    sd, ref = statistics.median(sd_times), statistics.median(aws_times)
    return {"sdeliver_seconds": sd, "aws_seconds": ref, "ratio": sd / ref,
            "files": 2001, "bytes": total, "goal": PUBLISH_GOAL,
            "samples": {"sdeliver": sd_times, "aws": aws_times}}


def report(found: dict[str, Any], publishing: dict[str, Any] | None, latency: float,
           trace: bool) -> None:
    heading(f"critical path, {latency * 1000:.0f} ms a request")
    print(f"  {'command':<24} {'round trips':>11} {'chain':>6} {'held':>5} {'requests':>8}  goal")
    for name, r in found.items():
        met = r["chain"] <= r["goal"]
        print(f"  {LABELS[name]:<24} {r['round_trips']:>11.1f} {r['chain']:>6.0f} "
              f"{r['held_round_trips']:>5.1f} {r['requests']:>8.0f}  <= {r['goal']:<3} "
              f"{'MET' if met else 'NOT MET'}")
    print("  round trips: (wall with latency - wall without) / latency, median of each (noisy"
          " when the\n  machine is loaded: the CPU time of two runs differs by more than a"
          " few latencies);\n  chain: the longest chain of requests each sent after the"
          " answer to the one before (the\n  proxy's view, steady under load; the verdict"
          " uses it); held: time a request was held\n  / latency.")
    if publishing:
        ratio = publishing["ratio"]
        print(f"  {'site publish, 2,001 files':<26} {publishing['sdeliver_seconds']:>10.1f}s "
              f"vs aws s3 sync {publishing['aws_seconds']:.1f}s = {ratio:.2f}x  "
              + verdict(f"<= {PUBLISH_GOAL}x", ratio <= PUBLISH_GOAL))
    if trace:
        for name, r in found.items():
            print(f"\n  {LABELS[name]}: requests by place on the chain (last run with latency)")
            for n, group in enumerate(r["waves"], 1):
                print(f"    {n:>3}. {' | '.join(group)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--publish-runs", type=int, default=1)
    parser.add_argument("--only", default=",".join([*COMMANDS, "publish"]))
    parser.add_argument("--upload-threads", type=int, default=0,
                        help="an experiment: publish with this many upload threads (default:"
                             " sdeliver's own)")
    parser.add_argument("--trace", action="store_true",
                        help="list each command's requests, grouped by the latency they shared")
    options = parser.parse_args()
    options.only = options.only.split(",")
    latency = options.latency_ms / 1000
    heading(f"6. critical path: round trips per command ({options.latency_ms:.0f} ms a request, "
            f"median of {options.runs})")
    found = commands(options, latency) if set(options.only) & set(COMMANDS) else {}
    publishing = publish(options, latency) if "publish" in options.only else None
    report(found, publishing, latency, options.trace)
    print(f"  reproduce: {PYTHON} bench/critical_path.py {' '.join(sys.argv[1:])}".rstrip())
    save("critical_path", {"latency": latency, "commands": found, "publish": publishing})


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"  ({time.monotonic() - started:.0f}s)")
