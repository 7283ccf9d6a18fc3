"""Sandboxed recording (nbharden.record.sandbox): hostile notebooks in fixtures/hostile/ run in a
real kernel, and each one is contained.

Every test names the tier it needs. A tier that cannot run on this machine is skipped with the
probe's reason: ``bwrap`` needs bubblewrap and user namespaces; the process limit of ``limits``
needs a pids cgroup when running as root (root ignores ``RLIMIT_NPROC``). Controls run the same
fixture without a sandbox and show that it really does what the sandboxed run must prevent.

Leftover processes are found by a mark in their environment (``NBH_PROBE_MARK``), inherited by
everything the kernel starts, read from ``/proc/<pid>/environ``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbharden.analyse import analyse
from nbharden.api import load
from nbharden.cli import output
from nbharden.errors import ExecutionError, UsageError
from nbharden.models import ChangeSet, FileTree
from nbharden.plan import make_plan
from nbharden.record import Recording, record
from nbharden.record import _values as V
from nbharden.record import sandbox as sb
from nbharden.review import review
from nbharden.settings import Settings, load_settings

#: Tier: kernels, papermill or generated packages in subprocesses (make test-fast skips these).
pytestmark = pytest.mark.slow

HOSTILE = Path(__file__).parent.parent / "fixtures" / "hostile"
MARK = "NBH_PROBE_MARK"


def _bwrap_skip() -> str | None:
    problem = sb.bwrap_problem()
    return None if problem is None else f"tier bwrap cannot run on this machine: {problem}"


def _limits_skip(need: str) -> str | None:
    """Why tier limits cannot pass a test that needs ``need`` here (``""``: nothing special)."""
    cgroup = sb.pids_cgroup_parent() is not None
    if need == "fork" and not cgroup and os.geteuid() == 0:
        return (
            "tier limits cannot limit processes here: running as root (RLIMIT_NPROC does not "
            "apply) and no pids cgroup can be created"
        )
    if need == "leftovers" and not cgroup:
        return (
            "tier limits cannot kill every leftover here: no pids cgroup can be created, so only "
            "the kernel's process group is killed"
        )
    return None


def tiers(*names: str, need: str = "") -> list[object]:
    """``names`` as pytest params, each skipped with the probe's reason where it cannot run."""
    params: list[object] = []
    for name in names:
        reason = _bwrap_skip() if name == "bwrap" else _limits_skip(need)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        params.append(pytest.param(name, id=name, marks=marks))
    return params


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake home folder with planted AWS credentials, as ``HOME``."""
    folder = tmp_path / "home"
    (folder / ".aws").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(folder))
    return folder


@pytest.fixture
def mark(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A unique mark in the environment of every process the kernel starts; kills leftovers."""
    value = f"nbh-{uuid.uuid4().hex}"
    monkeypatch.setenv(MARK, value)
    yield value
    for pid in marked(value):  # a failed test must not leave processes behind either
        _kill(pid)


