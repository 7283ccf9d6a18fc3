"""Concurrent requests on one notebook, against a real Jupyter server over real TCP connections.

"Nothing lost" means, after any mix of concurrent requests:

* every request got an answer, 200 or 409, and a 409 only for a file really edited by hand;
* the output folder is one complete, consistent generation: exactly the files the manifest lists
  (plus the manifest), each with the hash the manifest records, no temp file or journal left, and
  byte for byte what converting the notebook version the manifest names produces;
* a file edited by hand is never overwritten without ``force``, even when the edit is saved while a
  conversion is running;
* a request never gets an answer computed before it arrived (identical requests share a run only
  when it starts after all of them arrived).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from labutil import DATA, Fetch, Live, post, snapshot

from nbharden import api
from nbharden.lab import handlers
from nbharden.manifest import MANIFEST
from nbharden.settings import Settings

#: Tier: kernels, papermill or generated packages in subprocesses (make test-fast skips these).
pytestmark = pytest.mark.slow


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def variant(k: int) -> dict[str, Any]:
    """The fixture notebook with ``rate = k.25``: each version generates different files."""
    nb = json.loads((DATA / "sales.ipynb").read_text())
    nb["cells"][1]["source"] = f"rate = {k}.25\nn = 5"
    return nb


def generation(nb_bytes: bytes, scratch: Path) -> dict[str, str]:
    """What converting these notebook bytes writes (path -> text), computed in this process."""
    work = scratch / sha(nb_bytes)[:12] / "work"
    work.mkdir(parents=True, exist_ok=True)
    (work / "sales.ipynb").write_bytes(nb_bytes)
    changes = api.convert(work / "sales.ipynb", Settings(out=work / "sales_prod", record=False))
    return {c.path: c.new_text for c in changes.changes if c.new_text is not None}


def on_disk(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() or p.is_symlink()
    }


def assert_one_generation(out: Path, versions: dict[str, bytes], scratch: Path) -> str:
    """Check ``out`` holds one complete, consistent generation; return the notebook sha it names."""
    files = on_disk(out)
    manifest = json.loads(files[MANIFEST])
    stray = [p for p in files if p.split("/")[-1].startswith(".nbharden-") or "journal" in p]
    assert stray == [], f"left-over temp or journal files: {stray}"
    assert set(files) == set(manifest["files"]) | {MANIFEST}
    for path, digest in manifest["files"].items():
        assert sha(files[path]) == digest, f"{path} does not match the manifest"
    nb_sha = manifest["notebook"]["sha256"]
    assert nb_sha in versions, "the manifest names a notebook version nobody saved"
    expected = generation(versions[nb_sha], scratch)
    assert {p: t.encode() for p, t in expected.items()} == files, (
        "the folder is not what converting the notebook version named in its manifest writes"
    )
    return str(nb_sha)


async def test_fifty_concurrent_requests_on_one_notebook_lose_nothing(
    live: Live, jp_root_dir: Path, notebook: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nb_file = jp_root_dir / notebook
    out = jp_root_dir / "work" / "sales_prod"
    versions = {sha(nb_file.read_bytes()): nb_file.read_bytes()}
    code, data = await live.convert({"path": notebook, "write": True})
    assert code == 200, data
    runs = count_runs(monkeypatch)

    # 50 requests from 50 connections over 1 s (writes, forced writes, dry runs), while the
    # notebook is saved 4 times through the contents API, as JupyterLab saves it.
    rng = random.Random(6)
    kinds = ["write"] * 36 + ["force"] * 7 + ["dry"] * 7
    rng.shuffle(kinds)
    bodies = {
        "write": {"path": notebook, "write": True},
        "force": {"path": notebook, "write": True, "force": True},
        "dry": {"path": notebook},
    }
    delays = [rng.uniform(0, 1.0) for _ in kinds]

    async def one(kind: str, delay: float) -> tuple[str, int, dict[str, Any]]:
        await asyncio.sleep(delay)
        code, data = await live.convert(bodies[kind])
        return kind, code, data

    async def save_versions() -> None:
        for k in range(1, 5):
            await asyncio.sleep(0.25)
            resp = await live.fetch(
                f"api/contents/{notebook}",
                method="PUT",
                body={"type": "notebook", "format": "json", "content": variant(k)},
            )
            assert resp.code == 200, resp.body
            data = nb_file.read_bytes()
            versions[sha(data)] = data

    *results, _ = await asyncio.gather(*map(one, kinds, delays), save_versions())

    assert len(results) == 50
    assert {code for _, code, _ in results} <= {200, 409}, [
        (kind, code, data.get("message")) for kind, code, data in results if code not in (200, 409)
    ]
    # Nobody edited a generated file by hand: a 409 here would be a false "edited", i.e. a torn
    # or interleaved write.
    assert [(k, d) for k, c, d in results if c == 409] == []
    for kind, _, data in results:
        paths = {f["path"] for f in data["files"]}
        assert MANIFEST in paths
        assert "edited" not in {f["status"] for f in data["files"]}
        if kind == "dry":
            assert data["written"] is None
        else:
            assert set(data["written"]) <= paths
    assert_one_generation(out, versions, tmp_path)
    print(f"{len(runs)} conversions for 50 requests")
    assert len(runs) < 50, "identical waiting requests should share runs"

    # And the folder is not wedged: the next write brings it to the notebook's last version.
    code, data = await live.convert({"path": notebook, "write": True})
    assert code == 200, data
    assert assert_one_generation(out, versions, tmp_path) == sha(nb_file.read_bytes())
    code, data = await live.convert({"path": notebook})
    assert {f["status"] for f in data["files"]} == {"unchanged"}


async def test_fifty_concurrent_requests_never_overwrite_a_hand_edit(
    live: Live, jp_root_dir: Path, notebook: str
) -> None:
    code, data = await live.convert({"path": notebook, "write": True})
    assert code == 200, data
    out = jp_root_dir / "work" / "sales_prod"
    edited = next(f["path"] for f in data["files"] if f["path"].endswith("steps.py"))
    mine = (out / edited).read_text() + "\n# my own edit\n"
    resp = await live.fetch(
        f"api/contents/work/sales_prod/{edited}",
        method="PUT",
        body={"type": "file", "format": "text", "content": mine},
    )
    assert resp.code == 200, resp.body
    before = snapshot(out)

    rng = random.Random(7)
    kinds = ["write"] * 30 + ["dry"] * 20
    rng.shuffle(kinds)

    async def one(kind: str) -> tuple[str, int, dict[str, Any]]:
        await asyncio.sleep(rng.uniform(0, 0.5))
        code, data = await live.convert({"path": notebook, "write": kind == "write"})
        return kind, code, data

    results = await asyncio.gather(*map(one, kinds))
    for kind, code, data in results:
        if kind == "write":
            assert code == 409, data
            assert data["kind"] == "edited" and data["paths"] == [edited]
            assert "my own edit" in data["diff"]
        else:
            assert code == 200, data
            assert {f["path"]: f["status"] for f in data["files"]}[edited] == "edited"
    assert snapshot(out) == before
    assert (out / edited).read_text() == mine

    code, data = await live.convert({"path": notebook, "write": True, "force": True})
    assert code == 200, data
    assert edited in data["written"]
    assert (out / edited).read_text() != mine


class Pause:
    """Wraps the real ``api.convert`` so that each run, once converted, waits for the test (as a
    long conversion or recording would), and records the runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.converted = threading.Event()
        self.go_on = threading.Event()
        self.runs: list[str] = []
        real = handlers.api.convert

        def paused(path: Path, settings: Any = None, *args: Any, **kwargs: Any) -> Any:
            result = real(path, settings, *args, **kwargs)
            self.runs.append(Path(path).name)
            self.converted.set()
            assert self.go_on.wait(60), "the test never let the conversion finish"
            return result

        monkeypatch.setattr(handlers.api, "convert", paused)

    async def wait_converted(self) -> None:
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, self.converted.wait, 60)


