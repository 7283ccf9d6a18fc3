#!/usr/bin/env python3
"""Issue 17's goals, each measured side by side with its reference in the same run.

    python bench/goals.py [--only startup,static,scaling,rerun,record,jobs] [--pairs 5] [--table]

Every goal is a pair of whole-process commands run alternately (which goes first flips each pair),
``--pairs`` times; the figures are medians with min-max, of CPU seconds (user + system of the
process and every child it reaped: workers, kernels, ruff, pytest) and of wall seconds. CPU is the
primary figure: the machine has 2 cores shared with other work, and the load average is printed
and stored with each result. Each ratio is the median of the per-pair ratios.

  startup  ``nbharden --help``                       / ``jupytext --help``
  static   ``nbharden convert NB --no-record --no-verify`` on corpus notebooks
                                                     / ``jupytext --to py`` and ``jupyter nbconvert
                                                       --to script``  (target <= 1.5x jupytext, < 1x nbconvert)
  scaling  the same on synthetic notebooks of 50/200/1000/2000 code cells / jupytext; a log-log fit of
           nbharden's CPU time against the code cells gives the growth per doubling (linear: 2.0; the
           per-cell cost may grow at most 1.2x per doubling) (target 1000 cells < 4 s, 2000 < 8 s)
  rerun    the no-change re-run (``convert --check`` and ``convert`` again, static and recorded) of an
           unchanged notebook / the first conversion                                   (target < 0.3 s)
  record   ``nbharden convert NB`` (two recordings and verification) / one ``papermill NB OUT`` run
                                                                                      (target <= 2.0x)
  jobs     20 notebooks, ``convert -j 2`` / ``convert -j 1`` (wall time: what parallelism buys)

Each goal writes ``bench/results/goal_<name>.json``; the table (``--table`` alone reprints it from
the files) is the summary ``make bench`` shows. The corpus is ``shared/corpus`` beside the checkout
(read-only: each notebook's folder is copied to a temporary folder); corpus notebooks run on the
corpus venv's kernel (``--kernel-path``, default /work/corpus-venv/share/jupyter when present).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat
from startup import git_commit  # bench/ is on sys.path when a script here runs
from static_convert import synthetic_notebook

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
GOALS = ("startup", "static", "scaling", "rerun", "record", "jobs")
CORPUS = next(
    (
        p
        for p in (REPO.parent / "shared" / "corpus", Path("/work/shared/corpus"))
        if (p / "MANIFEST.tsv").is_file()
    ),
    None,
)
KERNEL_PATH = Path("/work/corpus-venv/share/jupyter")
STATIC_SLUGS = (
    "pydata-ch09",
    "pandas-cookbook-ch4",
    "pdsh-0307-merge-and-join",
    "cfdpython-14-step-11",
)
RECORD_SLUGS = ("pandas-cookbook-ch4",)


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float
    status: str  # "ok" or "exit N: last line"


Command = Callable[[], Run]


def bin_of(tool: str) -> str:
    """The console script ``tool`` beside this interpreter (the venv's), else on PATH."""
    beside = Path(sys.executable).parent / tool
    found = str(beside) if beside.exists() else shutil.which(tool)
    if found is None:
        raise SystemExit(f"goals.py: '{tool}' not found; run `make .venv` first")
    return found


#: Where the reference tools come from: a venv of their own (``make bench`` makes it, build/bench-ref), since
#: nbharden's venv has JupyterLab's jsonschema extras, and nbformat's validator then builds an RFC 3987 grammar
#: on import (1.5 s of CPU per process): a reference slowed by what it need not load flatters nbharden.
REF_VENV: list[Path] = [REPO / "build" / "bench-ref"]


def ref_bin(tool: str) -> str:
    """The reference ``tool`` from the reference venv when there is one, else as ``bin_of``."""
    candidate = REF_VENV[0] / "bin" / tool
    return str(candidate) if candidate.exists() else bin_of(tool)


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(
    cmd: Sequence[str],
    cwd: Path,
    *,
    env: dict[str, str] | None = None,
    ok: Sequence[int] = (0,),
    before: Callable[[], None] | None = None,
) -> Command:
    """A command that runs ``cmd`` once (after ``before``, untimed) and returns its wall and CPU time."""

    def command() -> Run:
        if before is not None:
            before()
        cpu0, start = child_cpu(), time.perf_counter()
        proc = subprocess.run(
            list(cmd),
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        wall, cpu = time.perf_counter() - start, child_cpu() - cpu0
        if proc.returncode in ok:
            return Run(wall, cpu, "ok")
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        return Run(wall, cpu, f"exit {proc.returncode}: {lines[-1][:120] if lines else ''}")

    return command


def stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def paired(commands: dict[str, Command], pairs: int, warmup: int = 1) -> dict[str, object]:
    """Run ``commands`` in turn (the order rotating each round) ``warmup`` + ``pairs`` times.

    Returns per command the CPU and wall statistics and its first failure; per command after the first,
    the ratio to the first (median and min-max of the per-round ratios): the first is the one measured,
    the others its references.
    """
    names = list(commands)
    runs: dict[str, list[Run]] = {n: [] for n in names}
    for i in range(warmup + pairs):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            result = commands[name]()
            if i >= warmup:
                runs[name].append(result)
    first = names[0]
    out: dict[str, object] = {}
    for name in names:
        rs = runs[name]
        entry: dict[str, object] = {
            "cpu": stats([r.cpu for r in rs]),
            "wall": stats([r.wall for r in rs]),
            "status": next((r.status for r in rs if r.status != "ok"), "ok"),
            "runs": [[round(r.cpu, 3), round(r.wall, 3)] for r in rs],
        }
        if name != first:
            for what in ("cpu", "wall"):
                ratios = [
                    getattr(a, what) / getattr(b, what)
                    for a, b in zip(runs[first], rs, strict=True)
                    if getattr(b, what) > 0
                ]
                entry[f"ratio_{what}"] = stats(ratios) if ratios else None
        out[name] = entry
    return out


def corpus_notebook(slug: str, work: Path) -> Path:
    """A copy of the corpus notebook ``slug``'s folder under ``work``; the notebook's path in it."""
    if CORPUS is None:
        raise SystemExit("goals.py: the corpus (shared/corpus/MANIFEST.tsv) was not found")
    with (CORPUS / "MANIFEST.tsv").open(encoding="utf-8", newline="") as fh:
        rows = {r["slug"]: r for r in csv.DictReader(fh, delimiter="\t")}
    local = Path(rows[slug]["local_path"])
    dst = work / slug
    if not dst.exists():
        shutil.copytree(CORPUS / Path(*local.parts[:2]), dst)
    return dst.joinpath(*local.parts[2:])


#: The syntax-node limit of the synthetic notebooks' conversions (``[tool.nbharden] max-syntax-nodes``).
SYNTHETIC_MAX_NODES = 1_000_000


def synthetic(code_cells: int, folder: Path) -> Path:
    """A synthetic notebook (bench/static_convert.py's) of exactly ``code_cells`` code cells."""
    nb = synthetic_notebook(code_cells * 8 // 7 + 16)
    kept, count = [], 0
    for cell in nb.cells:
        if count == code_cells:
            break
        kept.append(cell)
        count += cell.cell_type == "code"
    nb.cells = kept
    path = folder / f"synthetic_{code_cells}" / f"synthetic_{code_cells}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    # 2,000 code cells are about 95,000 syntax nodes: over the default limit (50,000), which would refuse them
    (path.parent / "pyproject.toml").write_text(
        f"[tool.nbharden]\nmax-syntax-nodes = {SYNTHETIC_MAX_NODES}\n"
    )
    return path


def kernel_env(kernel_path: Path | None) -> dict[str, str]:
    """This environment with ``kernel_path`` first on JUPYTER_PATH (the corpus venv's kernel)."""
    env = dict(os.environ)
    if kernel_path is not None and kernel_path.is_dir():
        env["JUPYTER_PATH"] = os.pathsep.join(
            [str(kernel_path), *filter(None, [env.get("JUPYTER_PATH")])]
        )
    return env


def static_commands(nb: Path, out: Path) -> dict[str, Command]:
    """nbharden's static conversion of ``nb`` (a fresh output folder each time) and the references."""
    target = out / "nbharden"
    (out / "jupytext").mkdir(parents=True, exist_ok=True)
    return {
        "nbharden": run(
            [
                bin_of("nbharden"),
                "convert",
                nb.name,
                "--no-record",
                "--no-verify",
                "--out",
                str(target),
            ],
            nb.parent,
            before=lambda: shutil.rmtree(target, ignore_errors=True),
        ),
        "jupytext": run(
            [
                ref_bin("jupytext"),
                "--to",
                "py",
                nb.name,
                "-o",
                str(out / "jupytext" / f"{nb.stem}.py"),
            ],
            nb.parent,
        ),
        "nbconvert": run(
            [
                ref_bin("jupyter"),
                "nbconvert",
                "--to",
                "script",
                nb.name,
                "--output-dir",
                str(out / "nbconvert"),
            ],
            nb.parent,
        ),
    }


def goal_startup(args: argparse.Namespace, work: Path) -> dict[str, object]:
    commands = {
        "nbharden": run([bin_of("nbharden"), "--help"], work),
        "jupytext": run([ref_bin("jupytext"), "--help"], work),
    }
    rows = [{"work": "--help", **paired(commands, args.pairs * 2, warmup=2)}]
    return {"rows": rows, "target": "nbharden --help under 0.3 s wall"}


def goal_static(args: argparse.Namespace, work: Path) -> dict[str, object]:
    rows = []
    for slug in args.static_slugs:
        nb = corpus_notebook(slug, work / "corpus")
        print(f"  static {slug}", flush=True)
        rows.append(
            {
                "work": slug,
                **paired(static_commands(nb, work / "out" / slug), args.pairs),
            }
        )
    return {"rows": rows, "target": "CPU <= 1.5x jupytext's and < 1x nbconvert's"}


def fit_loglog(points: list[tuple[int, float]]) -> float | None:
    """The least-squares slope of log(t) against log(n)."""
    if len(points) < 2:
        return None
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(t) for _, t in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else None


def goal_scaling(args: argparse.Namespace, work: Path) -> dict[str, object]:
    rows = []
    for cells in args.sizes:
        nb = synthetic(cells, work / "synthetic")
        print(f"  scaling {cells} code cells", flush=True)
        commands = static_commands(nb, work / "out" / f"synthetic_{cells}")
        del commands["nbconvert"]  # the table compares with jupytext alone
        pairs = args.pairs if cells <= 200 else max(1, args.pairs // 3)
        rows.append(
            {
                "work": f"synthetic {cells} code cells",
                "cells": cells,
                **paired(commands, pairs, warmup=0),
            }
        )
    cpu = [(r["cells"], r["nbharden"]["cpu"]["median"]) for r in rows]  # type: ignore[index]
    big = [(n, t) for n, t in cpu if n >= 200]
    slope = fit_loglog(big)
    steps = [
        {
            "from": a,
            "to": b,
            "growth": tb / ta,
            "per_doubling": (tb / ta) ** (1 / math.log2(b / a)),
        }
        for (a, ta), (b, tb) in zip(cpu, cpu[1:], strict=False)
    ]
    fit = {
        "sizes_fitted": [n for n, _ in big],
        "slope": slope,
        "growth_per_doubling": None if slope is None else 2**slope,
        "per_cell_cost_per_doubling": None if slope is None else 2 ** (slope - 1),
        "steps": steps,
    }
    target = "1000 code cells < 4 s CPU, 2000 < 8 s; per-cell cost grows <= 1.2x per doubling"
    return {"rows": rows, "fit": fit, "target": target}


def rerun_rows(
    label: str, nb: Path, out: Path, env: dict[str, str], flags: list[str], pairs: int
) -> list[dict[str, object]]:
    """After one conversion of ``nb`` into ``out`` (with ``flags``): ``convert --check`` and ``convert`` again
    (nothing changed), against the first conversion into a fresh folder."""
    base = [bin_of("nbharden"), "convert", nb.name, *flags]
    first = run([*base, "--out", str(out)], nb.parent, env=env)().status
    fresh = out.parent / (out.name + "-fresh")
    first_conversion = run(
        [*base, "--out", str(fresh)],
        nb.parent,
        env=env,
        before=lambda: shutil.rmtree(fresh, ignore_errors=True),
    )
    rows = []
    for what, extra in (("--check", ["--check"]), ("again", [])):
        commands = {
            "nbharden": run([*base, "--out", str(out), *extra], nb.parent, env=env),
            "first conversion": first_conversion,
        }
        row = {
            "work": f"{label} {what}",
            "first_status": first,
            **paired(commands, pairs),
        }
        rows.append(row)
    return rows


def goal_rerun(args: argparse.Namespace, work: Path) -> dict[str, object]:
    env = kernel_env(args.kernel_path)
    rows = []
    for slug in args.record_slugs:
        nb = corpus_notebook(slug, work / "corpus")
        print(f"  rerun {slug}", flush=True)
        rows += rerun_rows(
            f"{slug} static",
            nb,
            work / "rerun" / f"{slug}-static",
            env,
            ["--no-record"],
            args.pairs,
        )
        rows += rerun_rows(
            f"{slug} recorded",
            nb,
            work / "rerun" / f"{slug}-rec",
            env,
            [],
            max(1, args.pairs // 2),
        )
    return {"rows": rows, "target": "a no-change re-run under 0.3 s wall"}


def goal_record(args: argparse.Namespace, work: Path) -> dict[str, object]:
    rows = []
    # the demo runs on nbharden's venv's kernel (both commands: the reference papermill has no kernel of its own)
    todo = [
        (
            "demo",
            REPO / "notebooks" / "churn_analysis.ipynb",
            Path(sys.prefix) / "share" / "jupyter",
        )
    ]
    todo += [
        (slug, corpus_notebook(slug, work / "corpus"), args.kernel_path)
        for slug in args.record_slugs
    ]
    for label, nb, kernel_path in todo:
        if label == "demo":  # a copy: the conversion writes next to it
            shutil.copytree(nb.parent, work / "demo", dirs_exist_ok=True)
            nb = work / "demo" / nb.name
        env = kernel_env(kernel_path)
        out = work / "record" / label
        print(f"  record {label}", flush=True)
        commands = {
            "nbharden": run(
                [
                    bin_of("nbharden"),
                    "convert",
                    nb.name,
                    "--out",
                    str(out / "nbharden"),
                ],
                nb.parent,
                env=env,
                before=lambda out=out: shutil.rmtree(out / "nbharden", ignore_errors=True),
            ),
            "papermill": run(
                [
                    ref_bin("papermill"),
                    nb.name,
                    str(out / "papermill.ipynb"),
                    "--cwd",
                    str(nb.parent),
                    "--no-progress-bar",
                ],
                nb.parent,
                env=env,
            ),
        }
        rows.append({"work": label, **paired(commands, max(1, args.pairs // 2 + 1))})
    return {
        "rows": rows,
        "target": "recorded convert <= 2.0x one papermill run (wall; < 3 s more under 3 s)",
    }


def goal_jobs(args: argparse.Namespace, work: Path) -> dict[str, object]:
    folder = work / "jobs"
    sources = sorted((REPO / "fixtures" / "golden").glob("*.ipynb"))
    notebooks = []
    for i in range(args.jobs_notebooks):
        src = sources[i % len(sources)]
        dst = folder / f"nb{i:02d}_{src.name}"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)
        notebooks.append(dst.name)
    outs = {j: work / f"jobs-out-{j}" for j in (1, 2)}

    def command(j: int) -> Command:
        cmd = [
            bin_of("nbharden"),
            "convert",
            *notebooks,
            "--no-record",
            "--no-verify",
            "-j",
            str(j),
            "--out",
            str(outs[j]),
        ]
        # exit 1 or 2: some golden fixtures are refused on purpose; they are timed all the same
        return run(
            cmd,
            folder,
            ok=(0, 1, 2),
            before=lambda: shutil.rmtree(outs[j], ignore_errors=True),
        )

    print(f"  jobs {len(notebooks)} notebooks", flush=True)
    rows = [
        {
            "work": f"{len(notebooks)} notebooks",
            **paired({"-j 2": command(2), "-j 1": command(1)}, max(1, args.pairs // 2)),
        }
    ]
    return {"rows": rows, "target": "-j 2 near half of -j 1's wall time (2 cores)"}


def machine() -> dict[str, object]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }


def fmt(x: object, spec: str = ".2f") -> str:
    return "-" if not isinstance(x, (int, float)) else format(x, spec)


def table_lines(results: dict[str, dict[str, object]]) -> list[str]:
    """The summary: per goal and row, the measured command's CPU and wall medians (min-max) and its ratios."""
    lines = [
        f"{'goal':8} {'work':38} {'CPU s med (min-max)':>22} {'wall s':>7}  ratios (CPU, median [min-max])"
    ]
    for goal in GOALS:
        data = results.get(goal)
        if not data:
            continue
        for row in data["rows"]:  # type: ignore[union-attr]
            names = [k for k, v in row.items() if isinstance(v, dict) and "cpu" in v]
            first = row[names[0]]
            cpu = first["cpu"]
            ratios = []
            for ref in names[1:]:
                r = row[ref].get("ratio_cpu") or {}
                ratios.append(
                    f"/{ref} {fmt(r.get('median'))} [{fmt(r.get('min'))}-{fmt(r.get('max'))}]"
                )
            bad = [f"{n}: {row[n]['status']}" for n in names if row[n]["status"] != "ok"]
            cpu_s = f"{fmt(cpu['median'])} ({fmt(cpu['min'])}-{fmt(cpu['max'])})"
            lines.append(
                f"{goal:8} {str(row['work'])[:38]:38} {cpu_s:>22} {fmt(first['wall']['median']):>7}  "
                + "  ".join(ratios)
                + (f"  !! {'; '.join(bad)}" if bad else "")
            )
        fit = data.get("fit")
        if isinstance(fit, dict) and fit.get("slope") is not None:
            steps = ", ".join(
                f"{s['from']}->{s['to']} {s['per_doubling']:.2f}x" for s in fit["steps"]
            )
            lines.append(
                f"{'':8} fit over {fit['sizes_fitted']}: {fit['growth_per_doubling']:.2f}x per doubling "
                f"(per-cell cost {fit['per_cell_cost_per_doubling']:.2f}x; target <= 1.2); steps: {steps}"
            )
        load = data.get("load_average")
        lines.append(
            f"{'':8} target: {data['target']}; load average {load}; commit {data.get('commit')}"
        )
    return lines


def main() -> int:
    # measure as installed: pip writes each package's bytecode at install, and every tool measured may write
    # its own on its first (warm-up) run; with PYTHONDONTWRITEBYTECODE (set on some machines, this project's
    # included) an edited module would be compiled again in every measured run (a tenth of a small conversion)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--only",
        default=",".join(GOALS),
        help=f"comma-separated goals of {', '.join(GOALS)}",
    )
    ap.add_argument(
        "--pairs",
        type=int,
        default=5,
        help="measured rounds per comparison (default 5)",
    )
    ap.add_argument("--sizes", type=int, nargs="*", default=[50, 200, 1000, 2000])
    ap.add_argument("--static-slugs", nargs="*", default=list(STATIC_SLUGS))
    ap.add_argument("--record-slugs", nargs="*", default=list(RECORD_SLUGS))
    ap.add_argument("--jobs-notebooks", type=int, default=20)
    ap.add_argument(
        "--kernel-path",
        type=Path,
        default=KERNEL_PATH if KERNEL_PATH.is_dir() else None,
    )
    ap.add_argument(
        "--ref-venv", type=Path, default=REF_VENV[0], help="venv of the reference tools"
    )
    ap.add_argument(
        "--table",
        action="store_true",
        help="only print the table from bench/results/goal_*.json",
    )
    args = ap.parse_args()
    REF_VENV[0] = args.ref_venv
    goals = [g for g in args.only.split(",") if g]
    unknown = set(goals) - set(GOALS)
    if unknown:
        raise SystemExit(f"goals.py: unknown goal(s) {', '.join(sorted(unknown))}")
    if not args.table:
        for goal in goals:
            print(f"{goal} (load average {os.getloadavg()[0]:.1f})", flush=True)
            with tempfile.TemporaryDirectory(prefix=f"nbh-goal-{goal}-") as tmp:
                load0 = os.getloadavg()[0]
                data = globals()[f"goal_{goal}"](args, Path(tmp))
            data.update(
                goal=goal,
                load_average=f"{load0:.1f}-{os.getloadavg()[0]:.1f}",
                commit=git_commit(),
                machine=machine(),
                when=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                pairs=args.pairs,
                references=(str(args.ref_venv) if args.ref_venv.is_dir() else "nbharden's venv"),
            )
            RESULTS.mkdir(exist_ok=True)
            (RESULTS / f"goal_{goal}.json").write_text(
                json.dumps(data, indent=1) + "\n", encoding="utf-8"
            )
    results = {}
    for goal in GOALS:
        path = RESULTS / f"goal_{goal}.json"
        if path.is_file():
            results[goal] = json.loads(path.read_text(encoding="utf-8"))
    print("\n".join(table_lines(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
