#!/usr/bin/env python3
"""Measure static conversion time per notebook, with nbconvert and jupytext as references.

    python bench/static_convert.py [--corpus MANIFEST.tsv] [--split dev] [--slugs S ...]
        [--limit N] [--repeat 1] [--synthetic-cells 50] [--synthetic-repeat 5] [--no-corpus]

For each notebook of the corpus's runnable set (copied to a temporary folder first: the corpus is
read-only) and for a generated notebook of ``--synthetic-cells`` cells, it times in the same run, as
the median of the repeats, wall and CPU time of:

  nbharden   ``nbharden convert NB --no-record --out OUT``, a fresh process (what a user waits for)
  api        ``nbharden.api.generate`` in this process, after one warm-up call (the library's cost)
  nbconvert  ``jupyter nbconvert --to script NB`` (reference: export only, no analysis)
  jupytext   ``jupytext --to py NB`` (reference: export only, no analysis)

It prints a table and writes bench/results/static_convert.json. A conversion that fails is timed all
the same and its exit code or exception is shown: the benchmark measures, it does not judge.
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
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from startup import git_commit  # bench/ is on sys.path when a script here runs

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TOOLS = ("nbharden", "api", "nbconvert", "jupytext")
# The corpus sits in shared/ beside the checkout (developers and CI alike).
CORPUS_CANDIDATES = (
    REPO.parent / "shared" / "corpus" / "MANIFEST.tsv",
    Path("/work/shared/corpus/MANIFEST.tsv"),
)


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float  # less disturbed than wall time when other work shares the machine's 2 cores
    status: str


@dataclass
class Row:
    name: str
    cells: int
    code_cells: int
    seconds: dict[str, float | None] = field(default_factory=dict)  # median wall time
    cpu_seconds: dict[str, float | None] = field(default_factory=dict)  # median CPU time
    status: dict[str, str] = field(default_factory=dict)


def bin_of(tool: str) -> str:
    """The console script ``tool`` beside this interpreter, else on PATH; SystemExit if missing."""
    beside = Path(sys.executable).parent / tool
    if beside.exists():
        return str(beside)
    found = shutil.which(tool)
    if found is None:
        raise SystemExit(f"static_convert.py: '{tool}' not found; run `make .venv` first")
    return found


def child_cpu() -> float:
    """CPU seconds (user + system) used so far by this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_process(cmd: list[str], cwd: Path, timeout: float) -> Timing:
    """Wall and CPU time of one run of ``cmd`` and its status: ``ok`` or ``exit N: last line``."""
    cpu0, start = child_cpu(), time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return Timing(time.perf_counter() - start, child_cpu() - cpu0, f"timeout {timeout:.0f} s")
    wall, cpu = time.perf_counter() - start, child_cpu() - cpu0
    if proc.returncode == 0:
        return Timing(wall, cpu, "ok")
    lines = [ln for ln in (proc.stderr + proc.stdout).strip().splitlines() if ln.strip()]
    return Timing(wall, cpu, f"exit {proc.returncode}: {lines[-1][:100] if lines else ''}")


def timed_call(fn: Callable[[], object]) -> Timing:
    """Wall and CPU time of ``fn()`` and its status: ``ok`` or the exception and its first line."""
    cpu0, start = time.process_time(), time.perf_counter()
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - a benchmark records every failure and moves on
        first = str(exc).splitlines()[0][:100] if str(exc) else ""
        status = f"{type(exc).__name__}: {first}"
    else:
        status = "ok"
    return Timing(time.perf_counter() - start, time.process_time() - cpu0, status)


def run_tool(tool: str, nb: Path, out: Path, timeout: float) -> Timing:
    """One timed run of ``tool`` on ``nb``, writing under ``out``."""
    from nbharden import api
    from nbharden.settings import Settings

    if tool == "api":
        return timed_call(lambda: api.generate(nb, Settings(out=out / "api", record=False)))
    commands = {
        # --no-record: static conversion only, nothing of the notebook is executed
        "nbharden": [
            bin_of("nbharden"),
            "convert",
            nb.name,
            "--no-record",
            "--out",
            str(out / tool),
        ],
        "nbconvert": [
            bin_of("jupyter"),
            "nbconvert",
            "--to",
            "script",
            nb.name,
            "--output-dir",
            str(out / tool),
        ],
        "jupytext": [
            bin_of("jupytext"),
            "--to",
            "py",
            nb.name,
            "-o",
            str(out / tool / f"{nb.stem}.py"),
        ],
    }
    (out / "jupytext").mkdir(parents=True, exist_ok=True)  # jupytext -o does not create folders
    return timed_process(commands[tool], nb.parent, timeout)