def marked(value: str) -> list[int]:
    """Live processes (not zombies) whose environment holds ``MARK=value``."""
    needle = f"{MARK}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def copy_fixture(name: str, folder: Path) -> Path:
    """The fixture in ``folder``. Running as root, the folder belongs to nobody, as a user's
    notebook would: tier bwrap runs the kernel as the folder's owner (never as root)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = Path(shutil.copy(HOSTILE / f"{name}.ipynb", folder / f"{name}.ipynb"))
    if os.geteuid() == 0:
        for item in (folder, path):
            os.chown(item, *sb.NOBODY)
    return path


def run(notebook: Path, workdir: Path, **settings: object) -> Recording:
    """Record ``notebook`` once (library call) with ``settings``."""
    config = Settings(**settings)  # type: ignore[arg-type]
    nb = load(notebook, config)
    plan = make_plan(analyse(nb, settings=config), settings=config)
    return record(nb, plan, settings=config, workdir=workdir, runs=1)


def output_value(recording: Recording, name: str) -> object:
    """The last recorded value of ``name`` (stored as JSON text)."""
    value = recording.final_values()[name]
    assert value.kind == "value", value
    return V.loads(recording.path(value).read_text(encoding="utf-8"))


def all_text(*folders: Path) -> str:
    """Every file under ``folders`` as text (bytes decoded leniently)."""
    parts = []
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file():
                parts.append(path.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(parts)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nbharden", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )


# --- resolving the tier -------------------------------------------------------------------------


def test_off_is_the_default_and_records_no_sandbox(tmp_path: Path) -> None:
    report = sb.resolve(Settings())
    assert (report.tier, report.active) == ("off", False)
    recording = run(copy_fixture("benign", tmp_path / "nb"), tmp_path / "rec")
    assert recording.sandbox is None
    assert output_value(recording, "mean") == sum(i * i for i in range(20)) / 20


def test_unknown_tier_and_bad_limits_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="unknown tier"):
        sb.resolve(Settings(sandbox="docker"))
    with pytest.raises(UsageError, match="sandbox-processes must be positive"):
        sb.resolve(Settings(sandbox="limits", sandbox_processes=0))


def test_without_bwrap_auto_falls_back_with_a_warning_and_explicit_bwrap_refuses(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # a machine without bubblewrap
    sb.bwrap_problem.cache_clear()
    try:
        report = sb.resolve(Settings(sandbox="auto"))
        assert report.tier == "limits"
        assert any("bubblewrap" in w and "'limits' only" in w for w in report.warnings)
        assert (report.home, report.network) == ("visible", "host")
        with pytest.raises(UsageError, match="sandbox 'bwrap' cannot run here: bubblewrap"):
            sb.resolve(Settings(sandbox="bwrap"))
    finally:
        sb.bwrap_problem.cache_clear()


def test_config_key_and_cli_flag(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[tool.nbharden]\nsandbox = "limits"\nsandbox-memory-mb = 512\nsandbox-wall-time = 60\n',
        encoding="utf-8",
    )
    settings = load_settings(project)
    assert (settings.sandbox, settings.sandbox_memory_mb, settings.sandbox_wall_time) == (
        "limits",
        512,
        60.0,
    )
    # --sandbox keeps the configured tier; --no-sandbox turns it off
    assert load_settings(project, sandbox="on").sandbox == "limits"
    assert load_settings(project, sandbox="off").sandbox == "off"
    # --sandbox without a configured tier: auto
    assert load_settings(tmp_path / "elsewhere", sandbox="on").sandbox == "auto"
    (project / "pyproject.toml").write_text("[tool.nbharden]\nsandbox = true\n", encoding="utf-8")
    with pytest.raises(UsageError, match="'sandbox' in \\[tool.nbharden\\] must be str"):
        load_settings(project)


# --- hostile notebooks --------------------------------------------------------------------------


@pytest.mark.parametrize("tier", tiers("bwrap"))
def test_credentials_in_home_and_environment_are_not_readable(
    tier: str, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planted = f"aws_secret_access_key = planted-{uuid.uuid4().hex}"
    (home / ".aws" / "credentials").write_text(planted + "\n", encoding="utf-8")
    env_secret = f"env-secret-{uuid.uuid4().hex}"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", env_secret)
    notebook = copy_fixture("credentials", tmp_path / "nb")

    recording = run(notebook, tmp_path / "rec", sandbox=tier)

    assert recording.sandbox is not None and recording.sandbox["tier"] == "bwrap"
    assert recording.sandbox["home"] == "hidden"
    assert output_value(recording, "found") == [
        "blocked: FileNotFoundError",
        "blocked: not in the environment",
    ]
    text = all_text(tmp_path / "rec", tmp_path / "nb")
    assert planted.split("= ")[1] not in text
    assert env_secret not in text


def test_control_without_sandbox_the_credentials_fixture_reads_them(
    tmp_path: Path, home: Path
) -> None:
    planted = f"aws_secret_access_key = planted-{uuid.uuid4().hex}"
    (home / ".aws" / "credentials").write_text(planted + "\n", encoding="utf-8")
    recording = run(copy_fixture("credentials", tmp_path / "nb"), tmp_path / "rec")
    assert planted in str(output_value(recording, "found"))


@pytest.mark.parametrize("tier", tiers("bwrap", "limits", need="fork"))
def test_fork_bomb_fails_clearly_with_exit_3_and_leaves_nothing(
    tier: str, tmp_path: Path, home: Path, mark: str
) -> None:
    notebook = copy_fixture("fork_bomb", tmp_path / "nb")
    (tmp_path / "nb" / "pyproject.toml").write_text(
        f'[tool.nbharden]\nsandbox = "{tier}"\n', encoding="utf-8"
    )
    proc = cli("convert", str(notebook), "--sandbox", "--out", "out", cwd=tmp_path)

    assert proc.returncode == 3, proc.stderr
    assert "fork_bomb.ipynb:cell 3: BlockingIOError: [Errno 11]" in proc.stderr
    assert "the sandbox limits the kernel to 128 processes and threads" in proc.stderr
    assert "setting sandbox-processes" in proc.stderr
    assert marked(mark) == []
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("tier", tiers("bwrap", "limits"))
def test_allocating_3_gb_raises_memory_error(tier: str, tmp_path: Path, home: Path) -> None:
    notebook = copy_fixture("memory_hog", tmp_path / "nb")
    with pytest.raises(ExecutionError) as caught:
        run(notebook, tmp_path / "rec", sandbox=tier)
    assert caught.value.cell == 2
    assert caught.value.message.startswith("MemoryError")
    assert "2048 MiB of address space: setting sandbox-memory-mb" in caught.value.message


@pytest.mark.parametrize("tier", tiers("bwrap", "limits", need="leftovers"))
def test_no_process_outlives_the_run(tier: str, tmp_path: Path, home: Path, mark: str) -> None:
    folder = tmp_path / "nb"
    notebook = copy_fixture("leftover", folder)

    recording = run(notebook, tmp_path / "rec", sandbox=tier)

    # both escapees ran (their marker files exist), and neither is running now
    assert output_value(recording, "started") == ["child.alive", "daemon.alive"]
    assert marked(mark) == []
    assert recording.sandbox is not None
    assert recording.sandbox["leftovers"] == ("pid-namespace" if tier == "bwrap" else "cgroup")


def test_control_without_sandbox_the_leftover_fixture_leaves_processes(
    tmp_path: Path, home: Path, mark: str
) -> None:
    run(copy_fixture("leftover", tmp_path / "nb"), tmp_path / "rec")
    deadline = time.monotonic() + 5
    while len(marked(mark)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(marked(mark)) >= 2  # the fixture fixture kills them afterwards


class _Server:
    """A TCP server on 127.0.0.1 that records what each connection sends."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                self.received.append(conn.recv(1024))

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    yield srv
    srv.close()


