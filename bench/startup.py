"""Benchmark 1: CLI start-up — `sdeliver --help` vs `aws --version`, median of N runs.

Goal: sdeliver --help takes at most half as long as aws --version; --help, --version and
`config validate` import neither boto3 nor moto.

Reproduce: python bench/startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics

from common import (
    PYTHON,
    ROOT,
    figure,
    heading,
    require_aws_cli,
    run,
    save,
    scratch,
    sdeliver_bin,
    verdict,
)

HEAVY = ("boto3", "botocore", "moto", "rich", "typer", "pydantic", "yaml", "click")

# Which heavy modules a command leaves in sys.modules (run in-process, exit code ignored).
PROBE = """
import json, sys
from sdeliver.app import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = {heavy!r}
print(json.dumps(sorted(m for m in heavy if m in sys.modules)), file=sys.__stderr__)
"""


def imported(args: list[str], cwd: str) -> list[str]:
    done = run([PYTHON, "-c", PROBE.format(heavy=HEAVY), *args], cwd=cwd, check=False)  # type: ignore[arg-type]
    return list(json.loads(done.stderr.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    heading(f"1. start-up (median of {runs})")
    aws = require_aws_cli()
    cli = sdeliver_bin()
    with scratch("startup") as project:
        shutil.copy(ROOT / "config" / "sdeliver.example.yaml", project / "sdeliver.yaml")
        for argv in ([*aws, "--version"], [*cli, "--help"]):  # warm the page cache
            run(argv, cwd=project)
        # Interleaved rounds, so a busy machine slows every command alike.
        commands = {"aws --version": [*aws, "--version"]}
        for args in (["--help"], ["--version"], ["config", "validate"]):
            commands["sdeliver " + " ".join(args)] = [*cli, *args]
        samples: dict[str, list[float]] = {label: [] for label in commands}
        for _ in range(runs):
            for label, argv in commands.items():
                samples[label].append(run(argv, cwd=project).seconds)
        aws_s = statistics.median(samples["aws --version"])
        results: dict[str, object] = {"runs": runs, "aws --version": aws_s,
                                      "load": os.getloadavg()}
        figure("aws --version", f"{aws_s * 1000:.0f} ms", "aws --version")
        for label in list(commands)[1:]:
            seconds = statistics.median(samples[label])
            heavy = imported(label.split()[1:], str(project))
            results[label] = {
                "seconds": seconds,
                "ratio": seconds / aws_s,
                "imports": heavy,
                "boto3_or_moto": any(m in heavy for m in ("boto3", "botocore", "moto")),
            }
            figure(
                label,
                f"{seconds * 1000:.0f} ms = {seconds / aws_s:.2f}x aws; imports {', '.join(heavy)}",
                label,
            )
        ratio = results["sdeliver --help"]["ratio"]  # type: ignore[index]
        met = ratio <= 0.5
        results["goal_met"] = met
        figure("goal", verdict("sdeliver --help <= 0.5x aws --version", met))
        figure("load average (1, 5, 15 min)", " ".join(f"{x:.1f}" for x in os.getloadavg()))
        clean = not any(
            results[f"sdeliver {' '.join(a)}"]["boto3_or_moto"]  # type: ignore[index]
            for a in (["--help"], ["--version"], ["config", "validate"])
        )
        results["no_boto3_moto"] = clean
        figure("goal", verdict("--help/--version/config validate import no boto3/moto", clean))
        print(f"  reproduce: {PYTHON} bench/startup.py --runs {runs}")
        save("startup", results)


if __name__ == "__main__":
    main()
