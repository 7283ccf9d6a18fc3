"""Sandboxed recording: run the notebook's kernel with resource limits and, where bubblewrap
works, without the home folder, without network and with every leftover process killed.

Tiers (setting ``sandbox`` in ``[tool.nbharden]``, ``--sandbox`` on the command line):

``off``
    The kernel runs like any Jupyter kernel (the default).
``limits``
    Resource limits on the kernel and everything it starts: address space per process
    (``sandbox-memory-mb``), processes and threads (``sandbox-processes``, through a pids
    cgroup when one can be created, else ``RLIMIT_NPROC``, which root ignores), size of
    any file written (``sandbox-file-mb``) and wall time of a run (``sandbox-wall-time``).
    Leftover processes are killed through the cgroup, else through the kernel's process
    group. The home folder and the network stay reachable.
``bwrap``
    The limits, inside bubblewrap: the file system read-only, the home folders, ``/tmp``
    and ``/run`` replaced by empty ones, the notebook's folder writable (its project folder
    readable), no network (a new network namespace: even 127.0.0.1 services are out of
    reach), a new pid namespace that dies with nbharden (``--die-with-parent``) so that no
    process outlives the run, no capabilities, and credential-like environment variables
    removed. The kernel talks to nbharden over Unix sockets in a private folder.
``auto``
    ``bwrap`` when a probe shows that it works here, else ``limits`` with a warning.

``resolve`` probes and returns the ``SandboxReport`` (the tier that will run, what is
enforced, warnings); ``Session`` runs one papermill run inside it. The library never
prints: the report goes into the ``Recording``, the convert summary and the manifest.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from nbharden.errors import ExecutionError, UsageError
from nbharden.settings import Settings

#: Values of the ``sandbox`` setting.
TIERS = ("off", "auto", "limits", "bwrap")

#: Environment variables the bwrap tier removes: credentials have no business in a kernel that
#: has no network anyway.
_SECRET_ENV = re.compile(
    r"(SECRET|TOKEN|PASSW|CREDENTIAL|PRIVATE|API_?KEY|ACCESS_?KEY|AUTH|COOKIE|SESSION)"
    r"|^(AWS|AZURE|GOOGLE|GCP|GCLOUD|GH|GITHUB|GITLAB|HF|HUGGING_?FACE|OPENAI|ANTHROPIC|"
    r"DOCKER|KUBE|VAULT|SSH|GPG|NETRC|PG|MYSQL|REDIS|DATABASE)_",
    re.IGNORECASE,
)

#: Runs first in the kernel's process (``python -I -S -c``): joins the pids cgroup, sets the
#: resource limits (soft and hard, so the notebook cannot raise them), then execs the command.
#: ``NPROC`` counts the tasks (threads included) of the user that are already running, as
#: ``RLIMIT_NPROC`` does; inside bwrap's user namespace that is the sandbox's own tasks only.
_SHIM = r"""
import ctypes, json, os, resource, sys
spec = json.loads(sys.argv[1])
cmd = sys.argv[3:]
if spec.get("pdeathsig"):
    ctypes.CDLL(None, use_errno=True).prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL
if spec.get("cgroup"):
    with open(spec["cgroup"], "w") as f:
        f.write(str(os.getpid()))
for name, value in spec.get("rlimits", {}).items():
    if name == "NPROC":
        uid, used = os.getuid(), 0
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    st = open("/proc/%s/status" % pid).read()
                except OSError:
                    continue
                fields = dict(l.split(":", 1) for l in st.splitlines() if ":" in l)
                if int(fields.get("Uid", "-1").split()[0]) == uid:
                    used += int(fields.get("Threads", "1"))
        value += used
    resource.setrlimit(getattr(resource, "RLIMIT_" + name), (value, value))