def measure(nb: Path, name: str, repeat: int, timeout: float, scratch: Path) -> Row:
    """Time the four tools on ``nb``, ``repeat`` times each (median); outputs go to ``scratch``."""
    node = nbformat.read(nb, as_version=4)
    row = Row(name, len(node.cells), sum(c.cell_type == "code" for c in node.cells))
    runs: dict[str, list[Timing]] = {t: [] for t in TOOLS}
    for i in range(repeat):
        out = scratch / f"{name}-{i}"
        shutil.rmtree(out, ignore_errors=True)
        for tool in TOOLS:
            timing = run_tool(tool, nb, out, timeout)
            runs[tool].append(timing)
            if row.status.get(tool, "ok") == "ok":  # keep the first failure
                row.status[tool] = timing.status
    row.seconds = {t: statistics.median(x.wall for x in v) for t, v in runs.items()}
    row.cpu_seconds = {t: statistics.median(x.cpu for x in v) for t, v in runs.items()}
    return row


def synthetic_notebook(cells: int) -> nbformat.NotebookNode:
    """A deterministic notebook of ``cells`` cells shaped like a data-science proof of concept.

    A parameters cell, imports, markdown sections every few cells, functions defined then used,
    frames reassigned and mutated in place, magics, shell lines, prints and display-only
    expressions. It is valid Python (with IPython syntax) but is never run: only static conversion
    is measured.
    """
    out = [
        new_markdown_cell("# Synthetic analysis\n\nGenerated by bench/static_convert.py."),
        new_code_cell(
            'data_path = "data/input.csv"\nthreshold = 0.5\nn_rounds = 10\nseed = 7',
            metadata={"tags": ["parameters"]},
        ),
        new_code_cell(
            "import numpy as np\nimport pandas as pd\nimport matplotlib.pyplot as plt\n"
            "%matplotlib inline"
        ),
        new_code_cell('df = pd.read_csv(data_path)\nprint(f"{len(df)} rows")'),
    ]
    templates = [
        lambda k: new_markdown_cell(f"## Section {k}\n\nWhat step {k} does and why."),
        lambda k: new_code_cell(
            f"def transform_{k}(frame, factor={k}):\n"
            f'    """Scale the value column by {k}."""\n'
            f"    result = frame.copy()\n"
            f'    result["value_{k}"] = result["value"] * factor\n'
            f"    return result"
        ),
        lambda k: new_code_cell(f"df = transform_{k}(df)\ndf.head()"),
        lambda k: new_code_cell(
            f"for d in [df]:\n    d['flag_{k}'] = d['value_{k}'] > threshold\n"
            f"summary_{k} = df.groupby('flag_{k}')['value'].mean()\nprint(summary_{k})"
        ),
        lambda k: new_code_cell(
            f"rng = np.random.default_rng(seed + {k})\n"
            f"noise_{k} = rng.normal(size=len(df))\n"
            f"%time total_{k} = float(np.sum(df['value_{k}'] + noise_{k}))"
        ),
        lambda k: new_code_cell(
            f"fig, ax = plt.subplots()\nax.hist(df['value_{k}'], bins=20)\n"
            f"ax.set_title('value {k}')\nplt.show()"
        ),
        lambda k: new_code_cell(
            f"!ls -l {{data_path}}\nresults_{k} = [total_{k} * i for i in range(n_rounds)]"
        ),
        lambda k: new_code_cell("df.describe()"),
    ]
    k = 0
    while len(out) < cells:
        out.append(templates[k % len(templates)](k // len(templates)))
        k += 1
    nb = new_notebook(cells=out[:cells])
    for i, cell in enumerate(nb.cells):
        cell.id = f"synthetic-{i:04d}"  # fixed ids: the same bytes every run
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    return nb


def corpus_rows(manifest: Path, split: str, slugs: list[str]) -> list[dict[str, str]]:
    """Rows of ``manifest`` in the runnable set and ``split`` ('all': any), maybe only ``slugs``."""
    with manifest.open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["set"] == "runnable"]
    if split != "all":
        rows = [r for r in rows if r["split"] == split]
    if slugs:
        rows = [r for r in rows if r["slug"] in slugs]
    return rows


def fmt(secs: float | None) -> str:
    return "-" if secs is None else f"{secs:.2f}"


def cell(row: Row, tool: str) -> str:
    """``wall/cpu`` seconds for one tool."""
    return f"{fmt(row.seconds.get(tool))}/{fmt(row.cpu_seconds.get(tool))}"


def print_row(row: Row) -> None:
    bad = {t: s for t, s in row.status.items() if s != "ok"}
    note = "; ".join(f"{t}: {s}" for t, s in bad.items())
    cols = " ".join(f"{cell(row, t):>11}" for t in TOOLS)
    print(f"{row.name[:40]:<40} {row.cells:>5} {cols}  {note}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--corpus", type=Path, help="MANIFEST.tsv of the shared corpus (default: ../shared/corpus)"
    )
    ap.add_argument("--split", default="dev", help="dev, heldout or all (default dev)")
    ap.add_argument("--slugs", nargs="*", default=[], help="only these corpus notebooks")
    ap.add_argument("--limit", type=int, default=0, help="only the first N corpus notebooks")
    ap.add_argument(
        "--repeat", type=int, default=1, help="runs per corpus notebook and tool (median)"
    )
    ap.add_argument("--synthetic-cells", type=int, default=50)
    ap.add_argument("--synthetic-repeat", type=int, default=5)
    ap.add_argument("--no-corpus", action="store_true", help="measure the synthetic notebook only")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per run")
    ap.add_argument("--results", type=Path, default=HERE / "results" / "static_convert.json")
    args = ap.parse_args()

    manifest = args.corpus or next((p for p in CORPUS_CANDIDATES if p.is_file()), None)
    corpus: list[dict[str, str]] = []
    if not args.no_corpus:
        if manifest is None or not manifest.is_file():
            print(
                "static_convert.py: corpus MANIFEST.tsv not found; "
                "measuring the synthetic notebook only",
                file=sys.stderr,
            )
        else:
            corpus = corpus_rows(manifest, args.split, args.slugs)
            if args.limit:
                corpus = corpus[: args.limit]

    start_import = time.perf_counter()
    from nbharden import api  # noqa: F401 - timed: what the in-process column does not include

    import_s = time.perf_counter() - start_import
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="nbharden-bench-") as tmp:
        work = Path(tmp)
        synthetic = work / "synthetic" / f"synthetic_{args.synthetic_cells}.ipynb"
        synthetic.parent.mkdir(parents=True)
        nbformat.write(synthetic_notebook(args.synthetic_cells), synthetic)

        # One untimed call so the api column measures conversion, not first imports of libcst & co.
        from nbharden.settings import Settings

        warm = timed_call(
            lambda: api.generate(synthetic, Settings(out=work / "warmup", record=False))
        )
        print(
            f"import nbharden.api {import_s:.3f} s; "
            f"first generate() {warm.wall:.3f} s ({warm.status})"
        )
        print(
            f"{'notebook':<40} {'cells':>5} "
            + " ".join(f"{t:>11}" for t in TOOLS)
            + "  (median seconds, wall/cpu)"
        )

        rows.append(
            measure(synthetic, synthetic.stem, args.synthetic_repeat, args.timeout, work / "out")
        )
        print_row(rows[-1])
        for entry in corpus:
            assert manifest is not None
            slug = entry["slug"]
            folder = Path(entry["local_path"]).parts[
                :2
            ]  # runnable/<slug>: the notebook with its data files
            src = manifest.parent.joinpath(*folder)
            dst = work / "corpus" / slug
            shutil.copytree(src, dst)
            nb = dst.joinpath(*Path(entry["local_path"]).parts[2:])
            rows.append(measure(nb, slug, args.repeat, args.timeout, work / "out"))
            print_row(rows[-1])

    totals = {t: sum(r.seconds[t] or 0.0 for r in rows[1:]) for t in TOOLS}
    cpu_totals = {t: sum(r.cpu_seconds[t] or 0.0 for r in rows[1:]) for t in TOOLS}
    ok_counts = {t: sum(r.status.get(t) == "ok" for r in rows[1:]) for t in TOOLS}
    if corpus:
        print(
            f"{'corpus total (' + str(len(corpus)) + ' notebooks)':<40} {'':>5} "
            + " ".join(f"{fmt(totals[t]) + '/' + fmt(cpu_totals[t]):>11}" for t in TOOLS)
        )
        print(f"{'corpus ok':<40} {'':>5} " + " ".join(f"{ok_counts[t]:>11}" for t in TOOLS))
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1):
        print(
            f"note: load average {load:.1f} on {os.cpu_count()} CPUs: "
            "wall times are inflated, compare CPU times"
        )

    result = {
        "benchmark": "static_convert",
        "import_api_s": import_s,
        "first_generate_s": warm.wall,
        "first_generate_status": warm.status,
        "load_average_1min_at_end": os.getloadavg()[0],
        "synthetic": {"cells": args.synthetic_cells, "repeat": args.synthetic_repeat},
        "corpus": {
            "manifest": str(manifest) if corpus else None,
            "split": args.split,
            "notebooks": len(corpus),
            "repeat": args.repeat,
            "total_s": totals if corpus else None,
            "total_cpu_s": cpu_totals if corpus else None,
            "ok": ok_counts if corpus else None,
        },
        "rows": [
            {
                "notebook": r.name,
                "cells": r.cells,
                "code_cells": r.code_cells,
                "seconds": r.seconds,
                "cpu_seconds": r.cpu_seconds,
                "status": r.status,
            }
            for r in rows
        ],
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
    print(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
