"""A Python process that gets the generated suite's run ready while the notebook records (issue 17).

Verifying a recorded conversion runs the generated suite in a new interpreter, which spends most of its time
importing: pytest, then the notebook's libraries (pandas, scikit-learn, matplotlib: 1.5-2.5 s on the demo) before
the first test runs. None of that depends on the generated code, so :class:`WarmSuite` starts that interpreter as
the conversion begins: it imports pytest and those of the notebook's libraries that are safe to import early
(:data:`PRELOAD`), then waits on its standard input. When the package is written, :meth:`WarmSuite.run` hands it
the folder and pytest's arguments and it runs the suite as ``python -m pytest`` would, in the same environment
(checked: :meth:`WarmSuite.fits`; else the caller starts pytest afresh).

Only where the tests would run without a sandbox (tier ``off``): the sandbox tiers bound a run's wall time and
set up its folders per run. A library is imported early only when the notebook imports it, and not at all when
the notebook configures libraries through the environment or ``matplotlib.use`` (the early import would have
seen the configuration missing; ``plt.style.use`` changes nothing an import reads). The waiting process imports
nothing of the package under test.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbharden.record.watch import Cancel

#: Libraries imported ahead when the notebook imports them: heavy to import, and their import reads no setting
#: a notebook changes at run time (deep-learning frameworks read theirs from the environment: never ahead).
PRELOAD = (
    "numpy",
    "pandas",
    "scipy",
    "sklearn",
    "matplotlib",
    "seaborn",
    "statsmodels",
    "pyarrow",
    "requests",
)

#: The waiting process's exit status when its interpreter has no pytest (pytest's own are 0-5)
NO_PYTEST = 86

#: The waiting process (``python -c``; its arguments: the notebook, the libraries it may import ahead, the exit
#: status that says it has no pytest). It runs in the notebook's environment, so it uses the standard library
#: only. Read a request line ``{"cwd": folder, "args": [pytest's arguments]}``, then behave as ``python -m pytest
#: ARGS`` started in ``cwd``; end quietly at end of input.
BOOT = r"""
import ast, json, os, re, sys

NO_PYTEST = int(sys.argv[3])

CONFIGURES = re.compile(
    r"environ\s*\[[^\]]*\]\s*=(?!=)|environ\.(update|setdefault|pop)|putenv|%env|%set_env"
    r"|\b(matplotlib|mpl)\.use\("
)


def ahead(notebook, allowed):
    try:
        if os.path.getsize(notebook) > 64 * 1024 * 1024:  # not worth reading twice
            return []
        with open(notebook, encoding="utf-8") as file:
            cells = json.load(file).get("cells", [])
    except (OSError, ValueError, AttributeError):
        return []
    names = []
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if CONFIGURES.search(source):
            return []
        lines = [l for l in source.splitlines() if not l.lstrip().startswith(("%", "!"))]
        try:
            tree = ast.parse("\n".join(lines))
        except (SyntaxError, ValueError):
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                names += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.append(node.module)
    return [n for n in dict.fromkeys(names) if n.partition(".")[0] in allowed]


try:
    import pytest
except ImportError:  # not in this environment: the caller runs the suite elsewhere
    raise SystemExit(NO_PYTEST)

for name in ahead(sys.argv[1], set(sys.argv[2].split(","))):
    try:
        __import__(name)
    except Exception:
        pass
line = sys.stdin.readline()
if not line:
    raise SystemExit(0)
request = json.loads(line)
os.chdir(request["cwd"])
sys.path[0] = os.getcwd()
import importlib

importlib.invalidate_caches()
sys.argv = ["pytest", *request["args"]]
code = pytest.main(request["args"])
sys.stdout.flush()
raise SystemExit(int(code))
"""


class WarmSuite:
    """An interpreter importing pytest and the notebook's libraries, waiting to run a suite (module docstring).

    ``python`` and ``env``: the interpreter and environment the suite's run will use (the caller computes them as
    for a fresh run); ``notebook``: the notebook, read for its imports. Close it when done (it is a context
    manager): a process never handed a suite is killed.
    """

    def __init__(self, python: str, env: Mapping[str, str], notebook: Path) -> None:
        self.python = python
        self.env = dict(env)
        # its working folder until it runs: empty, so that nothing there shadows a library it imports
        self._folder = tempfile.mkdtemp(prefix="nbharden-warm-")
        self._proc: subprocess.Popen[str] | None = subprocess.Popen(
            [python, "-c", BOOT, str(Path(notebook).resolve()), ",".join(PRELOAD), str(NO_PYTEST)],
            cwd=self._folder,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its process group is killed with it
        )

    def fits(self, python: str, env: Mapping[str, str]) -> bool:
        """Whether a run with ``python`` and ``env`` can be this process's: the same interpreter and environment,
        and the process still waiting."""
        return (
            self._proc is not None
            and self._proc.poll() is None
            and python == self.python
            and dict(env) == self.env
        )

    def run(
        self,
        args: Sequence[str],
        *,
        cwd: Path,
        timeout: float,
        cancel: Cancel | None = None,
    ) -> tuple[str, int] | None:
        """Run pytest with ``args`` in ``cwd``; (output, exit status), or None when the process is gone or its
        interpreter has no pytest (the caller runs the suite afresh). Once only. Raises
        ``subprocess.TimeoutExpired`` after ``timeout`` seconds (the process killed); ``cancel`` kills it at once
        (then ``CancelledError``)."""
        from nbharden.record.watch import kill_process_group

        proc, self._proc = self._proc, None
        if proc is None or proc.stdin is None:
            return None
        request = json.dumps({"cwd": str(cwd), "args": list(args)})
        try:
            proc.stdin.write(request + "\n")
            proc.stdin.flush()
        except OSError:  # it ended early (its imports crashed it): nothing of the suite ran
            _kill(proc)
            return None
        forget = cancel.on_cancel(kill_process_group(proc.pid)) if cancel else None
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            raise
        finally:
            if forget is not None:
                forget()
            shutil.rmtree(self._folder, ignore_errors=True)
        if cancel is not None:
            cancel.check(cwd)
        if proc.returncode == NO_PYTEST:
            return None
        return out + err, proc.returncode

    def close(self) -> None:
        """Kill the process if it is still waiting; remove its folder."""
        proc, self._proc = self._proc, None
        if proc is not None:
            _kill(proc)
        shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self) -> WarmSuite:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _kill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL ``proc``'s process group, and reap it."""
    import signal

    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(OSError, ValueError, subprocess.TimeoutExpired):
        proc.communicate(timeout=30)