os.execvp(cmd[0], cmd)
"""


@dataclass(frozen=True)
class SandboxReport:
    """Which sandbox tier runs the recording and what it enforces (``to_json`` for the summary).

    ``processes_by`` is how the process limit is enforced: ``cgroup``, ``rlimit`` or ``""``
    (not enforced). ``leftovers`` is what kills processes left running after a run:
    ``pid-namespace``, ``cgroup`` or ``process-group``.
    """

    requested: str
    tier: str  # "off", "limits" or "bwrap"
    memory_mb: int = 0
    processes: int = 0
    file_mb: int = 0
    wall_time: float = 0.0
    processes_by: str = ""
    home: str = "visible"  # or "hidden"
    network: str = "host"  # or "none"
    leftovers: str = ""
    warnings: tuple[str, ...] = ()
    cgroup_parent: Path | None = field(default=None, compare=False)

    @property
    def active(self) -> bool:
        return self.tier != "off"

    def to_json(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "tier": self.tier,
            "limits": {
                "memory_mb": self.memory_mb,
                "processes": self.processes,
                "processes_by": self.processes_by or "not enforced",
                "file_mb": self.file_mb,
                "wall_time": self.wall_time,
            },
            "home": self.home,
            "network": self.network,
            "leftovers": self.leftovers,
            "warnings": list(self.warnings),
        }


def requested_tier(settings: Settings) -> str:
    """The ``sandbox`` setting, checked. Raises ``UsageError`` for an unknown tier."""
    tier = str(settings.sandbox).strip().lower()
    if tier not in TIERS:
        raise UsageError(
            f"sandbox = {settings.sandbox!r}: unknown tier; use one of {', '.join(TIERS)}"
        )
    for name, value in (
        ("sandbox-memory-mb", settings.sandbox_memory_mb),
        ("sandbox-processes", settings.sandbox_processes),
        ("sandbox-file-mb", settings.sandbox_file_mb),
        ("sandbox-wall-time", settings.sandbox_wall_time),
    ):
        if value <= 0:
            raise UsageError(f"{name} must be positive, not {value}")
    return tier


def resolve(settings: Settings) -> SandboxReport:
    """Probe what works here and return the tier that will run.

    ``auto`` falls back from ``bwrap`` to ``limits`` with a warning; an explicit ``bwrap`` that
    cannot run raises ``UsageError`` (exit 2) with the reason.
    """
    requested = requested_tier(settings)
    if requested == "off":
        return SandboxReport(requested="off", tier="off")
    warnings: list[str] = []
    tier = "limits"
    if requested in ("auto", "bwrap"):
        problem = bwrap_problem()
        if problem is None:
            tier = "bwrap"
        elif requested == "bwrap":
            raise UsageError(f"sandbox 'bwrap' cannot run here: {problem}")
        else:
            warnings.append(f"bubblewrap cannot run here ({problem}); sandbox tier 'limits' only")
    cgroup = pids_cgroup_parent()
    if cgroup is not None:
        processes_by = "cgroup"
    elif os.geteuid() != 0:
        processes_by = "rlimit"
    else:
        processes_by = ""
        warnings.append(
            "the process limit is not enforced: root ignores RLIMIT_NPROC and no pids cgroup "
            "could be created"
        )
    if tier == "bwrap":
        leftovers = "pid-namespace"
    elif cgroup is not None:
        leftovers = "cgroup"
    else:
        leftovers = "process-group"
        warnings.append(
            "a process that starts its own session can outlive the run (no pids cgroup here)"
        )
    return SandboxReport(
        requested=requested,
        tier=tier,
        memory_mb=settings.sandbox_memory_mb,
        processes=settings.sandbox_processes,
        file_mb=settings.sandbox_file_mb,
        wall_time=float(settings.sandbox_wall_time),
        processes_by=processes_by,
        home="hidden" if tier == "bwrap" else "visible",
        network="none" if tier == "bwrap" else "host",
        leftovers=leftovers,
        warnings=tuple(warnings),
        cgroup_parent=cgroup,
    )


def _namespace_args() -> list[str]:
    args = [
        "--die-with-parent",
        "--new-session",
        "--unshare-user-try",
        "--unshare-ipc",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-uts",
        "--unshare-cgroup-try",
    ]
    if os.geteuid() == 0:
        args += ["--cap-drop", "ALL"]  # root keeps every capability in the sandbox otherwise
    return args


@functools.cache
def bwrap_problem() -> str | None:
    """Why bubblewrap cannot run the sandbox here, or ``None`` when a probe ran in it."""
    exe = shutil.which("bwrap")
    if exe is None:
        return (
            "bubblewrap (bwrap) is not installed; on Debian or Ubuntu: apt-get install bubblewrap"
        )
    probe = [
        exe,
        *_namespace_args(),
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--tmpfs",
        "/tmp",
        # the interpreter may live under /tmp (a venv in a temporary clone): bound back as the kernel's is
        *[arg for path in _code_paths(sys.executable) for arg in ("--ro-bind", str(path), str(path))],
        "--",
        sys.executable,
        "-I",
        "-S",
        "-c",
        "pass",
    ]
    try:
        proc = subprocess.run(
            probe, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap did not start: {exc}"
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        reason = lines[-1] if lines else f"exit status {proc.returncode}"
        if "namespace" in reason.lower():
            reason += " (user namespaces are disabled, as in many containers)"
        return reason
    return None


def _own_cgroup(controller: str) -> tuple[Path, str] | None:
    """(mount point, own path) of the cgroup hierarchy holding ``controller`` (v1), or of the
    unified v2 hierarchy when ``controller`` is ``""``.
    """
    try:
        own = Path("/proc/self/cgroup").read_text(encoding="utf-8").splitlines()
        mounts = Path("/proc/self/mountinfo").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    path = None
    for line in own:
        _, controllers, where = line.split(":", 2)
        if (controller and controller in controllers.split(",")) or (
            not controller and controllers == ""
        ):
            path = where
    if path is None:
        return None
    for line in mounts:
        left, _, right = line.partition(" - ")
        fstype, _, options = right.split(" ", 2) if right.count(" ") >= 2 else (right, "", "")
        point = left.split(" ")[4]
        if controller and fstype == "cgroup" and controller in options.split(","):
            return Path(point), path
        if not controller and fstype == "cgroup2":
            return Path(point), path
    return None


@functools.cache
def pids_cgroup_parent() -> Path | None:
    """A cgroup folder under which nbharden can create a child with ``pids.max``, or ``None``.

    Tries the v1 pids hierarchy, then the unified (v2) one. A probe child is created and
    removed.
    """
    candidates = [c for c in (_own_cgroup("pids"), _own_cgroup("")) if c is not None]
    for mount, own in candidates:
        parent = mount / own.lstrip("/")
        probe = parent / f"nbharden-probe-{os.getpid()}"
        try:
            probe.mkdir()
        except OSError:
            continue
        try:
            (probe / "pids.max").write_text("16", encoding="utf-8")
            return parent
        except OSError:
            continue
        finally:
            with contextlib.suppress(OSError):
                probe.rmdir()
    return None


def _hidden_dirs() -> list[Path]:
    """The folders the bwrap tier replaces by empty ones: homes and shared temporary folders."""
    import pwd

    homes = {os.environ.get("HOME", ""), "/root", "/home"}
    with contextlib.suppress(KeyError):
        homes.add(pwd.getpwuid(os.getuid()).pw_dir)
    found = []
    for text in sorted(homes):
        if not text:
            continue
        path = Path(os.path.realpath(text))
        if path != Path("/") and path.is_dir() and path not in found:
            found.append(path)
    return found


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def project_folder(notebook_dir: Path, hidden: list[Path]) -> Path:
    """The notebook's project: the nearest folder at or above ``notebook_dir`` holding
    ``pyproject.toml`` or ``.git``, never a home folder or above one; else ``notebook_dir``.
    """
    for folder in (notebook_dir, *notebook_dir.parents):
        if folder == Path("/") or any(_inside(h, folder) for h in hidden):
            break
        if (folder / "pyproject.toml").exists() or (folder / ".git").exists():
            return folder
    return notebook_dir


def _code_paths(argv0: str) -> list[Path]:
    """What the kernel's interpreter needs to read: prefixes, its venv, nbharden's recorder."""
    here = Path(__file__).resolve().parent
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix), here}
    exe = shutil.which(argv0) or argv0
    for candidate in (Path(exe).absolute(), Path(os.path.realpath(exe))):
        paths.add(candidate.parent.parent)
    return sorted(Path(os.path.realpath(p)) for p in paths if p.exists())


def _between(folder: Path, path: Path) -> list[Path]:
    """The folders strictly between ``folder`` and ``path`` (inside it), outermost first."""
    return [p for p in reversed(path.parents) if folder in p.parents]


def readonly_args(notebook_dir: Path, readonly: Sequence[tuple[Path, Path]]) -> list[str]:
    """bubblewrap's arguments that make each destination of ``readonly`` (destination,
    source) a read-only bind of its source.

    A destination inside the writable notebook folder gets its folders in between bound onto
    themselves first: a mount point cannot be renamed or replaced, so the notebook can neither
    move the folder away nor put a link or a folder of its own in its place.
    """
    args: list[str] = []
    for dest, source in readonly:
        if _inside(dest, notebook_dir):
            for folder in _between(notebook_dir, dest):
                args += ["--bind", str(folder), str(folder)]
        args += ["--ro-bind", str(source), str(dest)]
    return args


def bwrap_args(
    *,
    notebook_dir: Path,
    writable: list[Path],
    argv0: str,
    env: dict[str, str],
    readonly: Sequence[tuple[Path, Path]] = (),
    chdir: Path | None = None,
) -> tuple[list[str], list[str]]:
    """bubblewrap's arguments (up to ``--``) and the environment variables it removes.

    ``readonly``: (destination, host source) pairs bound read-only over the rest, e.g. the
    output folder over itself while the notebook runs. ``chdir``: the working folder (default
    the notebook's).

    Raises ``UsageError`` when the notebook sits directly in a home folder (binding it would
    expose the whole home).
    """
    exe = shutil.which("bwrap") or "bwrap"
    hidden = _hidden_dirs()
    notebook_dir = Path(os.path.realpath(notebook_dir))
    for home in hidden:
        if _inside(home, notebook_dir):
            raise UsageError(
                f"the sandbox cannot hide {home}: the notebook's folder {notebook_dir} contains it; "
                "move the notebook into a project folder"
            )
    project = project_folder(notebook_dir, hidden)
    args = [exe, *_namespace_args(), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for tmp in ("/tmp", "/var/tmp", "/run"):
        if Path(tmp).is_dir() and not Path(tmp).is_symlink():
            args += ["--tmpfs", tmp]
    for home in hidden:
        args += ["--tmpfs", str(home)]
    if project != notebook_dir:
        args += ["--ro-bind", str(project), str(project)]
    args += ["--bind", str(notebook_dir), str(notebook_dir)]
    for home in hidden:  # a home folder inside the project is hidden again
        if any(home != b and _inside(home, b) for b in (project, notebook_dir)):
            args += ["--tmpfs", str(home)]
    for path in _code_paths(argv0):
        args += ["--ro-bind", str(path), str(path)]
    for path in writable:
        real = os.path.realpath(path)
        args += ["--bind", real, real]
    args += readonly_args(notebook_dir, readonly)
    removed = sorted(k for k in env if _SECRET_ENV.search(k))
    # jupyter_client adds JPY_PARENT_PID after this: in the pid namespace it names no process,
    # and ipykernel would take its parent (pid 1 there) for gone and exit
    for name in (*removed, "JPY_PARENT_PID"):
        args += ["--unsetenv", name]
    args += ["--chdir", str(chdir or notebook_dir)]
    return args, removed


class Session:
    """One papermill run inside the sandbox: wraps the kernel command, enforces the wall time,
    kills what is left afterwards and explains failures the limits caused.

    Use as a context manager around ``papermill.execute_notebook`` with
    ``kernel_manager_class=session.manager_class(base)``. With tier ``off`` it does nothing.
    """

    def __init__(
        self,
        report: SandboxReport,
        *,
        notebook: Path,
        run_dir: Path,
        protect: Sequence[Path] = (),
        overlays: Sequence[tuple[Path, Path]] = (),
        kernel: bool = True,
    ) -> None:
        """``protect``: folders the code must not change (the output folder): read-only in
        tier ``bwrap``, created empty for the run when missing and removed again if still
        empty. ``overlays``: (destination, host source) pairs shown read-only instead of the
        destination. ``kernel``: the command is a Jupyter kernel (it talks over Unix sockets).
        """
        self.report = report
        self.notebook = Path(notebook)
        self.run_dir = Path(run_dir)
        self.kernel = kernel
        self.protect = [Path(os.path.realpath(p)) for p in protect]
        self.overlays = [(Path(os.path.realpath(d)), Path(s)) for d, s in overlays]
        self._created: list[Path] = []
        self.expired = False
        self.removed_env: list[str] = []
        self._conn_dir: Path | None = None
        self._cgroup: Path | None = None
        self._timer: threading.Timer | None = None
        self._pid: int | None = None
        self._env: dict[str, str] = {}

    # --- context -------------------------------------------------------------------------
    def __enter__(self) -> Session:
        if not self.report.active:
            return self
        if self.report.tier == "bwrap" and self.kernel:
            # short: Unix socket paths are limited to 107 bytes
            self._conn_dir = Path(tempfile.mkdtemp(prefix="nbh-", dir="/tmp"))
        if self.report.tier == "bwrap":
            self._make_protected()
        if self.report.cgroup_parent is not None:
            cgroup = self.report.cgroup_parent / f"nbharden-{os.getpid()}-{time.monotonic_ns()}"
            try:
                cgroup.mkdir()
                (cgroup / "pids.max").write_text(str(self.report.processes), encoding="utf-8")
                self._cgroup = cgroup
            except OSError as exc:
                raise ExecutionError(
                    f"the sandbox could not create its pids cgroup {cgroup}: {exc}",
                    path=self.notebook,
                ) from exc
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.report.active:
            return
        if self._timer is not None:
            self._timer.cancel()
        self.kill_leftovers()
        if self._conn_dir is not None:
            shutil.rmtree(self._conn_dir, ignore_errors=True)
        for folder in reversed(self._created):  # still empty: nothing could write there
            with contextlib.suppress(OSError):
                folder.rmdir()
        if self.expired and exc is not None and not isinstance(exc, KeyboardInterrupt):
            raise ExecutionError(
                f"the sandbox stopped the kernel: the run took longer than "
                f"{self.report.wall_time:g} s (setting sandbox-wall-time)",
                path=self.notebook,
                cell=self._last_cell(),
            ) from None
        if exc is not None and hasattr(exc, "evalue") and hasattr(exc, "ename"):
            hint = self.hint(str(exc.ename), str(exc.evalue))
            if hint:
                exc.evalue = f"{exc.evalue} ({hint})"

    def _make_protected(self) -> None:
        """Create the protected folders that do not exist yet (a mount point needs one)."""
        notebook_dir = Path(os.path.realpath(self.notebook.parent))
        for folder in self.protect:
            if not _inside(folder, notebook_dir) or folder == notebook_dir:
                continue
            missing = [p for p in (*_between(notebook_dir, folder), folder) if not p.exists()]
            for path in missing:
                try:
                    path.mkdir()
                except OSError as exc:
                    raise ExecutionError(
                        f"the sandbox could not protect the output folder {folder}: {exc}",
                        path=self.notebook,
                    ) from exc
                self._created.append(path)

    def _readonly(self) -> list[tuple[Path, Path]]:
        notebook_dir = Path(os.path.realpath(self.notebook.parent))
        pairs = [
            (p, p)
            for p in self.protect
            if _inside(p, notebook_dir) and p != notebook_dir and p.is_dir()
        ]
        return pairs + self.overlays

    # --- running a command ---------------------------------------------------------------
    def run(
        self, cmd: list[str], *, env: dict[str, str], cwd: Path, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` (not a kernel) in the sandbox, its output captured as text.

        Raises ``subprocess.TimeoutExpired`` after ``timeout`` seconds; ``expired`` is set
        when the sandbox's wall time stopped it.
        """
        self._env = env
        wrapped = self.wrap(cmd, env, chdir=cwd) if self.report.active else cmd
        proc = subprocess.Popen(
            wrapped,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its process group is killed with it
        )
        if self.report.active:
            self.started(proc.pid)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
        return subprocess.CompletedProcess(wrapped, proc.returncode, out, err)

    # --- kernel launch -------------------------------------------------------------------
    def manager_class(self, base: type) -> type:
        """``base`` (a jupyter_client ``KernelManager``) starting its kernel in the sandbox."""
        if not self.report.active:
            return base
        session = self

        class SandboxedKernelManager(base):  # type: ignore[misc]
            async def start_kernel(self, **kw: Any) -> None:
                if session._conn_dir is not None:
                    # no network in the sandbox: the kernel listens on Unix sockets instead
                    self.transport = "ipc"
                    self.connection_file = str(session._conn_dir / "kernel.json")
                    self.ip = str(session._conn_dir / "k")
                session._env = dict(kw.get("env") or os.environ)
                await super().start_kernel(**kw)
                provisioner = getattr(self, "provisioner", None)
                pid = getattr(provisioner, "pid", None)
                if isinstance(pid, int):
                    session.started(pid)

            def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
                cmd: list[str] = super().format_kernel_cmd(extra_arguments)
                return session.wrap(cmd, session._env or dict(os.environ))

        return SandboxedKernelManager

    def wrap(self, cmd: list[str], env: dict[str, str], chdir: Path | None = None) -> list[str]:
        """The kernel command ``cmd`` run under the limits (and bwrap), in ``chdir`` (default:
        the notebook's folder)."""
        mib = 1024 * 1024
        rlimits: dict[str, int] = {
            "AS": self.report.memory_mb * mib,
            "FSIZE": self.report.file_mb * mib,
            "CPU": max(1, int(self.report.wall_time)),
        }
        if self.report.processes_by == "rlimit":
            rlimits["NPROC"] = self.report.processes
        cgroup = str(self._cgroup / "cgroup.procs") if self._cgroup else None
        python = sys.executable
        if self.report.tier != "bwrap":
            spec = {"cgroup": cgroup, "rlimits": rlimits, "pdeathsig": True}
            return [python, "-I", "-S", "-c", _SHIM, json.dumps(spec), "--", *cmd]
        writable = [self.run_dir]
        if self._conn_dir is not None:
            writable.append(self._conn_dir)
        args, self.removed_env = bwrap_args(
            notebook_dir=self.notebook.parent,
            writable=writable,
            argv0=cmd[0],
            env=env,
            readonly=self._readonly(),
            chdir=chdir,
        )
        inner = {"rlimits": rlimits}
        # the sandbox dies with bwrap (--die-with-parent), bwrap with nbharden (pdeathsig)
        outer: dict[str, object] = {"cgroup": cgroup, "rlimits": {}, "pdeathsig": True}
        return [
            python,
            "-I",
            "-S",
            "-c",
            _SHIM,
            json.dumps(outer),
            "--",
            *args,
            "--",
            python,
            "-I",
            "-S",
            "-c",
            _SHIM,
            json.dumps(inner),
            "--",
            *cmd,
        ]

    def started(self, pid: int) -> None:
        """The kernel (or bwrap) process is ``pid``: start the wall-time clock."""
        self._pid = pid
        self._timer = threading.Timer(self.report.wall_time, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        self.expired = True
        self.kill_leftovers()

    # --- cleaning up -----------------------------------------------------------------------
    def kill_leftovers(self) -> int:
        """Kill the kernel and every process it started that is still running; returns how many
        were signalled. Removes the cgroup once it is empty.
        """
        killed = 0
        if self._pid is not None:
            for kill in (os.killpg, os.kill):  # the kernel's session, then bwrap/the kernel
                with contextlib.suppress(OSError):
                    kill(self._pid, signal.SIGKILL)
                    killed += 1
        if self._cgroup is not None:
            procs = self._cgroup / "cgroup.procs"
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    pids = [int(p) for p in procs.read_text(encoding="utf-8").split()]
                except OSError:
                    break
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                        killed += 1
                time.sleep(0.02)
            with contextlib.suppress(OSError):
                self._cgroup.rmdir()
                self._cgroup = None
        return killed

    def _last_cell(self) -> int | None:
        log = self.run_dir / "recorder.log"
        cell = None
        with contextlib.suppress(OSError):
            for line in log.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(ValueError):
                    item = json.loads(line)
                    if isinstance(item, dict) and item.get("event") == "cell":
                        cell = int(item["index"])
        return cell

    def hint(self, ename: str, evalue: str) -> str:
        """Why the sandbox may have caused the error ``ename: evalue`` (``""`` if not)."""
        r = self.report
        if ename == "MemoryError":
            return (
                f"the sandbox limits each process to {r.memory_mb} MiB of address space: "
                "setting sandbox-memory-mb"
            )
        if r.processes_by and (
            (ename == "BlockingIOError" and "Errno 11" in evalue)
            or "can't start new thread" in evalue
        ):
            return (
                f"the sandbox limits the kernel to {r.processes} processes and threads: "
                "setting sandbox-processes"
            )
        if "File too large" in evalue:
            return f"the sandbox limits files to {r.file_mb} MiB: setting sandbox-file-mb"
        if r.network == "none" and (
            ename in ("ConnectionRefusedError", "gaierror", "URLError", "ConnectionError")
            or "Network is unreachable" in evalue
            or "name resolution" in evalue
        ):
            return "sandbox tier 'bwrap' has no network; use tier 'limits' for this notebook"
        if r.home == "hidden" and any(str(h) in evalue for h in _hidden_dirs()):
            return "sandbox tier 'bwrap' hides the home folder"
        return ""
