"""Benchmark 2: publishing a site of 2,000 files (~50 MB, mixed sizes) to a bucket, first
publish and an unchanged re-publish, vs `aws s3 sync` to the same moto server.

sdeliver's side is what `deploy` does for the site, in a fresh process as a user would
pay for it: package site/ reproducibly (the release's site.zip, through the project's build
cache: cold for a first publish), then `publish` it — one GET of config.json (a bucket whose
config.json names the release is left alone), else list the bucket once, upload what
differs by MD5 in parallel, config.json last. `--force` (lists and compares every object)
is measured too, for information. Each sample also reports the CPU seconds of the client
and of the moto server, to show which side bounds it.

Goal: both at most 0.5x the time of aws s3 sync.

Reproduce: python bench/site_publish.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from common import (
    PYTHON,
    Calls,
    Server,
    clean_env,
    figure,
    heading,
    moto_server,
    require_aws_cli,
    run,
    save,
    scratch,
    verdict,
)

FILES = 2000
SEED = 7


def make_site(target: Path, files: int = FILES) -> int:
    """A site of `files` files, ~50 MB: many small text files, some assets, a few large
    binaries (incompressible, like images). Deterministic."""
    rng = random.Random(SEED)  # noqa: S311 - test data, not secrets
    total = 0
    words = [b"const", b"function", b"return", b"var", b"div", b"class", b"span", b"{", b"}"]
    for i in range(files):
        roll = rng.random()
        if roll < 0.80:  # pages, scripts, styles: 1-16 KB of text
            size, kind = rng.randint(1_000, 16_000), ".js" if i % 3 else ".html"
        elif roll < 0.98:  # images and fonts: 10-80 KB
            size, kind = rng.randint(10_000, 80_000), ".png" if i % 2 else ".woff2"
        else:  # bundles and media: 0.3-0.9 MB
            size, kind = rng.randint(300_000, 900_000), ".jpg"
        path = target / f"d{i % 40:02d}" / f"s{i % 7}" / f"f{i:04d}{kind}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind in (".js", ".html"):
            body = b" ".join(rng.choice(words) for _ in range(size // 5))[:size]
        else:
            body = rng.randbytes(size)
        path.write_bytes(body)
        total += len(body)
    (target / "index.html").write_text("<!doctype html><title>bench</title>\n")
    return total


# Run in a fresh interpreter: what a deploy does for the site, with the import cost a user
# pays — build the site.zip (through the project's build cache, as `release.build` does),
# then publish it with the config.json that names its release.
DRIVER = """
import sys, tempfile, time
from pathlib import Path
from types import SimpleNamespace
from sdeliver.aws import Aws
from sdeliver.package import package_directory
from sdeliver import publish as publishing
from sdeliver.publish import files_from_zip, publish
if len(sys.argv) > 6:  # an experiment with another thread count (bench/site_publish.py --threads)
    publishing.UPLOAD_THREADS = int(sys.argv[6])
site, bucket, endpoint, cache = Path(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])
force = sys.argv[5] == "force"
aws = Aws(region="us-east-1", endpoint_url=endpoint)
started = time.perf_counter()
package = package_directory(site, key="site.source", cache=cache)
packaged = time.perf_counter() - started
config = {"title": "b", "release": "r-" + package.sha256_hex[:12]}
with tempfile.TemporaryDirectory() as tmp:
    archive = Path(tmp) / "site.zip"
    archive.write_bytes(package.data)
    project = SimpleNamespace(aws=aws, facts={}, config=SimpleNamespace(site=None, environments={}))
    result = publish(project, bucket, files_from_zip(archive), config, force=force)
print(result.uploaded, result.unchanged, result.deleted, aws.stats.reads, aws.stats.writes,
      f"{packaged:.3f}", f"{time.process_time():.3f}")
"""


@dataclass
class Sample:
    seconds: float
    client_cpu: float  # the CLI's own user+sys seconds
    server_cpu: float  # the moto server's user+sys seconds in the same interval
    detail: str = ""


def server_cpu(pid: int) -> float:
    """User+sys seconds of a running process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(argv: list[str], env: dict[str, str], pid: int) -> tuple[Sample, str]:
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    before_server = server_cpu(pid)
    done = run(argv, env=env, timeout=900)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before_children.ru_utime) + (after.ru_stime - before_children.ru_stime)
    return Sample(done.seconds, cpu, server_cpu(pid) - before_server), done.stdout.strip()


