"""Benchmark 3: packaging 5,000 files reproducibly, vs `zip -qrX`.

The same SHA-256 across two runs and across two checkouts of the same files (copied in
another order, other mtimes, other permission bits apart from the executable bit); wall
time of a fresh `python -c 'package_directory(...)'` vs `zip -qrX` of the same directory.

Goal: identical SHA-256 everywhere; wall time at most 1.5x zip's.

Reproduce: python bench/packaging.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import time
from pathlib import Path

from common import PYTHON, clean_env, figure, heading, require_zip, run, save, scratch, verdict

FILES = 5000
SEED = 11

DRIVER = """
import sys
from pathlib import Path
from sdeliver.package import package_directory
print(package_directory(Path(sys.argv[1])).sha256_hex)
"""


def make_tree(target: Path, files: int = FILES) -> int:
    """Something like a function with vendored dependencies: mostly Python sources, some
    data files, a few compiled extensions. Deterministic."""
    rng = random.Random(SEED)  # noqa: S311 - test data
    words = [b"def", b"return", b"self", b"import", b"class", b"None", b"if", b"for", b"in"]
    total = 0
    for i in range(files):
        roll = rng.random()
        package = f"vendor/pkg{i % 60:02d}/sub{i % 9}"
        if roll < 0.90:
            name, size = f"m{i:04d}.py", rng.randint(200, 12_000)
            body = b" ".join(rng.choice(words) for _ in range(size // 5))[:size]
        elif roll < 0.99:
            name, size = f"d{i:04d}.json", rng.randint(500, 40_000)
            body = b'{"k": "' + rng.randbytes(size // 2).hex().encode()[: size - 10] + b'"}'
        else:
            name, size = f"ext{i:04d}.so", rng.randint(100_000, 600_000)
            body = rng.randbytes(size)
        path = target / package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        if name.endswith(".so"):
            path.chmod(0o755)
        total += len(body)
    return total


def other_checkout(source: Path, target: Path) -> None:
    """The same files, created in reverse order, with other mtimes and group/other bits."""
    paths = sorted((p for p in source.rglob("*") if p.is_file()), reverse=True)
    for i, path in enumerate(paths):
        copy = target / path.relative_to(source)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, copy)
        mode = 0o775 if os.access(path, os.X_OK) else 0o664
        copy.chmod(mode)
        os.utime(copy, (1_700_000_000 + i, 1_700_000_000 + i))


def package(tree: Path) -> tuple[float, str]:
    done = run([PYTHON, "-c", DRIVER, str(tree)], env=clean_env())
    return done.seconds, done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=FILES)
    options = parser.parse_args()
    heading(f"3. packaging ({options.files} files, median of {options.runs})")
    zip_tool = require_zip()
    with scratch("package") as work:
        first, second = work / "checkout-a", work / "checkout-b"
        total = make_tree(first, options.files)
        other_checkout(first, second)
        figure("tree", f"{options.files} files, {total / 1e6:.1f} MB")
        package(first)  # warm the page cache for both tools
        ours: list[float] = []
        digests: set[str] = set()
        for _ in range(options.runs):
            seconds, digest = package(first)
            ours.append(seconds)
            digests.add(digest)
        _, other_digest = package(second)
        same_runs = len(digests) == 1
        same_checkouts = digests == {other_digest}
        results: dict[str, object] = {
            "files": options.files, "bytes": total, "sha256": sorted(digests),
            "sha256_other_checkout": other_digest, "identical_runs": same_runs,
            "identical_checkouts": same_checkouts, "sdeliver_samples": ours,
            "sdeliver_seconds": statistics.median(ours),
        }
        figure("SHA-256, two runs", "identical" if same_runs else f"DIFFER: {digests}")
        figure("SHA-256, two checkouts",
               "identical" if same_checkouts else f"DIFFER: {other_digest}")
        figure("sdeliver package (fresh process)", f"{statistics.median(ours):.2f}s",
               f"{PYTHON} -c 'package_directory(Path(DIR))'")
        if zip_tool is None:
            figure("zip -qrX", "skipped: Debian's zip is not installed and apt-get failed")
            results["zip_seconds"] = None
        else:
            zips: list[float] = []
            for i in range(options.runs + 1):
                out = work / f"out{i}.zip"
                seconds = run([zip_tool, "-qrX", str(out), "."], cwd=first).seconds
                if i:  # the first one warms up
                    zips.append(seconds)
                out.unlink()
            zip_s = statistics.median(zips)
            ratio = statistics.median(ours) / zip_s
            results.update(zip_seconds=zip_s, zip_samples=zips, ratio=ratio)
            figure("zip -qrX", f"{zip_s:.2f}s", "cd DIR && zip -qrX out.zip .")
            figure("ratio", f"{ratio:.2f}x  " + verdict("<= 1.5x zip -qrX", ratio <= 1.5))
        figure("goal", verdict("identical SHA-256", same_runs and same_checkouts))
        print(f"  reproduce: {PYTHON} bench/packaging.py --runs {options.runs}")
        save("packaging", results)


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"  ({time.monotonic() - started:.0f}s)")