@pytest.mark.parametrize("tier", tiers("bwrap"))
def test_loopback_service_is_unreachable(tier: str, tmp_path: Path, server: _Server) -> None:
    notebook = copy_fixture("loopback", tmp_path / "nb")
    recording = run(
        notebook, tmp_path / "rec", sandbox=tier, parameters=(("port", str(server.port)),)
    )
    assert output_value(recording, "outcome") == "blocked: ConnectionRefusedError"
    assert server.received == []
    assert recording.sandbox is not None and recording.sandbox["network"] == "none"


def test_control_without_sandbox_the_loopback_fixture_connects(
    tmp_path: Path, server: _Server
) -> None:
    notebook = copy_fixture("loopback", tmp_path / "nb")
    recording = run(notebook, tmp_path / "rec", parameters=(("port", str(server.port)),))
    assert output_value(recording, "outcome") == "connected"
    deadline = time.monotonic() + 5
    while not server.received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.received == [b"hello from the notebook"]


@pytest.mark.parametrize("tier", tiers("bwrap", "limits"))
def test_file_size_limit(tier: str, tmp_path: Path, home: Path) -> None:
    notebook = copy_fixture("big_file", tmp_path / "nb")
    with pytest.raises(ExecutionError) as caught:
        run(notebook, tmp_path / "rec", sandbox=tier, sandbox_file_mb=1)
    assert "OSError: [Errno 27] File too large" in caught.value.message
    assert "the sandbox limits files to 1 MiB: setting sandbox-file-mb" in caught.value.message
    assert (tmp_path / "nb" / "big.bin").stat().st_size == 1024 * 1024


@pytest.mark.parametrize("tier", tiers("bwrap", "limits"))
def test_wall_time_limit_stops_the_run(tier: str, tmp_path: Path, home: Path, mark: str) -> None:
    notebook = copy_fixture("slow", tmp_path / "nb")
    started = time.monotonic()
    with pytest.raises(ExecutionError, match=r"longer than 4 s \(setting sandbox-wall-time\)"):
        run(notebook, tmp_path / "rec", sandbox=tier, sandbox_wall_time=4)
    assert time.monotonic() - started < 40  # not the notebook's 60 s
    assert marked(mark) == []


# --- the tier in the summary, the CLI and the manifest ------------------------------------------