def sdeliver_publish(
    site: Path, bucket: str, server: Server, log: Path, cache: Path, *, force: bool = False,
    threads: int | None = None,
) -> Sample:
    log.write_text("")
    env = clean_env(SDELIVER_CALL_LOG=str(log))
    argv = [PYTHON, "-c", DRIVER, str(site), bucket, server.endpoint, str(cache),
            "force" if force else "trust", *([str(threads)] if threads else [])]
    sample, out = measured(argv, env, server.process.pid)
    sample.detail = out
    return sample


def aws_sync(aws: list[str], site: Path, bucket: str, server: Server) -> Sample:
    argv = [*aws, "--endpoint-url", server.endpoint, "s3", "sync", str(site), f"s3://{bucket}/",
            "--delete", "--only-show-errors"]
    return measured(argv, clean_env(), server.process.pid)[0]


PHASES = {"first": "first publish", "again": "unchanged re-publish",
          "forced": "unchanged re-publish, --force (lists, compares)"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--files", type=int, default=FILES)
    options = parser.parse_args()
    heading(f"2. site publish ({options.files} files, median of {options.runs})")
    aws = require_aws_cli()
    with scratch("site") as work, moto_server() as server:
        site = work / "site"
        total = make_site(site, options.files)
        figure("site", f"{options.files + 1} files, {total / 1e6:.1f} MB")
        s3 = server.client("s3")
        samples: dict[str, list[Sample]] = {f"{who} {phase}": [] for who in ("sd", "aws")
                                            for phase in PHASES if who == "sd" or
                                            phase != "forced"}
        calls: dict[str, dict[str, int]] = {}
        log = work / "calls.log"
        for i in range(options.runs):
            cache = work / f"project-{i}" / ".sdeliver" / "cache"  # cold for each first publish
            for who in ("sd", "aws"):
                bucket = f"bench-{who}-{i}"
                s3.create_bucket(Bucket=bucket)
                for phase in PHASES:
                    if who == "sd":
                        sample = sdeliver_publish(site, bucket, server, log, cache,
                                                  force=phase == "forced")
                        found = Calls.read(log)
                        calls[phase] = {"reads": found.reads, "writes": found.writes}
                    elif phase == "forced":
                        continue
                    else:
                        sample = aws_sync(aws, site, bucket, server)
                    samples[f"{who} {phase}"].append(sample)
                    print(f"    run {i + 1}: {who} {phase}: {sample.seconds:.2f}s wall, "
                          f"client CPU {sample.client_cpu:.2f}s, moto server CPU "
                          f"{sample.server_cpu:.2f}s  {sample.detail}", flush=True)
            for who in ("sd", "aws"):  # free the server's memory for the next round
                _empty(s3, f"bench-{who}-{i}")
        medians = {k: statistics.median(x.seconds for x in v) for k, v in samples.items()}
        cpu = {k: {"client": statistics.median(x.client_cpu for x in v),
                   "server": statistics.median(x.server_cpu for x in v)}
               for k, v in samples.items()}
        results: dict[str, object] = {"files": options.files + 1, "bytes": total,
                                      "median_seconds": medians, "median_cpu_seconds": cpu,
                                      "samples": {k: [vars(x) for x in v]
                                                  for k, v in samples.items()},
                                      "sdeliver_calls": calls}
        for phase, label in PHASES.items():
            sd = f"sd {phase}"
            figure(f"sdeliver {label}", f"{medians[sd]:.2f}s "
                   f"({calls[phase]['reads']} reads, {calls[phase]['writes']} writes; CPU "
                   f"client {cpu[sd]['client']:.2f}s, server {cpu[sd]['server']:.2f}s)",
                   f"{PYTHON} bench/site_publish.py  (driver: package + publish)")
            if phase == "forced":
                continue
            ref = f"aws {phase}"
            figure(f"aws s3 sync {label}", f"{medians[ref]:.2f}s (CPU client "
                   f"{cpu[ref]['client']:.2f}s, server {cpu[ref]['server']:.2f}s)",
                   "aws --endpoint-url $E s3 sync site/ s3://bucket/ --delete")
            ratio = medians[sd] / medians[ref]
            results[f"ratio_{phase}"] = ratio
            figure(f"ratio {label}", f"{ratio:.2f}x  "
                   + verdict("<= 0.5x aws s3 sync", ratio <= 0.5))
        print(f"  reproduce: {PYTHON} bench/site_publish.py --runs {options.runs}")
        save("site_publish", results)


def _empty(s3: object, bucket: str) -> None:
    client: object = s3
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)  # type: ignore[attr-defined]
    for page in pages:
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys})  # type: ignore[attr-defined]
    client.delete_bucket(Bucket=bucket)  # type: ignore[attr-defined]


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"  ({time.monotonic() - started:.0f}s)", file=sys.stderr)
    _ = json
