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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from nbharden.errors import ExecutionError, UsageError
from nbharden.record.watch import Cancel, kill_process_group
from nbharden.settings import Settings

#: Values of the ``sandbox`` setting.
TIERS = ("off", "auto", "limits", "bwrap")

#: Environment variables tier bwrap passes to the kernel (besides the kernel's own, ``HOME``
#: and the setting ``pass-env``): everything else is removed, credentials first of all.
_ENV_ALLOWED = re.compile(
    r"^(PATH|LANG|LANGUAGE|LC_[A-Z]+|TZ|TERM|(OPENBLAS|OMP|MKL|NUMEXPR|VECLIB)_[A-Z_]+)$"
)
#: Sizes of the temporary folders other than /tmp (home, /var/tmp, /run), MiB at most.
_SMALL_TMPFS_MB = 64
#: The user the kernel runs as when nbharden runs as root and the notebook's folder belongs to
#: root too (nobody).
NOBODY = (65534, 65534)
_SHIM = Path(__file__).resolve().parent / "_shim.py"


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
    tmp_mb: int = 0
    disk_mb: int = 0
    pass_env: tuple[str, ...] = ()
    user: str = "caller"  # or "root", "unprivileged"

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
                "tmp_mb": self.tmp_mb,
                "disk_mb": self.disk_mb,
            },
            "environment": "allow-list" if self.tier == "bwrap" else "inherited",
            "user": self.user,
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
        ("sandbox-tmp-mb", settings.sandbox_tmp_mb),
        ("sandbox-disk-mb", settings.sandbox_disk_mb),
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
        tmp_mb=settings.sandbox_tmp_mb,
        disk_mb=settings.sandbox_disk_mb,
        pass_env=tuple(settings.pass_env),
        user="unprivileged" if tier == "bwrap" else ("root" if os.geteuid() == 0 else "caller"),
    )


