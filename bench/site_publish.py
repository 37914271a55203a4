"""Benchmark 2: publishing a site of 2,000 files (~50 MB, mixed sizes) to a bucket, first
publish and an unchanged re-publish, vs `aws s3 sync` to the same moto server.

sdeliver's side is what `deploy` does for the site, in a fresh process as a user would
pay for it: package site/ reproducibly (the release's site.zip), then `publish` it — list
the bucket once, upload what differs by MD5 in parallel, config.json last.

Goal: both at most 0.5x the time of aws s3 sync.

Reproduce: python bench/site_publish.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

from common import (
    PYTHON,
    Calls,
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


# Run in a fresh interpreter: what a deploy does for the site, with the import cost a user pays.
DRIVER = """
import sys, tempfile
from pathlib import Path
from types import SimpleNamespace
from sdeliver.aws import Aws
from sdeliver.package import package_directory
from sdeliver.publish import files_from_zip, publish
site, bucket, endpoint = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
aws = Aws(region="us-east-1", endpoint_url=endpoint)
package = package_directory(site, key="site.source")
with tempfile.TemporaryDirectory() as tmp:
    archive = Path(tmp) / "site.zip"
    archive.write_bytes(package.data)
    result = publish(SimpleNamespace(aws=aws), bucket, files_from_zip(archive), {"title": "b"})
print(result.uploaded, result.unchanged, result.deleted, aws.stats.reads, aws.stats.writes)
"""


def sdeliver_publish(site: Path, bucket: str, endpoint: str, log: Path) -> tuple[float, str]:
    log.write_text("")
    env = clean_env(SDELIVER_CALL_LOG=str(log))
    done = run([PYTHON, "-c", DRIVER, str(site), bucket, endpoint], env=env, timeout=900)
    return done.seconds, done.stdout.strip()


def aws_sync(aws: list[str], site: Path, bucket: str, endpoint: str) -> float:
    argv = [*aws, "--endpoint-url", endpoint, "s3", "sync", str(site), f"s3://{bucket}/",
            "--delete", "--only-show-errors"]
    return run(argv, env=clean_env(), timeout=900).seconds


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
        times: dict[str, list[float]] = {k: [] for k in ("sd first", "sd again", "aws first",
                                                         "aws again")}
        calls: dict[str, dict[str, int]] = {}
        log = work / "calls.log"
        for i in range(options.runs):
            for who in ("sd", "aws"):
                bucket = f"bench-{who}-{i}"
                s3.create_bucket(Bucket=bucket)
                for phase in ("first", "again"):
                    if who == "sd":
                        seconds, _ = sdeliver_publish(site, bucket, server.endpoint, log)
                        found = Calls.read(log)
                        calls[phase] = {"reads": found.reads, "writes": found.writes}
                    else:
                        seconds = aws_sync(aws, site, bucket, server.endpoint)
                    times[f"{who} {phase}"].append(seconds)
                    print(f"    run {i + 1}: {who} {phase}: {seconds:.2f}s", flush=True)
            for who in ("sd", "aws"):  # free the server's memory for the next round
                _empty(s3, f"bench-{who}-{i}")
        medians = {k: statistics.median(v) for k, v in times.items()}
        results: dict[str, object] = {"files": options.files + 1, "bytes": total,
                                      "median_seconds": medians, "samples": times,
                                      "sdeliver_calls": calls}
        for phase in ("first", "again"):
            ratio = medians[f"sd {phase}"] / medians[f"aws {phase}"]
            results[f"ratio_{phase}"] = ratio
            label = "first publish" if phase == "first" else "unchanged re-publish"
            figure(f"sdeliver {label}", f"{medians[f'sd {phase}']:.2f}s "
                   f"({calls[phase]['reads']} reads, {calls[phase]['writes']} writes)",
                   f"{PYTHON} bench/site_publish.py  (driver: package + publish)")
            figure(f"aws s3 sync {label}", f"{medians[f'aws {phase}']:.2f}s",
                   "aws --endpoint-url $E s3 sync site/ s3://bucket/ --delete")
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
