#!/usr/bin/env python3
"""Recording overhead: ``nbharden.record.record(..., runs=1)`` against a plain papermill run.

    python bench/record_overhead.py [--repeat 5] [--notebooks NB ...] [--corpus [MANIFEST.tsv]]
        [--slugs S ...] [--kernel-path DIR] [--no-demo]

For each notebook (the demo notebooks/churn_analysis.ipynb, and with ``--corpus`` a few corpus
notebooks, each folder copied to a temporary folder first), in the same process and the same run:

  plain   ``papermill.execute_notebook`` with the options nbharden's recorder uses (same kernel,
          working directory = the notebook's folder, no save after every cell, no progress bar)
          and the environment as it is: what running the notebook costs without nbharden
  record  ``nbharden.record.record(nb, plan, settings=..., workdir=..., runs=1)``: one recorded run,
          including reading the notebook, the in-kernel recorder, writing the values and
          recording.json (``convert`` does two of these to find volatile values)

One warm-up of each, then ``--repeat`` pairs, alternating which goes first. Each figure is the
median; wall time and CPU time (this process plus its reaped children: the kernel) are both given,
since the machine is often shared. The target is record/plain <= 1.15 (wall) per recording run.
Results go to bench/results/record_overhead.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from startup import git_commit  # bench/ is on sys.path when a script here runs

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TARGET = 1.15
CORPUS_CANDIDATES = (
    REPO.parent / "shared" / "corpus" / "MANIFEST.tsv",
    Path("/work/shared/corpus/MANIFEST.tsv"),
)
# Quick corpus notebooks with real data flow between cells (frames, arrays, models).
DEFAULT_SLUGS = (
    "pandas-cookbook-ch4",
    "pydata-ch10",
    "statsmodels-glm-weights",
    "pdsh-0307-merge-and-join",
)


@dataclass
class Row:
    name: str
    status: str = "ok"
    wall: dict[str, list[float]] = field(default_factory=lambda: {"plain": [], "record": []})
    cpu: dict[str, list[float]] = field(default_factory=lambda: {"plain": [], "record": []})
    # the kernel's share of cpu (0 would mean the kernel was not reaped, so not counted)
    cpu_kernel: dict[str, list[float]] = field(default_factory=lambda: {"plain": [], "record": []})
    stored_bytes: int = 0
    steps: int = 0

    def median(self, what: str, tool: str) -> float | None:
        values = (self.wall if what == "wall" else self.cpu)[tool]
        return statistics.median(values) if values else None

    def ratio(self, what: str) -> float | None:
        plain, rec = self.median(what, "plain"), self.median(what, "record")
        return rec / plain if plain and rec is not None else None


def cpu_now() -> tuple[float, float]:
    """CPU seconds of this process, and of its children that have been reaped (the kernels)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def timed(fn: Callable[[], object]) -> tuple[float, float, float, object]:
    """(wall, CPU of this process, CPU of the kernel, value) of ``fn()``."""
    (self0, kids0), start = cpu_now(), time.perf_counter()
    value = fn()
    wall = time.perf_counter() - start
    self1, kids1 = cpu_now()
    return wall, self1 - self0, kids1 - kids0, value


def measure(nb_path: Path, name: str, repeat: int, work: Path) -> Row:
    """Warm up, then ``repeat`` alternating pairs of plain and recorded runs of ``nb_path``."""
    import papermill

    from nbharden import api
    from nbharden.analyse import analyse
    from nbharden.errors import NbhardenError
    from nbharden.plan import make_plan
    from nbharden.record import record
    from nbharden.record.run import resolve_kernel
    from nbharden.settings import Settings

    row = Row(name)
    settings = Settings(out=work / "out")
    try:
        nb = api.load(nb_path, settings)
        analysis = analyse(nb, settings=settings)
        plan = make_plan(analysis, settings=settings)
        kernel = resolve_kernel(nb.kernel_name)
    except NbhardenError as exc:
        row.status = f"{type(exc).__name__}: {exc}"
        return row
    row.steps = len(plan.steps)
    counter = iter(range(10**6))

    def plain() -> object:
        return papermill.execute_notebook(
            str(nb_path),
            str(work / f"plain-{next(counter)}.ipynb"),
            kernel_name=kernel,
            request_save_on_cell_execute=False,
            progress_bar=False,
            log_output=False,
            cwd=str(nb_path.parent),
            execution_timeout=int(settings.cell_timeout),
        )

    def recorded() -> object:
        folder = work / f"record-{next(counter)}"
        try:
            # as convert calls it: with the analysis it already has
            return record(nb, plan, settings=settings, workdir=folder, runs=1, analysis=analysis)
        finally:
            shutil.rmtree(folder, ignore_errors=True)  # keep the temp folder from growing

    tools = {"plain": plain, "record": recorded}
    try:
        for tool in tools.values():  # warm-up: disk cache, kernel start-up, imports here
            tool()
        for i in range(repeat):
            order = ("plain", "record") if i % 2 == 0 else ("record", "plain")
            for tool_name in order:
                wall, cpu_self, cpu_kernel, value = timed(tools[tool_name])
                row.wall[tool_name].append(round(wall, 3))
                row.cpu[tool_name].append(round(cpu_self + cpu_kernel, 3))
                row.cpu_kernel[tool_name].append(round(cpu_kernel, 3))
                if tool_name == "record":
                    row.stored_bytes = int(getattr(value, "stored_bytes", 0))
            print(
                f"  pair {i + 1}: plain {row.wall['plain'][-1]:.2f}/{row.cpu['plain'][-1]:.2f} s, "
                f"record {row.wall['record'][-1]:.2f}/{row.cpu['record'][-1]:.2f} s (wall/cpu; "
                f"kernel cpu {row.cpu_kernel['plain'][-1]:.2f}, {row.cpu_kernel['record'][-1]:.2f})",
                flush=True,
            )
    except Exception as exc:  # noqa: BLE001 - a benchmark reports the failure and moves on
        row.status = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
    return row