def _namespace_args(as_root: bool = False) -> list[str]:
    """bubblewrap's namespaces. ``as_root``: nbharden runs as root and the shim inside becomes
    another user (which needs root's capabilities until then, and no user namespace: there,
    root's uid would only be mapped onto itself); else no capabilities at all."""
    args = ["--die-with-parent", "--new-session", "--unshare-ipc", "--unshare-pid"]
    args += ["--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    if not as_root:
        args.append("--unshare-user-try")
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
        *[
            arg
            for path in _code_paths(sys.executable)
            for arg in ("--ro-bind", str(path), str(path))
        ],
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
    """What the kernel's interpreter needs to read: prefixes, its venv, nbharden's recorder.

    The recorder imports from the whole ``nbharden`` package (errors, models), not only from
    ``nbharden.record``: an editable install under /tmp, which the sandbox replaces with an empty
    folder, would otherwise leave the kernel a package without its ``__init__``."""
    here = Path(__file__).resolve().parent.parent
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


@dataclass(frozen=True)
class Layout:
    """What bubblewrap shows the sandboxed process, besides the read-only file system.

    ``writable``: folders besides the notebook's (the recorder's, the kernel's sockets).
    ``readonly``: (destination, host source) pairs bound read-only over the rest, e.g. the output
    folder over itself. ``chdir``: the working folder (default the notebook's). ``keep_env``: the
    command's own environment variables; ``pass_env``: more, from the setting ``pass-env``.
    ``tmp_mb``: size of /tmp. ``user``: (uid, gid) the shim becomes (nbharden runs as root).
    """

    notebook_dir: Path
    writable: tuple[Path, ...] = ()
    readonly: tuple[tuple[Path, Path], ...] = ()
    chdir: Path | None = None
    keep_env: tuple[str, ...] = ()
    pass_env: tuple[str, ...] = ()
    tmp_mb: int = 256
    user: tuple[int, int] | None = None


def bwrap_args(layout: Layout, *, argv0: str, env: dict[str, str]) -> tuple[list[str], list[str]]:
    """bubblewrap's arguments (up to ``--``) and the environment variables it removes.

    Raises ``UsageError`` when the notebook sits directly in a home folder (binding it would
    expose the whole home).
    """
    exe = shutil.which("bwrap") or "bwrap"
    hidden = _hidden_dirs()
    notebook_dir = Path(os.path.realpath(layout.notebook_dir))
    for home in hidden:
        if _inside(home, notebook_dir):
            raise UsageError(
                f"the sandbox cannot hide {home}: the notebook's folder {notebook_dir} contains it; "
                "move the notebook into a project folder"
            )
    project = project_folder(notebook_dir, hidden)
    args = [exe, *_namespace_args(layout.user is not None)]
    args += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    tmpfs = _tmpfs_args(hidden, layout.tmp_mb)
    args += tmpfs
    if project != notebook_dir:
        args += ["--ro-bind", str(project), str(project)]
    args += ["--bind", str(notebook_dir), str(notebook_dir)]
    for home in hidden:  # a home folder inside the project is hidden again
        if any(home != b and _inside(home, b) for b in (project, notebook_dir)):
            args += ["--perms", "1777", "--size", str(_SMALL_TMPFS_MB << 20), "--tmpfs", str(home)]
    binds = [project, notebook_dir, *_code_paths(argv0)]
    for path in _code_paths(argv0):
        args += ["--ro-bind", str(path), str(path)]
    for path in layout.writable:
        real = Path(os.path.realpath(path))
        binds.append(real)
        args += ["--bind", str(real), str(real)]
    args += readonly_args(notebook_dir, layout.readonly)
    own = [Path(os.path.realpath(p)) for p in layout.writable]
    args += _socket_masks([*binds, *(d for d, _ in layout.readonly)], own)
    if layout.user is not None:  # folders bwrap made to mount on (0700) must let the user through
        roots = [Path(tmpfs[i + 1]) for i, a in enumerate(tmpfs) if a == "--tmpfs"]
        args += _open_ancestors([*binds, *(d for d, _ in layout.readonly)], roots)
    env_args, removed = _env_args(env, layout, home=hidden[0] if hidden else Path("/tmp"))
    args += env_args
    args += ["--chdir", str(layout.chdir or notebook_dir)]
    return args, removed


def _tmpfs_args(hidden: list[Path], tmp_mb: int) -> list[str]:
    """Empty, size-limited, world-writable temporary folders: /tmp (``tmp_mb``), /var/tmp, /run
    and the home folders (small)."""
    args: list[str] = []
    small = min(_SMALL_TMPFS_MB, tmp_mb)
    for tmp in ("/tmp", "/var/tmp", "/run"):
        if Path(tmp).is_dir() and not Path(tmp).is_symlink():
            size = tmp_mb if tmp == "/tmp" else small
            args += ["--perms", "1777", "--size", str(size << 20), "--tmpfs", tmp]
    for home in hidden:
        args += ["--perms", "1777", "--size", str(small << 20), "--tmpfs", str(home)]
    return args


def unix_sockets() -> list[Path]:
    """The Unix sockets bound to a path on this machine (``/proc/net/unix``), as they are now."""
    try:
        lines = Path("/proc/net/unix").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    found = []
    for line in lines[1:]:
        parts = line.split()
        if len(parts) >= 8 and parts[-1].startswith("/"):
            found.append(Path(parts[-1]))
    return found


def _socket_masks(binds: Sequence[Path], own: Sequence[Path]) -> list[str]:
    """Arguments that cover every host socket the sandbox could still see (in the read-only
    rest, or in a folder bound back into a hidden one: ``binds``) with an empty file, so that
    ``connect`` is refused. The sandbox's own folders (``own``: the kernel's sockets) are left
    alone."""
    import stat

    args: list[str] = []
    hidden = [Path(str(p)) for p in ("/tmp", "/var/tmp", "/run", "/dev", "/proc", *_hidden_dirs())]
    for sock in sorted(set(unix_sockets())):
        if any(_inside(sock, p) for p in own):
            continue
        if any(_inside(sock, h) for h in hidden) and not any(_inside(sock, b) for b in binds):
            continue
        try:
            if not stat.S_ISSOCK(os.lstat(sock).st_mode):
                continue
        except OSError:
            continue
        args += ["--ro-bind", "/dev/null", str(sock)]
    return args


def _open_ancestors(binds: Sequence[Path], roots: Sequence[Path]) -> list[str]:
    """``--chmod 0755`` for the folders bwrap created inside the temporary folders ``roots`` to
    mount ``binds`` on (it makes them 0700, which only root could pass). Folders at or inside a
    bind are the host's own and keep their modes."""
    args: list[str] = []
    done: set[Path] = set()
    for bind in binds:
        for folder in bind.parents:
            if folder in done or not any(root in folder.parents for root in roots):
                continue
            done.add(folder)
            if not any(_inside(folder, other) for other in binds):
                args += ["--chmod", "0755", str(folder)]
    return args


def _env_args(env: dict[str, str], layout: Layout, *, home: Path) -> tuple[list[str], list[str]]:
    """The environment of the sandboxed process: an allow-list (``_ENV_ALLOWED``, the command's
    own variables, ``pass-env``) and ``HOME`` set to an empty temporary folder. Returns the
    arguments and the names removed."""
    # jupyter_client adds JPY_PARENT_PID after this: in the pid namespace it names no process,
    # and ipykernel would take its parent (pid 1 there) for gone and exit
    keep = {*layout.keep_env, *layout.pass_env} - {"JPY_PARENT_PID", "HOME"}
    args = ["--clearenv", "--setenv", "HOME", str(home)]
    removed = []
    for name, value in sorted(env.items()):
        if name in keep or (_ENV_ALLOWED.match(name) and name != "HOME"):
            args += ["--setenv", name, value]
        elif name != "HOME":
            removed.append(name)
    return args, removed


def _sandbox_user(notebook_dir: Path) -> tuple[int, int] | None:
    """The (uid, gid) the sandboxed process becomes when nbharden runs as root: the owner of the
    notebook's folder (it writes there), or nobody when root owns it; None when not root."""
    if os.geteuid() != 0:
        return None
    try:
        info = os.stat(os.path.realpath(notebook_dir))
    except OSError:
        return NOBODY
    return (info.st_uid, info.st_gid) if info.st_uid != 0 else NOBODY


def written_since(folder: Path, since: float, skip: Sequence[Path] = ()) -> int:
    """Bytes of the files under ``folder`` (not under ``skip``) created or changed at or after
    ``since`` (a ``time.time()``), counted by the blocks they take."""
    total = 0
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        dirs[:] = [d for d in dirs if not any(_inside(here / d, s) for s in skip)]
        for name in files:
            with contextlib.suppress(OSError):
                info = os.lstat(here / name)
                if max(info.st_mtime, info.st_ctime) >= since:
                    total += info.st_blocks * 512
    return total


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
        own_env: Mapping[str, str] | None = None,
        keep_env: Sequence[str] = (),
    ) -> None:
        """``protect``: folders the code must not change (the output folder): read-only in
        tier ``bwrap``, created empty for the run when missing and removed again if still
        empty. ``overlays``: (destination, host source) pairs shown read-only instead of the
        destination. ``kernel``: the command is a Jupyter kernel (it talks over Unix sockets).
        ``own_env``: the command's own environment variables (set, and kept in tier ``bwrap``);
        ``keep_env``: more names kept there when the command's environment has them.
        """
        self.report = report
        self.notebook = Path(notebook)
        self.run_dir = Path(run_dir)
        self.kernel = kernel
        self.protect = [Path(os.path.realpath(p)) for p in protect]
        self.overlays = [(Path(os.path.realpath(d)), Path(s)) for d, s in overlays]
        self._created: list[Path] = []
        self.own_env = dict(own_env or {})
        self.keep_env = (*self.own_env, *keep_env)
        self.user = _sandbox_user(self.notebook.parent) if report.tier == "bwrap" else None
        self.exceeded = ""  # the limit that stopped the run, besides the wall time
        self._started = 0.0
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
            if self.user is not None:  # the user the kernel becomes writes here
                for folder in (self.run_dir, self._conn_dir):
                    if folder is not None:
                        os.chown(folder, *self.user)
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
            why = self.exceeded or (
                f"the run took longer than {self.report.wall_time:g} s (setting sandbox-wall-time)"
            )
            raise ExecutionError(
                f"the sandbox stopped the kernel: {why}", path=self.notebook, cell=self._last_cell()
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
        self,
        cmd: list[str],
        *,
        env: dict[str, str],
        cwd: Path,
        timeout: float,
        cancel: Cancel | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` (not a kernel) in the sandbox, its output captured as text.

        Raises ``subprocess.TimeoutExpired`` after ``timeout`` seconds; ``expired`` is set
        when the sandbox's wall time stopped it. ``cancel`` kills the process group at once
        (then ``CancelledError``).
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
        forget = cancel.on_cancel(kill_process_group(proc.pid)) if cancel else None
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
        finally:
            if forget is not None:
                forget()
        if cancel is not None:
            cancel.check(cwd)
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
                if session.user is not None and os.path.exists(self.connection_file):
                    os.chown(self.connection_file, *session.user)  # written 0600 by root
                spec_env = getattr(getattr(self, "kernel_spec", None), "env", None) or {}
                session.own_env.update({str(k): str(v) for k, v in spec_env.items()})  # its own
                session.keep_env = (*session.keep_env, *session.own_env)
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
        shim = [sys.executable, "-I", "-S", str(_SHIM)]
        if self.report.tier != "bwrap":
            spec = {"cgroup": cgroup, "rlimits": rlimits, "pdeathsig": True}
            return [*shim, json.dumps(spec), "--", *cmd]
        writable = [self.run_dir]
        if self._conn_dir is not None:
            writable.append(self._conn_dir)
        layout = Layout(
            notebook_dir=self.notebook.parent,
            writable=tuple(writable),
            readonly=tuple(self._readonly()),
            chdir=chdir,
            keep_env=self.keep_env,
            pass_env=self.report.pass_env,
            tmp_mb=self.report.tmp_mb,
            user=self.user,
        )
        args, self.removed_env = bwrap_args(layout, argv0=cmd[0], env={**env, **self.own_env})
        inner = {"rlimits": rlimits, "user": self.user}
        # the sandbox dies with bwrap (--die-with-parent), bwrap with nbharden (pdeathsig)
        outer: dict[str, object] = {"cgroup": cgroup, "rlimits": {}, "pdeathsig": True}
        return [*shim, json.dumps(outer), "--", *args, "--", *shim, json.dumps(inner), "--", *cmd]

    def started(self, pid: int) -> None:
        """The kernel (or bwrap) process is ``pid``: start the wall-time clock (and, in tier
        ``bwrap``, the watch over what it writes into the notebook's folder)."""
        self._pid = pid
        self._started = time.time()
        self._timer = threading.Timer(self.report.wall_time, self._expire)
        self._timer.daemon = True
        self._timer.start()
        if self.report.tier == "bwrap" and self.report.disk_mb > 0:
            threading.Thread(target=self._watch_disk, daemon=True).start()

    def _watch_disk(self) -> None:
        """Stop the run once the files it wrote into the notebook's folder (created or changed
        since it started) hold more than ``disk_mb`` MiB. Looks again after ten times as long as
        a look took, at least every half second."""
        limit = self.report.disk_mb << 20
        folder = Path(os.path.realpath(self.notebook.parent))
        skip = [p for p in self.protect if _inside(p, folder)]
        while self._timer is not None and self._timer.is_alive() and not self.expired:
            began = time.monotonic()
            if written_since(folder, self._started, skip) > limit:
                self.exceeded = (
                    f"the run wrote more than {self.report.disk_mb} MiB into {folder} "
                    "(setting sandbox-disk-mb)"
                )
                self._expire()
                return
            time.sleep(max(0.5, 10 * (time.monotonic() - began)))

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
        cgroup = self._cgroup  # the wall-time watchdog and the run's end may both get here at once
        if cgroup is not None:
            procs = cgroup / "cgroup.procs"
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
                cgroup.rmdir()
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
        if ename == "KeyError" and evalue.strip("'\"") in self.removed_env:
            return (
                "sandbox tier 'bwrap' passes the kernel only some environment variables: "
                f"add {evalue.strip(chr(39) + chr(34))} to pass-env in [tool.nbharden]"
            )
        if r.home == "hidden" and any(str(h) in evalue for h in _hidden_dirs()):
            return "sandbox tier 'bwrap' hides the home folder"
        return ""
