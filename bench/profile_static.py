"""Profile a static conversion in process: ``nbharden.api.generate`` (no recording, no verification) under
cProfile, after one warm-up call, so the profile shows the conversion and not the imports.

    python bench/profile_static.py NOTEBOOK [--cells N] [--top 30] [--out FILE.prof]

``--cells N`` profiles bench/goals.py's synthetic notebook of N code cells instead (NOTEBOOK is then a folder
to write it into). The command line cannot be profiled this way: it forks a worker even for one notebook.
Prints the CPU time of the profiled call and the functions with the most cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--cells", type=int, default=0)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from nbharden.api import generate
    from nbharden.settings import Settings

    path = args.notebook
    limit = Settings().max_syntax_nodes
    if args.cells:
        from goals import SYNTHETIC_MAX_NODES, synthetic

        path = synthetic(args.cells, args.notebook)
        limit = SYNTHETIC_MAX_NODES
    settings = Settings(record=False, verify=False, out=path.parent / "out", max_syntax_nodes=limit)
    generate(path, settings)  # warm-up: imports, caches of the formatters
    profile = cProfile.Profile()
    started = time.process_time()
    profile.enable()
    generate(path, settings)
    profile.disable()
    took = time.process_time() - started
    plain = time.process_time()
    generate(path, settings)
    plain = time.process_time() - plain
    print(f"{path.name}: {plain:.2f} s CPU unprofiled, {took:.2f} s profiled")
    if args.out:
        profile.dump_stats(args.out)
    pstats.Stats(profile).sort_stats(args.sort).print_stats(args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
