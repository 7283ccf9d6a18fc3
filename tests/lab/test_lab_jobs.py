"""The review panel's jobs (``nbharden.lab.jobs``) against a real Jupyter server: start, poll, write with choices,
the file view, the status of the output folder; recorded reviews with progress, Cancel and a failing cell (slow,
real kernels); the generated suite's run, test by test."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from labutil import Fetch, FileGuard, Live, snapshot
from test_paths import BAD_NOTEBOOK_PATHS, BAD_OUT_PATHS, _json_body, bait  # noqa: F401 - bait is a fixture

from nbharden.manifest import MANIFEST, sha256_text
from nbharden.testgen.generate import RECORDING_INDEX


async def call(
    jp_fetch: Fetch, *parts: str, method: str = "GET", body: Any = None, **params: str
) -> tuple[int, Any]:
    resp = await jp_fetch(
        "nbharden",
        *parts,
        method=method,
        body=None if body is None else json.dumps(body),
        params=params or None,
        raise_error=False,
        allow_nonstandard_methods=True,
    )
    return resp.code, json.loads(resp.body or b"{}")


async def start(jp_fetch: Fetch, **body: Any) -> dict[str, Any]:
    code, job = await call(jp_fetch, "jobs", method="POST", body=body)
    assert code == 202, job
    assert job["state"] == "running" and len(job["id"]) == 32
    return dict(job)


async def wait(
    jp_fetch: Fetch, job_id: str, timeout: float = 300, seen: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code, job = await call(jp_fetch, "jobs", job_id)
        assert code == 200, job
        if seen is not None:
            seen.append(job)
        if job["state"] != "running":
            return dict(job)
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} still running after {timeout} s")


async def review(jp_fetch: Fetch, notebook: str, **body: Any) -> dict[str, Any]:
    job = await wait(jp_fetch, (await start(jp_fetch, path=notebook, **body))["id"])
    assert job["state"] == "done", job
    return job


def _as_if_recorded(out: Path) -> None:
    manifest = json.loads((out / MANIFEST).read_text())
    for rel, text in {RECORDING_INDEX: "{}\n", "tests/test_steps.py": "def test_x() -> None: ...\n"}.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
        manifest["files"][rel] = sha256_text(text)
    (out / MANIFEST).write_text(json.dumps(manifest))


# --- fast: static reviews ------------------------------------------------------------------------------------------


async def test_a_review_job_then_write_reads_unchanged(jp_fetch: Fetch, notebook: str, jp_root_dir: Path) -> None:
    code, status = await call(jp_fetch, "status", path=notebook)
    assert code == 200 and status == {
        "notebook": notebook,
        "out": "work/sales_prod",
        "exists": False,
        "recorded": False,
        "running": [],
    }
    job = await review(jp_fetch, notebook)
    result = job["result"]
    assert result["notebook"] == notebook and result["out"] == "work/sales_prod" and result["record"] is False
    assert {f["status"] for f in result["files"]} == {"new"} and result["drops_recording"] == []
    assert job["elapsed"] > 0 and job["stage"] == "review" and job["error"] is None
    assert not (jp_root_dir / "work" / "sales_prod").exists(), "a review writes nothing"

    code, written = await call(jp_fetch, "jobs", job["id"], "write", method="POST", body={})
    assert code == 200, written
    assert sorted(written["written"]) == sorted(f["path"] for f in result["files"])
    assert written["removed"] == [] and written["kept"] == []
    assert {f["status"] for f in written["files"]} == {"unchanged"}, "statuses read from the disk again"
    code, status = await call(jp_fetch, "status", path=notebook)
    assert status["exists"] is True and status["recorded"] is False


async def test_the_file_view_gives_both_sides_and_only_the_reviews_files(
    jp_fetch: Fetch, notebook: str, jp_root_dir: Path
) -> None:
    job = await review(jp_fetch, notebook)
    steps = next(f["path"] for f in job["result"]["files"] if f["path"].endswith("steps.py"))
    code, view = await call(jp_fetch, "jobs", job["id"], "file", path=steps)
    assert code == 200 and view["old"] is None and "def " in view["new"] and view["status"] == "new"
    await call(jp_fetch, "jobs", job["id"], "write", method="POST", body={})
    on_disk = jp_root_dir / "work" / "sales_prod" / steps
    on_disk.write_text(on_disk.read_text() + "# mine\n")
    code, view = await call(jp_fetch, "jobs", job["id"], "file", path=steps)
    assert view["old"].endswith("# mine\n") and not view["new"].endswith("# mine\n")
    (jp_root_dir / "secret.txt").write_text("not yours")
    for bad in ("../../secret.txt", "/etc/passwd", "", "src"):
        code, err = await call(jp_fetch, "jobs", job["id"], "file", path=bad)
        assert code == 404 and "not a file of this review" in err["message"], bad
    code, err = await call(jp_fetch, "jobs", "0" * 32)
    assert code == 404 and err["kind"] == "job"


async def test_a_static_review_of_a_recorded_folder_asks_before_removing_the_suite(
    jp_fetch: Fetch, notebook: str, jp_root_dir: Path
) -> None:
    await call(jp_fetch, "jobs", (await review(jp_fetch, notebook))["id"], "write", method="POST", body={})
    out = jp_root_dir / "work" / "sales_prod"
    _as_if_recorded(out)
    code, status = await call(jp_fetch, "status", path=notebook)
    assert status["recorded"] is True
    job = await review(jp_fetch, notebook)
    lost = sorted([RECORDING_INDEX, "tests/test_steps.py"])
    assert sorted(job["result"]["drops_recording"]) == lost
    removed = sorted(f["path"] for f in job["result"]["files"] if f["status"] == "removed")
    assert removed == lost, "every removal is listed as such before writing"
    code, err = await call(jp_fetch, "jobs", job["id"], "write", method="POST", body={})
    assert code == 409 and err["kind"] == "recording" and sorted(err["paths"]) == lost
    assert "Run the notebook and record, or replace the recorded suite" in err["message"]
    assert (out / RECORDING_INDEX).is_file()
    body = {"replace_recording": True}
    code, written = await call(jp_fetch, "jobs", job["id"], "write", method="POST", body=body)
    assert code == 200, written
    assert sorted(written["removed"]) == lost
    gone = sorted(f["path"] for f in written["files"] if f.get("gone"))
    assert gone == lost, "removals are still shown after writing"
    assert not (out / RECORDING_INDEX).exists()


async def test_hand_edited_files_get_a_choice_each(jp_fetch: Fetch, notebook: str, jp_root_dir: Path) -> None:
    first = await review(jp_fetch, notebook)
    await call(jp_fetch, "jobs", first["id"], "write", method="POST", body={})
    out = jp_root_dir / "work" / "sales_prod"
    mine, theirs = (next(out.rglob(name)) for name in ("steps.py", "pipeline.py"))
    mine.write_text(mine.read_text() + "# keep me\n")
    theirs.write_text(theirs.read_text() + "# overwrite me\n")
    rel = [p.relative_to(out).as_posix() for p in (mine, theirs)]
    job = await review(jp_fetch, notebook)
    assert {f["path"] for f in job["result"]["files"] if f["status"] == "edited"} == set(rel)
    code, err = await call(jp_fetch, "jobs", job["id"], "write", method="POST", body={})
    assert code == 409 and err["kind"] == "edited" and sorted(err["paths"]) == sorted(rel)
    assert "keep your edit, or overwrite it" in err["message"] and '"force"' not in err["message"]
    assert "+# keep me" in err["diffs"][rel[0]] or "-# keep me" in err["diffs"][rel[0]]
    body = {"keep": [rel[0]], "overwrite": [rel[1]]}
    code, written = await call(jp_fetch, "jobs", job["id"], "write", method="POST", body=body)
    assert code == 200, written
    assert written["kept"] == [rel[0]] and rel[1] in written["written"] and rel[0] not in written["written"]
    assert mine.read_text().endswith("# keep me\n") and "# overwrite me" not in theirs.read_text()
    status = {f["path"]: f["status"] for f in written["files"]}
    assert status[rel[0]] == "edited" and status[rel[1]] == "unchanged"


async def test_bad_job_requests(jp_fetch: Fetch, notebook: str) -> None:
    for body, needle in [({"path": notebook, "kind": "x"}, "kind"), ({"record": True}, "path")]:
        code, err = await call(jp_fetch, "jobs", method="POST", body=body)
        assert code == 400 and needle in err["message"]
    code, err = await call(jp_fetch, "jobs", method="POST", body={"path": "work/nope.ipynb"})
    assert code == 404
    code, err = await call(jp_fetch, "jobs", method="POST", body={"path": "../x.ipynb"})
    assert code == 403
    job = await start(jp_fetch, path=notebook, kind="tests")
    failed = await wait(jp_fetch, job["id"])
    assert failed["state"] == "failed" and "write the files first" in failed["error"]["message"]
    code, err = await call(jp_fetch, "jobs", failed["id"], "write", method="POST", body={})
    assert code == 409 and "nothing to write" in err["message"]
    code, err = await call(jp_fetch, "jobs", failed["id"], since="-1")
    assert code == 400 and "version" in err["message"]


async def test_the_rules_carry_their_documentation(jp_fetch: Fetch) -> None:
    code, data = await call(jp_fetch, "rules")
    rule = next(r for r in data["rules"] if r["code"] == "NBH401")
    assert rule["example"] and rule["why"] and "fix_note" in rule


# --- slow: recorded reviews (real kernels) ---------------------------------------------------------------------------


def _notebook(root: Path, name: str, cells: list[str]) -> str:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    (root / "work").mkdir(exist_ok=True)
    nbformat.write(nb, str(root / "work" / name))
    return f"work/{name}"


@pytest.mark.slow
async def test_a_recorded_review_shows_progress_per_cell_then_writes_and_runs_its_tests(
    jp_fetch: Fetch, jp_root_dir: Path
) -> None:
    nb = _notebook(jp_root_dir, "slow.ipynb", ["import time\nx = 1", "time.sleep(0.5)\ny = x + 1", "z = y * 2"])
    job = await start(jp_fetch, path=nb, record=True)
    # long polls (since + wait) hand over every cell start, in order, as it happens
    events: list[dict[str, Any]] = []
    version, polls = job["version"], 0
    while job["state"] == "running":
        code, job = await call(jp_fetch, "jobs", job["id"], since=str(version), wait="1")
        assert code == 200 and job["version"] >= version
        events += job["events"]
        version, polls = job["version"], polls + 1
    assert job["state"] == "done", job
    runs = job["result"]["tests"]["runs"]
    assert [(e["run"], e["position"], e["cell"]) for e in events] == [
        (run, pos, pos) for run in range(1, runs + 1) for pos in (1, 2, 3)
    ]
    assert all(e["total"] == 3 for e in events)
    assert polls < 40, f"{polls} polls: a long poll waits for a change instead of spinning"
    assert job["result"]["record"] is True and "python" not in job["result"]["tests"]
    assert any(f["path"] == RECORDING_INDEX for f in job["result"]["files"])
    code, written = await call(jp_fetch, "jobs", job["id"], "write", method="POST", body={})
    assert code == 200, written
    code, status = await call(jp_fetch, "status", path=nb)
    assert status["recorded"] is True

    tests = await wait(jp_fetch, (await start(jp_fetch, path=nb, kind="tests"))["id"])
    assert tests["state"] == "done", tests
    run = tests["result"]["tests"]
    assert run["returncode"] == 0 and run["passed"] >= 3
    outcomes = {c["id"]: c["outcome"] for c in run["cases"]}
    assert any("test_steps.py::" in name for name in outcomes) and set(outcomes.values()) <= {"passed", "skipped"}

    # a failing test is reported as such, with its message
    out = jp_root_dir / "work" / "slow_prod"
    (out / "tests" / "test_zz.py").write_text("def test_zz() -> None:\n    assert 1 == 2, 'differs'\n")
    tests = await wait(jp_fetch, (await start(jp_fetch, path=nb, kind="tests"))["id"])
    failing = [c for c in tests["result"]["tests"]["cases"] if c["outcome"] == "failed"]
    assert [c["id"] for c in failing] == ["tests/test_zz.py::test_zz"] and "differs" in failing[0]["message"]


@pytest.mark.slow
async def test_cancel_stops_the_kernel_within_two_seconds(jp_fetch: Fetch, jp_root_dir: Path) -> None:
    pid_file = jp_root_dir / "kernel.pid"
    code = f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))"
    nb = _notebook(jp_root_dir, "sleepy.ipynb", [code, "time.sleep(600)", "z = 1"])
    job = await start(jp_fetch, path=nb, record=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        _, snap = await call(jp_fetch, "jobs", job["id"])
        if snap["progress"] and snap["progress"]["position"] == 2:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the long cell never started")
    started = time.monotonic()
    code, cancelled = await call(jp_fetch, "jobs", job["id"], method="DELETE")
    took = time.monotonic() - started
    assert code == 200 and cancelled["state"] == "cancelled", cancelled
    assert took < 2.0, f"DELETE answered after {took:.2f} s"
    assert cancelled["error"]["kind"] == "cancelled"
    pid = int(pid_file.read_text())
    state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] if Path(f"/proc/{pid}").exists() else "gone"
    assert state in ("Z", "X", "gone"), "the kernel is stopped"
    assert not (jp_root_dir / "work" / "sleepy_prod").exists()


@pytest.mark.slow
async def test_a_new_review_replaces_the_running_one_and_a_failing_cell_is_located(
    jp_fetch: Fetch, jp_root_dir: Path
) -> None:
    nb = _notebook(jp_root_dir, "fails.ipynb", ["import time\nx = 1", "time.sleep(30)", "y = 1 / 0", "z = 2"])
    first = await start(jp_fetch, path=nb, record=True)
    await asyncio.sleep(0.5)
    _notebook(jp_root_dir, "fails.ipynb", ["import time\nx = 1", "y = 1 / 0", "z = 2"])
    second = await start(jp_fetch, path=nb, record=True)
    assert (await wait(jp_fetch, first["id"]))["state"] == "cancelled"
    failed = await wait(jp_fetch, second["id"])
    assert failed["state"] == "failed", failed
    error = failed["error"]
    assert error["kind"] == "execution" and error["cell"] == 2
    assert "ZeroDivisionError" in error["message"] and error["message"].startswith(f"{nb}:cell 2")


# --- paths ----------------------------------------------------------------------------------------------------------


async def test_paths_outside_the_root_are_refused_by_the_jobs_and_the_status_too(
    live: Live, jp_root_dir: Path, bait: dict[str, Path]  # noqa: F811 - the fixture imported above
) -> None:
    from urllib.parse import quote

    problems = []
    outside_before = {name: snapshot(p) for name, p in bait.items() if p.is_dir()}
    with FileGuard(bait["outside"], bait["evil"], bait["pyproject"]) as guard:
        for path, status in BAD_NOTEBOOK_PATHS:
            for record in (False, True):
                resp = await live.fetch(
                    "nbharden/jobs", method="POST", body=_json_body({"path": path, "record": record})
                )
                if resp.code != status:
                    problems.append(f"POST jobs {path[:60]!r}: {resp.code} (expected {status}): {resp.body[:200]!r}")
            if "\ud800" in path:
                continue  # not encodable in a URL at all
            resp = await live.fetch(f"nbharden/status?path={quote(path, safe='')}")
            if resp.code != status:
                problems.append(f"GET status {path[:60]!r}: {resp.code} (expected {status}): {resp.body[:200]!r}")
        for out, status in BAD_OUT_PATHS:
            resp = await live.fetch(
                "nbharden/jobs", method="POST", body=_json_body({"path": "work/sales.ipynb", "out": out})
            )
            if resp.code != status:
                problems.append(f"POST jobs out={out[:60]!r}: {resp.code} (expected {status})")
    assert not problems, "\n".join(problems)
    assert guard.hits == []
    assert {name: snapshot(p) for name, p in bait.items() if p.is_dir()} == outside_before