def corpus_notebooks(manifest: Path, slugs: list[str]) -> list[tuple[str, Path, Path]]:
    rows = {r["slug"]: r for r in csv.DictReader(manifest.open(encoding="utf-8"), delimiter="\t")}
    found = []
    for slug in slugs:
        if slug not in rows:
            raise SystemExit(f"record_overhead.py: no corpus notebook {slug!r}")
        local = Path(rows[slug]["local_path"])
        top = Path(*local.parts[:2])
        found.append((slug, manifest.parent / top, local.relative_to(top)))
    return found


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="measured pairs per notebook (default 5)")
    ap.add_argument("--notebooks", nargs="*", type=Path, default=[], help="more notebooks")
    ap.add_argument("--no-demo", action="store_true", help="skip notebooks/churn_analysis.ipynb")
    ap.add_argument("--corpus", nargs="?", const="auto", default=None)
    ap.add_argument("--slugs", nargs="*", default=list(DEFAULT_SLUGS))
    ap.add_argument(
        "--kernel-path",
        type=Path,
        default=None,
        help="a Jupyter data folder put first on JUPYTER_PATH (both runs use its kernels), e.g. "
        "/work/corpus-venv/share/jupyter for the corpus's pinned numpy/pandas",
    )
    ap.add_argument("--results", type=Path, default=HERE / "results" / "record_overhead.json")
    args = ap.parse_args()
    if args.kernel_path:
        # set before jupyter_client is imported; both the plain and the recorded run see it
        os.environ["JUPYTER_PATH"] = os.pathsep.join(
            [str(args.kernel_path), *filter(None, [os.environ.get("JUPYTER_PATH")])]
        )

    todo: list[tuple[str, Path, Path]] = []
    if not args.no_demo:
        demo = REPO / "notebooks" / "churn_analysis.ipynb"
        todo.append(("demo/churn_analysis", demo.parent, Path(demo.name)))
    todo += [(p.stem, p.resolve().parent, Path(p.name)) for p in args.notebooks]
    if args.corpus:
        manifest = (
            next((p for p in CORPUS_CANDIDATES if p.exists()), None)
            if args.corpus == "auto"
            else Path(args.corpus)
        )
        if manifest is None or not manifest.exists():
            raise SystemExit("record_overhead.py: no corpus MANIFEST.tsv found")
        todo += corpus_notebooks(manifest, args.slugs)

    load = os.getloadavg()
    print(f"record_overhead.py: {len(todo)} notebooks, {args.repeat} pairs each", flush=True)
    if load[0] > (os.cpu_count() or 1):
        print(f"  note: load average {load[0]:.1f} on {os.cpu_count()} cores: read the CPU column")
    rows: list[Row] = []
    for name, folder, rel in todo:
        print(name, flush=True)
        with tempfile.TemporaryDirectory(prefix="nbh-overhead-") as tmp:
            copy = Path(tmp) / "nb"
            shutil.copytree(
                folder, copy, ignore=shutil.ignore_patterns("*_prod", "*.expected", "__pycache__")
            )
            work = Path(tmp) / "work"
            work.mkdir()
            rows.append(measure(copy / rel, name, args.repeat, work))

    print()
    head = f"{'notebook':34} {'plain wall/cpu':>15} {'record wall/cpu':>16} {'ratio wall':>10} {'ratio cpu':>9}"
    print(head)
    for r in rows:
        if r.status != "ok":
            print(f"{r.name:34} {r.status}")
            continue
        print(
            f"{r.name:34} {fmt(r.median('wall', 'plain')):>7}/{fmt(r.median('cpu', 'plain')):<7} "
            f"{fmt(r.median('wall', 'record')):>8}/{fmt(r.median('cpu', 'record')):<7} "
            f"{fmt(r.ratio('wall')):>10} {fmt(r.ratio('cpu')):>9}"
        )
    ok = [r for r in rows if r.status == "ok" and r.ratio("wall") is not None]
    worst = max((r.ratio("wall") or 0.0 for r in ok), default=None)
    if ok:
        print(f"\nworst wall ratio {fmt(worst)} (target <= {TARGET})")

    data = {
        "commit": git_commit(),
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "load_average_start": [round(x, 2) for x in load],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "repeat": args.repeat,
        "target_ratio": TARGET,
        "kernel_path": str(args.kernel_path) if args.kernel_path else None,
        "notebooks": [
            {
                "name": r.name,
                "status": r.status,
                "steps": r.steps,
                "stored_bytes": r.stored_bytes,
                "median_wall": {t: r.median("wall", t) for t in ("plain", "record")},
                "median_cpu": {t: r.median("cpu", t) for t in ("plain", "record")},
                "ratio_wall": None if r.ratio("wall") is None else round(r.ratio("wall") or 0, 3),
                "ratio_cpu": None if r.ratio("cpu") is None else round(r.ratio("cpu") or 0, 3),
                "wall": r.wall,
                "cpu": r.cpu,
                "cpu_kernel": r.cpu_kernel,
            }
            for r in rows
        ],
        "worst_ratio_wall": None if worst is None else round(worst, 3),
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"results: {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
