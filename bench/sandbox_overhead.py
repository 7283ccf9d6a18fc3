#!/usr/bin/env python3
"""Sandbox overhead: one recorded run (``nbharden.record.record(..., runs=1)``) of a small
notebook with ``sandbox = "off"``, ``"limits"`` and ``"bwrap"``.

    python bench/sandbox_overhead.py [--repeat 7] [--notebook NB]

Default notebook: fixtures/hostile/benign.ipynb (three tiny cells), copied to a temporary folder,
so the figure is the fixed cost of starting the kernel in the sandbox, not of the notebook's own
work. One warm-up per tier, then ``--repeat`` rounds, the order of the tiers rotating each round.
Each figure is the median of wall time and of CPU time (this process plus the kernel's own, which
a cell appended to the notebook reports), since the machine is often shared and wall time follows
its load. The launch figures time ``python -I -S -c pass`` started directly and through each tier's
wrapper (shims, cgroup, bwrap): the fixed cost per kernel start.
Tiers that cannot run here are reported as skipped with the probe's reason.
Results go to bench/results/sandbox_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from startup import git_commit  # bench/ is on sys.path when a script here runs

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TIERS = ("off", "limits", "bwrap")


#: Appended to the notebook: the kernel's own CPU time, written next to the notebook. Processes in
#: bubblewrap's pid namespace are not accounted to nbharden as reaped children, so the kernel reports
#: its CPU itself, the same way in every tier.
KERNEL_CPU_CELL = """
import resource as _r
_u = _r.getrusage(_r.RUSAGE_SELF)
with open("kernel_cpu.txt", "w") as _f:
    _f.write(str(_u.ru_utime + _u.ru_stime))
"""


def cpu() -> float:
    """CPU time of this process (nbharden's side: papermill, the recorder's files)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def launch_cost(tiers: list[str], sb: Any, repeat: int) -> dict[str, float]:
    """Median wall time of ``python -I -S -c pass`` started directly (off) and through each
    tier's wrapper (shims, bwrap, namespaces, cgroup): the fixed cost the sandbox adds to a
    kernel start.
    """
    import subprocess
    import sys

    from nbharden.settings import Settings

    cmd = [sys.executable, "-I", "-S", "-c", "pass"]
    result = {}
    with tempfile.TemporaryDirectory(prefix="nbh-bench-launch-") as tmp:
        folder = Path(tmp)
        (folder / "nb.ipynb").write_text("{}", encoding="utf-8")
        for tier in tiers:
            report = sb.resolve(Settings(sandbox=tier))
            times = []
            for _ in range(repeat):
                with sb.Session(report, notebook=folder / "nb.ipynb", run_dir=folder) as box:
                    wrapped = box.wrap(list(cmd), dict(os.environ)) if report.active else cmd
                    t0 = time.perf_counter()
                    subprocess.run(wrapped, check=True, cwd=folder)
                    times.append(time.perf_counter() - t0)
            result[tier] = statistics.median(times)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--notebook", type=Path, default=REPO / "fixtures/hostile/benign.ipynb")
    args = parser.parse_args()

    import nbformat

    from nbharden.analyse import analyse
    from nbharden.api import load
    from nbharden.plan import make_plan
    from nbharden.record import record
    from nbharden.record import sandbox as sb
    from nbharden.settings import Settings

    runnable = []
    skipped = {}
    for tier in TIERS:
        if tier == "bwrap" and sb.bwrap_problem() is not None:
            skipped[tier] = sb.bwrap_problem()
        else:
            runnable.append(tier)

    with tempfile.TemporaryDirectory(prefix="nbh-bench-sandbox-") as tmp:
        folder = Path(tmp) / "nb"
        folder.mkdir()
        book = nbformat.read(str(args.notebook), as_version=4)
        book.cells.append(nbformat.v4.new_code_cell(KERNEL_CPU_CELL.strip(), id="bench-cpu"))
        notebook = folder / args.notebook.name
        nbformat.write(book, str(notebook))

        def once(tier: str) -> tuple[float, float]:
            settings = Settings(sandbox=tier)
            nb = load(notebook, settings)
            plan = make_plan(analyse(nb, settings=settings), settings=settings)
            work = Path(tempfile.mkdtemp(dir=tmp))
            c0, w0 = cpu(), time.perf_counter()
            record(nb, plan, settings=settings, workdir=work, runs=1)
            wall, used = time.perf_counter() - w0, cpu() - c0
            used += float((folder / "kernel_cpu.txt").read_text(encoding="utf-8"))
            shutil.rmtree(work)
            return wall, used

        for tier in runnable:
            once(tier)  # warm-up: imports, page cache
        samples: dict[str, list[tuple[float, float]]] = {t: [] for t in runnable}
        for round_ in range(args.repeat):
            order = runnable[round_ % len(runnable) :] + runnable[: round_ % len(runnable)]
            for tier in order:
                samples[tier].append(once(tier))

    launch = launch_cost(runnable, sb, args.repeat * 3)

    rows = {}
    base_wall = statistics.median(w for w, _ in samples["off"])
    base_cpu = statistics.median(c for _, c in samples["off"])
    for tier in runnable:
        wall = statistics.median(w for w, _ in samples[tier])
        used = statistics.median(c for _, c in samples[tier])
        rows[tier] = {
            "wall_s": round(wall, 3),
            "cpu_s": round(used, 3),
            "wall_over_off_s": round(wall - base_wall, 3),
            "cpu_over_off_s": round(used - base_cpu, 3),
        }
        print(
            f"{tier:<7} wall {wall:6.2f} s ({wall - base_wall:+.2f})   "
            f"cpu {used:6.2f} s ({used - base_cpu:+.2f})"
        )
    for tier, seconds in launch.items():
        print(f"{tier:<7} launch of 'python -c pass' through the sandbox: {seconds * 1000:6.1f} ms")
    for tier, reason in skipped.items():
        print(f"{tier:<7} skipped: {reason}")
    result = {
        "notebook": str(args.notebook.relative_to(REPO)),
        "repeat": args.repeat,
        "tiers": rows,
        "launch_ms": {t: round(v * 1000, 1) for t, v in launch.items()},
        "skipped": skipped,
        "load_average": os.getloadavg(),
        "machine": platform.platform(),
        "commit": git_commit(),
    }
    out = HERE / "results" / "sandbox_overhead.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