@pytest.mark.parametrize("tier", tiers("bwrap"))
def test_convert_with_sandbox_reports_the_tier_and_records_it_in_the_manifest(
    tier: str, tmp_path: Path, home: Path
) -> None:
    notebook = copy_fixture("benign", tmp_path / "nb")
    proc = cli(
        "convert",
        str(notebook),
        "--sandbox",
        "--out",
        "elsewhere/deep/out",  # folders the sandbox's user can pass only if nbharden opens them
        "--format",
        "json",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)[0]
    assert result["tests"]["sandbox"]["tier"] == "bwrap"
    # verification ran the generated tests in the same sandbox (tests/test_containment.py)
    assert result["tests"]["verify_sandbox"] == "bwrap" and result["tests"]["passed"] >= 1
    assert result["tests"]["sandbox"]["requested"] == "auto"
    out = tmp_path / "elsewhere" / "deep" / "out"
    manifest = json.loads((out / ".nbharden.json").read_text(encoding="utf-8"))
    assert manifest["recording"] == {"sandbox": "bwrap"}
    # the generated tests hold the values recorded in the sandbox: mean = 2470 / 20
    data = all_text(out / "tests" / "data")
    assert "123.5" in data


def test_manifest_records_the_tier_only_when_sandboxed(tmp_path: Path) -> None:
    notebook = copy_fixture("benign", tmp_path)
    tree = FileTree.of({"src/pkg/__init__.py": ""})
    summary = {"recorded": True, "sandbox": sb.resolve(Settings(sandbox="limits")).to_json()}

    def manifest(results: dict[str, object] | None) -> dict[str, object]:
        changes = review(
            tree, tmp_path / "out", notebook=notebook, findings=(), plan=None, test_results=results
        )
        text = next(c.new_text for c in changes.changes if c.path == ".nbharden.json")
        assert text is not None
        data: dict[str, object] = json.loads(text)
        return data

    assert manifest(summary)["recording"] == {"sandbox": "limits"}
    assert "recording" not in manifest({"recorded": True, "sandbox": None})
    assert "recording" not in manifest(None)


def test_summary_line_and_warnings_name_the_tier(tmp_path: Path) -> None:
    report = sb.SandboxReport("auto", "limits", warnings=("bubblewrap cannot run here (x)",))
    changes = ChangeSet(
        notebook=tmp_path / "a.ipynb",
        out=tmp_path / "a_prod",
        changes=(),
        findings=(),
        plan=None,
        test_results={"recorded": True, "sandbox": report.to_json()},
    )
    assert "recorded; sandbox: limits)" in output.summary_line(changes, "a.ipynb")
    assert output.sandbox_warnings(changes.test_results, "a.ipynb") == [
        "a.ipynb: warning: sandbox: bubblewrap cannot run here (x)"
    ]
    plain = dataclasses.replace(changes, test_results={"recorded": True, "sandbox": None})
    assert "sandbox" not in output.summary_line(plain, "a.ipynb")
    assert output.sandbox_warnings(plain.test_results, "a.ipynb") == []


def test_notebook_in_the_home_folder_itself_is_refused(tmp_path: Path, home: Path) -> None:
    if _bwrap_skip():
        pytest.skip(_bwrap_skip() or "")
    notebook = copy_fixture("benign", home)
    with pytest.raises(UsageError, match="the sandbox cannot hide .*home.*contains it"):
        run(notebook, tmp_path / "rec", sandbox="bwrap")


# --- what tier bwrap closes besides (issue 10): environment, sockets, /tmp, disk, user ------------