async def test_an_edit_saved_while_the_conversion_runs_is_not_overwritten(
    live: Live, jp_root_dir: Path, notebook: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, data = await live.convert({"path": notebook, "write": True})
    assert code == 200, data
    out = jp_root_dir / "work" / "sales_prod"
    # The notebook changes, so the next write replaces every generated module...
    resp = await live.fetch(
        f"api/contents/{notebook}",
        method="PUT",
        body={"type": "notebook", "format": "json", "content": variant(3)},
    )
    assert resp.code == 200
    edited = next(f["path"] for f in data["files"] if f["path"].endswith("config.py"))
    pause = Pause(monkeypatch)
    request = asyncio.ensure_future(live.convert({"path": notebook, "write": True}))
    await pause.wait_converted()
    # ...but while it was converting, the user saved an edit to one of them in the editor.
    mine = "# my own edit\n"
    resp = await live.fetch(
        f"api/contents/work/sales_prod/{edited}",
        method="PUT",
        body={"type": "file", "format": "text", "content": mine},
    )
    assert resp.code == 200
    pause.go_on.set()
    code, err = await request
    assert code == 409, err
    assert err["kind"] == "edited" and err["paths"] == [edited]
    assert (out / edited).read_text() == mine


async def test_identical_waiting_requests_share_a_run_that_starts_after_they_arrived(
    live: Live, jp_root_dir: Path, notebook: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pause = Pause(monkeypatch)
    first = asyncio.ensure_future(live.convert({"path": notebook}))
    await pause.wait_converted()
    # While the first run is converting, the notebook changes and 20 identical requests arrive:
    # they must not get the first run's (stale) answer, and they share one new run.
    (jp_root_dir / notebook).write_text(json.dumps(variant(5)))
    later = [asyncio.ensure_future(live.convert({"path": notebook})) for _ in range(20)]
    await asyncio.sleep(0.5)
    pause.converted.clear()
    pause.go_on.set()
    code, old = await first
    assert code == 200, old
    answers = await asyncio.gather(*later)
    assert pause.runs == ["sales.ipynb", "sales.ipynb"]
    assert all(code == 200 for code, _ in answers)
    assert all(data == answers[0][1] for _, data in answers)
    config = next(f for f in answers[0][1]["files"] if f["path"].endswith("config.py"))
    assert "5.25" in config["diff"]
    old_config = next(f for f in old["files"] if f["path"].endswith("config.py"))
    assert "5.25" not in old_config["diff"]


def count_runs(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the start of every real conversion the handler runs."""
    runs: list[float] = []
    real = handlers.api.convert

    def counted(path: Path, settings: Any = None, *args: Any, **kwargs: Any) -> Any:
        runs.append(time.monotonic())
        return real(path, settings, *args, **kwargs)

    monkeypatch.setattr(handlers.api, "convert", counted)
    return runs


class Spans:
    """Records when each conversion runs (real conversions, slowed down so overlaps would show)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, delay: float) -> None:
        self.spans: list[tuple[str, float, float, str]] = []
        self.lock = threading.Lock()
        real = handlers.api.convert

        def slow_convert(path: Path, settings: Any = None, *args: Any, **kwargs: Any) -> Any:
            start = time.monotonic()
            time.sleep(delay)
            result = real(path, settings, *args, **kwargs)
            with self.lock:
                self.spans.append(
                    (Path(path).name, start, time.monotonic(), threading.current_thread().name)
                )
            return result

        monkeypatch.setattr(handlers.api, "convert", slow_convert)

    def overlaps(self, a: str, b: str) -> bool:
        sa = [s for s in self.spans if s[0] == a]
        sb = [s for s in self.spans if s[0] == b]
        return any(x[1] < y[2] and y[1] < x[2] for x in sa for y in sb if x is not y)


async def test_different_requests_on_one_notebook_wait_for_each_other(
    jp_fetch: Fetch, notebook: str, jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spans = Spans(monkeypatch, delay=0.2)
    bodies: list[dict[str, Any]] = [
        {"path": notebook, "write": True},
        {"path": notebook},
        {"path": notebook, "write": True, "force": True},
        # Another notebook writing into the same output folder waits too.
        {"path": "work/other.ipynb", "out": "work/sales_prod", "write": True, "force": True},
    ]
    (jp_root_dir / "work" / "other.ipynb").write_text((jp_root_dir / notebook).read_text())
    results = await asyncio.gather(*(post(jp_fetch, body) for body in bodies))
    assert [code for code, _ in results] == [200] * 4, results
    assert len(spans.spans) == 4
    ordered = sorted(spans.spans, key=lambda s: s[1])
    for before, after in zip(ordered, ordered[1:], strict=False):
        assert after[1] >= before[2], "two conversions writing one folder overlapped"
    code, final = await post(jp_fetch, {"path": "work/other.ipynb", "out": "work/sales_prod"})
    assert code == 200, final
    assert "edited" not in {f["status"] for f in final["files"]}


async def test_different_notebooks_convert_in_parallel_off_the_event_loop(
    jp_fetch: Fetch, notebook: str, jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (jp_root_dir / "work" / "other.ipynb").write_text((jp_root_dir / notebook).read_text())
    # The very first conversion in a process runs alone (see test_first_conversions_...).
    code, data = await post(jp_fetch, {"path": notebook})
    assert code == 200, data
    spans = Spans(monkeypatch, delay=1.0)
    started = time.monotonic()
    both = asyncio.gather(
        post(jp_fetch, {"path": notebook}), post(jp_fetch, {"path": "work/other.ipynb"})
    )
    await asyncio.sleep(0.3)
    # The event loop still answers while both conversions run in worker threads.
    t0 = time.monotonic()
    resp = await jp_fetch("nbharden", "rules", method="GET")
    assert resp.code == 200
    assert time.monotonic() - t0 < 0.5
    results = await both
    assert [code for code, _ in results] == [200, 200], results
    assert spans.overlaps("sales.ipynb", "other.ipynb")
    assert all(s[3] != threading.main_thread().name for s in spans.spans)
    assert time.monotonic() - started < 1.9 + 2 * 5  # parallel, not 2 x delay + work in sequence


FIRST_RUNS = """
import sys, threading
from pathlib import Path
from nbharden.lab.handlers import convert_in_worker
from nbharden.settings import Settings
from nbharden.workflow import ConversionRequest, Mode

errors = []

def run(name):
    try:
        settings = Settings(out=Path(name + "_prod"), record=False)
        convert_in_worker(ConversionRequest(Path(name), settings, Mode.DIFF))
    except Exception as exc:
        errors.append(f"{name}: {exc}")

threads = [threading.Thread(target=run, args=(f"nb{i}.ipynb",)) for i in range(3)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("\\n".join(errors))
sys.exit(1 if errors else 0)
"""


def test_first_conversions_started_together_in_a_fresh_process_all_succeed(
    tmp_path: Path,
) -> None:
    # In a fresh process (nothing imported yet), three worker threads start their first conversion
    # at once, as the server's first requests do. Unserialised, one of them often failed ("module
    # 'black' has no attribute 'Mode'", or sysconfig's EXE read as None on Python 3.11).
    for i in range(3):
        (tmp_path / f"nb{i}.ipynb").write_bytes((DATA / "sales.ipynb").read_bytes())
    proc = subprocess.run(
        [sys.executable, "-c", FIRST_RUNS],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in tmp_path.glob("*_prod")) == []  # converted, nothing written
