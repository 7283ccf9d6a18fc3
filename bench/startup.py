#!/usr/bin/env python3
"""Measure how long ``nbharden --help`` takes, start to exit (target: median <= 0.3 s).

    python bench/startup.py [--runs 15] [--nbharden PATH] [--importtime] [--check]

Each run is a fresh process timed with a monotonic clock, so the figure includes interpreter
start-up, imports and typer building the help page: what a user waits for. The bare interpreter
(``python -c pass``) is measured the same way: the floor nothing can go under. ``--importtime``
lists the slowest imports (``python -X importtime``). Results go to bench/results/startup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET_S = 0.3


def default_nbharden() -> Path:
    """The ``nbharden`` script beside the running interpreter (the venv's)."""
    return Path(sys.executable).parent / "nbharden"


def time_runs(cmd: list[str], runs: int, warmup: int = 2) -> tuple[list[float], list[float]]:
    """Wall and CPU times of ``runs`` runs of ``cmd`` after ``warmup`` unmeasured ones (page cache).

    CPU time (user + system of the child) is less disturbed than wall time when other work shares
    the machine. Raises ``SystemExit`` with the command's output when it fails.
    """
    walls: list[float] = []
    cpus: list[float] = []
    for i in range(warmup + runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise SystemExit(
                f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
            )
        if i >= warmup:
            walls.append(elapsed)
            cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return walls, cpus


def summary(times: tuple[list[float], list[float]]) -> dict[str, float]:
    """Median, min, max and interquartile range of the wall times, median CPU time, in seconds."""
    walls, cpus = times
    q = statistics.quantiles(walls, n=4) if len(walls) >= 2 else [walls[0]] * 3
    return {
        "median_s": statistics.median(walls),
        "min_s": min(walls),
        "max_s": max(walls),
        "iqr_s": q[2] - q[0],
        "median_cpu_s": statistics.median(cpus),
        "runs": len(walls),
    }


def slowest_imports(python: str, module: str, top: int) -> list[tuple[str, float]]:
    """The ``top`` imports by cumulative time when importing ``module`` (``-X importtime``)."""
    proc = subprocess.run(
        [python, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows: list[tuple[str, float]] = []
    for line in proc.stderr.splitlines():
        # "import time:      self [us] |  cumulative | imported package"
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        rows.append((parts[2].rstrip(), int(parts[1]) / 1e6))
    rows.sort(key=lambda r: r[1], reverse=True)
    return rows[:top]


def git_commit() -> str:
    """The short commit, with ``+dirty`` when src/ has uncommitted changes (they were measured)."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True
    )
    if head.returncode != 0:
        return "unknown"
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "src"], cwd=HERE, capture_output=True, text=True
    ).stdout.strip()
    return head.stdout.strip() + ("+dirty" if dirty else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15, help="measured runs (default 15)")
    ap.add_argument(
        "--nbharden", type=Path, default=default_nbharden(), help="the nbharden script to time"
    )
    ap.add_argument("--importtime", action="store_true", help="also list the slowest imports")
    ap.add_argument(
        "--check", action="store_true", help=f"exit 1 if the median is over {TARGET_S} s"
    )
    ap.add_argument("--results", type=Path, default=HERE / "results" / "startup.json")
    args = ap.parse_args()

    if not args.nbharden.exists():
        print(f"startup.py: {args.nbharden} not found; run `make .venv` first", file=sys.stderr)
        return 2
    python = sys.executable
    floor = summary(time_runs([python, "-c", "pass"], args.runs))
    help_ = summary(time_runs([str(args.nbharden), "--help"], args.runs))

    print(f"{'command':<28} {'median':>8} {'min':>8} {'max':>8} {'IQR':>8} {'CPU':>8}")
    for label, s in (("python -c pass", floor), ("nbharden --help", help_)):
        cols = " ".join(
            f"{s[k]:8.3f}" for k in ("median_s", "min_s", "max_s", "iqr_s", "median_cpu_s")
        )
        print(f"{label:<28} {cols}")
    ok = help_["median_s"] <= TARGET_S
    verdict = "within" if ok else "OVER"
    print(
        f"nbharden --help median {help_['median_s']:.3f} s: {verdict} the {TARGET_S} s target "
        f"({help_['median_s'] - floor['median_s']:.3f} s above the bare interpreter)"
    )

    imports: list[tuple[str, float]] = []
    if args.importtime:
        imports = slowest_imports(python, "nbharden.cli.app", 15)
        print("\nslowest imports (cumulative) for `import nbharden.cli.app`:")
        for name, secs in imports:
            print(f"  {secs:7.3f} s  {name}")

    result = {
        "benchmark": "startup",
        "target_s": TARGET_S,
        "within_target": ok,
        "python_floor": floor,
        "nbharden_help": help_,
        "slowest_imports": [{"module": n.strip(), "cumulative_s": s} for n, s in imports],
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "commit": git_commit(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.results}")
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