@pytest.mark.parametrize("tier", tiers("bwrap"))
def test_environment_sockets_tmp_and_user_are_contained(
    tier: str, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Credential-like and ordinary variables are gone but for ``pass-env``; HOME is an empty
    folder; a Unix socket in the notebook's own folder refuses; /tmp is 16 MiB; the kernel is not
    root and cannot read /etc/shadow."""
    (home / ".ssh").mkdir()
    monkeypatch.setenv("NBH_PROBE_DB_PASS", f"pw-{uuid.uuid4().hex}")
    monkeypatch.setenv("NBH_PROBE_PLAIN", "plain")
    monkeypatch.setenv("NBH_PASSED", "passed on")
    notebook = copy_fixture("escape_probe", tmp_path / "nb")
    server, received = _unix_server(tmp_path / "nb" / "db.sock")
    try:
        recording = run(
            notebook,
            tmp_path / "rec",
            sandbox=tier,
            sandbox_tmp_mb=16,
            pass_env=("NBH_PASSED",),
            parameters=(("sock", str(tmp_path / "nb" / "db.sock")),),
        )
    finally:
        server.close()
    found = output_value(recording, "outcome")
    assert isinstance(found, dict)
    assert found["probe_env"] == [] and found["passed_env"] == "passed on"
    assert ".ssh" not in found["home"]
    assert found["socket"] == "blocked: ConnectionRefusedError" and received == []
    assert found["tmp"] == "blocked: OSError"
    if os.geteuid() == 0:
        assert found["uid"] == sb.NOBODY[0]
        assert found["shadow"] == "blocked: PermissionError"
    assert recording.sandbox is not None and recording.sandbox["environment"] == "allow-list"


def test_control_without_sandbox_the_escape_probe_gets_out(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (home / ".ssh").mkdir()
    monkeypatch.setenv("NBH_PROBE_DB_PASS", "pw")
    notebook = copy_fixture("escape_probe", tmp_path / "nb")
    server, received = _unix_server(tmp_path / "nb" / "db.sock")
    try:
        recording = run(
            notebook, tmp_path / "rec", parameters=(("sock", str(tmp_path / "nb" / "db.sock")),)
        )
    finally:
        server.close()
    found = output_value(recording, "outcome")
    assert isinstance(found, dict)
    assert found["probe_env"] == ["NBH_PROBE_DB_PASS"] and ".ssh" in found["home"]
    assert found["socket"] == "connected" and found["tmp"] == "wrote 64 MiB"
    deadline = time.monotonic() + 5
    while not received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert received == [b"hello from the notebook"]
    if os.geteuid() == 0:
        assert found["uid"] == 0 and str(found["shadow"]).startswith("read")


def _unix_server(path: Path) -> tuple[socket.socket, list[bytes]]:
    """A Unix socket server at ``path`` that records what each connection sends."""
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    os.chmod(path, 0o777)  # anyone may connect: only the sandbox stands in the way
    server.listen()
    received: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                received.append(conn.recv(1024))

    threading.Thread(target=serve, daemon=True).start()
    return server, received


@pytest.mark.parametrize("tier", tiers("bwrap"))
def test_disk_quota_stops_a_run_that_fills_its_folder(
    tier: str, tmp_path: Path, home: Path
) -> None:
    notebook = copy_fixture("disk_hog", tmp_path / "nb")
    with pytest.raises(ExecutionError) as caught:
        run(notebook, tmp_path / "rec", sandbox=tier, sandbox_disk_mb=16)
    assert "wrote more than 16 MiB" in caught.value.message
    assert "setting sandbox-disk-mb" in caught.value.message
    written = sum(p.stat().st_size for p in (tmp_path / "nb" / "hog").iterdir())
    assert 16 << 20 < written < 100 << 20  # stopped soon after the quota, not at 200 MiB


@pytest.mark.parametrize("tier", tiers("bwrap"))
def test_the_kernelspecs_own_environment_is_kept(
    tier: str, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Variables a kernelspec sets (``env`` in kernel.json) are the kernel's own: kept by the
    allow-list, unlike the caller's."""
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager

    python3 = KernelSpecManager().get_kernel_spec("python3")
    spec_dir = tmp_path / "jupyter" / "kernels" / "nbhenv"
    spec_dir.mkdir(parents=True)
    spec = {"argv": python3.argv, "display_name": "env", "language": "python"}
    spec["env"] = {"NBH_SPEC_VAR": "from the kernelspec"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("NBH_CALLER_VAR", "from the caller")
    notebook = copy_fixture("benign", tmp_path / "nb")
    nb = nbformat.read(notebook, as_version=4)
    nb.metadata["kernelspec"] = {"name": "nbhenv", "display_name": "env", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Reads its environment"),
        nbformat.v4.new_code_cell(
            'import os\n\nseen = [os.environ.get("NBH_SPEC_VAR"), os.environ.get("NBH_CALLER_VAR")]'
        ),
    ]
    nbformat.write(nb, notebook)

    recording = run(notebook, tmp_path / "rec", sandbox=tier)

    assert recording.kernel == "nbhenv"
    assert output_value(recording, "seen") == ["from the kernelspec", None]
