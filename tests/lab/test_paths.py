"""Paths sent to the nbharden server extension (a real Jupyter server over real HTTP).

``..``, percent-encoded dots and slashes, a sibling folder sharing the root's name as a prefix
(``/root/nb`` vs ``/root/nb-evil``), links leaving the root, NUL, backslashes, lone surrogates,
over-long paths and names are refused with a 4xx, for the notebook and for the output folder. An
audit hook (``labutil.FileGuard``) checks that no file outside the root was opened, listed,
created, renamed or removed while the requests ran, and snapshots check nothing changed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from labutil import DATA, FileGuard, Live, snapshot


@pytest.fixture
def bait(jp_root_dir: Path, notebook: str) -> dict[str, Path]:
    """Notebooks and a settings file outside the root (next to it, in a sibling folder sharing the
    root's name as a prefix, behind a link), each unique enough to be recognised if it leaks."""
    outside = jp_root_dir.parent / "outside"
    evil = jp_root_dir.parent / (jp_root_dir.name + "-evil")
    for folder in (outside, evil):
        folder.mkdir()
        nb = json.loads((DATA / "sales.ipynb").read_text())
        nb["cells"][1]["source"] = "outside_secret_9f2c = 1\nrate = 0.2\nn = 5"
        (folder / "x.ipynb").write_text(json.dumps(nb))
    # The nearest pyproject.toml above the root: it must not configure conversions in the root.
    (jp_root_dir.parent / "pyproject.toml").write_text('[tool.nbharden]\nname = "outside_pkg"\n')
    (jp_root_dir / "link-out").symlink_to(outside)
    (jp_root_dir / "work" / "nb-link.ipynb").symlink_to(outside / "x.ipynb")
    return {"outside": outside, "evil": evil, "pyproject": jp_root_dir.parent / "pyproject.toml"}


#: (notebook path, expected status); every one names something outside the root or is malformed.
BAD_NOTEBOOK_PATHS = [
    ("../outside/x.ipynb", 403),
    ("/../outside/x.ipynb", 403),
    ("work/../../outside/x.ipynb", 403),
    ("work/./../../outside/x.ipynb", 403),
    ("../root_dir-evil/x.ipynb", 403),  # the sibling folder sharing the root's name as a prefix
    ("link-out/x.ipynb", 403),  # a link leaving the root
    ("work/nb-link.ipynb", 403),  # a notebook that is a link leaving the root
    ("%2e%2e/outside/x.ipynb", 400),
    ("%2E%2E/outside/x.ipynb", 400),
    ("..%2foutside%2fx.ipynb", 400),
    ("%2e%2e%2f%2e%2e%2foutside/x.ipynb", 400),
    ("..%5coutside%5cx.ipynb", 400),
    ("work/sales.ipynb%00.txt", 400),
    ("..\\outside\\x.ipynb", 400),
    ("work/sales.ipynb\x00", 400),
    ("\x00../outside/x.ipynb", 400),
    ("work/\ud800.ipynb", 400),  # a lone surrogate cannot be a file name
    ("work/" + "a" * 300 + ".ipynb", 400),  # one name longer than NAME_MAX
    ("a/" * 2100 + "x.ipynb", 400),  # longer than PATH_MAX
    ("/".join(["work", *[".."] * 2000, "outside", "x.ipynb"]), 400),
    ("%252e%252e/outside/x.ipynb", 404),  # double-encoded: a literal name, and not in the root
    ("~/x.ipynb", 404),
]


def _json_body(body: dict[str, Any]) -> bytes:
    # ensure_ascii keeps lone surrogates as \ud800 escapes, which is what a client would send.
    return json.dumps(body, ensure_ascii=True).encode("ascii")


async def test_notebook_paths_outside_the_root_are_refused_and_nothing_outside_is_touched(
    live: Live, jp_root_dir: Path, bait: dict[str, Path]
) -> None:
    assert (jp_root_dir.parent / "root_dir-evil") == bait["evil"], "fixture layout changed"
    outside_before = {name: snapshot(p) for name, p in bait.items() if p.is_dir()}
    beside_before = sorted(p.name for p in jp_root_dir.parent.iterdir())
    cases = [
        *BAD_NOTEBOOK_PATHS,
        # The absolute path of the outside notebook is a path under the root, which has none.
        (str(bait["outside"] / "x.ipynb"), 404),
        ("//" + str(bait["outside"] / "x.ipynb"), 404),
    ]
    problems = []
    with FileGuard(bait["outside"], bait["evil"], bait["pyproject"]) as guard:
        for path, status in cases:
            for write in (False, True):
                resp = await live.fetch(
                    "nbharden/convert",
                    method="POST",
                    body=_json_body({"path": path, "write": write}),
                )
                body = json.loads(resp.body)
                if resp.code != status:
                    problems.append(f"{path[:60]!r}: {resp.code} (expected {status}): {body}")
                if "outside_secret_9f2c" in resp.body.decode():
                    problems.append(f"{path[:60]!r}: the answer shows the outside notebook")
                if len(resp.body) > 2000:
                    problems.append(f"{path[:60]!r}: a {len(resp.body)}-byte error message")
        # The encoded form inside the JSON string is plain "..": refused like it.
        resp = await live.fetch(
            "nbharden/convert",
            method="POST",
            body=b'{"path": "\\u002e\\u002e/outside/x.ipynb", "write": true}',
        )
        if resp.code != 403:
            problems.append(f"JSON-escaped '..': {resp.code}")
    assert not problems, "\n".join(problems)
    assert guard.hits == []
    assert {name: snapshot(p) for name, p in bait.items() if p.is_dir()} == outside_before
    assert sorted(p.name for p in jp_root_dir.parent.iterdir()) == beside_before


#: (output folder, expected status) for a real notebook in the root: each would write outside the
#: root, over the notebook, or is malformed.
BAD_OUT_PATHS = [
    ("../outside/pkg", 403),
    ("../root_dir-evil", 403),
    ("../root_dir-evil/pkg", 403),
    ("work/../../outside/pkg", 403),
    ("link-out", 403),
    ("link-out/pkg", 403),
    ("", 403),  # the root itself
    ("/", 403),
    ("work", 403),  # the notebook's own folder
    ("work/sales.ipynb", 403),
    (".hidden/pkg", 403),
    ("%2e%2e/outside/pkg", 400),
    ("pkg%2f..%2f..%2foutside", 400),
    ("pkg\x00", 400),
    ("pkg\\..\\..\\outside", 400),
    ("pkg/\udc80", 400),
    ("pkg/" + "b" * 256, 400),
    ("p/" * 2100, 400),
]


async def test_output_folders_outside_the_root_are_refused_and_nothing_is_written(
    live: Live, jp_root_dir: Path, notebook: str, bait: dict[str, Path]
) -> None:
    outside_before = {name: snapshot(p) for name, p in bait.items() if p.is_dir()}
    root_before = snapshot(jp_root_dir)
    problems = []
    with FileGuard(bait["outside"], bait["evil"], bait["pyproject"]) as guard:
        for out, status in BAD_OUT_PATHS:
            resp = await live.fetch(
                "nbharden/convert",
                method="POST",
                body=_json_body({"path": notebook, "out": out, "write": True, "force": True}),
            )
            if resp.code != status:
                problems.append(
                    f"{out[:60]!r}: {resp.code} (expected {status}): {resp.body[:300]!r}"
                )
    assert not problems, "\n".join(problems)
    assert guard.hits == []
    assert {name: snapshot(p) for name, p in bait.items() if p.is_dir()} == outside_before
    assert snapshot(jp_root_dir) == root_before


async def test_a_generated_file_that_links_out_of_the_root_is_never_written_through(
    live: Live, jp_root_dir: Path, notebook: str, bait: dict[str, Path]
) -> None:
    code, data = await live.convert({"path": notebook, "write": True})
    assert code == 200, data
    out = jp_root_dir / "work" / "sales_prod"
    target = next(f["path"] for f in data["files"] if f["path"].startswith("tests/test_"))
    victim = bait["outside"] / "victim.py"
    victim.write_text("# not yours\n")
    (out / target).unlink()
    (out / target).symlink_to(victim)
    src = next(p for p in (out / "src").iterdir() if p.is_dir())
    moved = jp_root_dir / "moved"
    shutil.move(src, moved)
    (out / "src" / src.name).symlink_to(moved)  # a linked folder inside the output folder
    with FileGuard(bait["outside"]) as guard:
        for force in (False, True):
            code, err = await live.convert({"path": notebook, "write": True, "force": force})
            assert code == 409, err
            assert err["kind"] == "blocked"
            assert target in err["paths"]
    assert victim.read_text() == "# not yours\n"
    # Reading the link's target to show a diff would be a read outside the root: not done either.
    assert guard.hits == []
    assert any(p.startswith(f"src/{src.name}/") for p in err["paths"]), err["paths"]


async def test_settings_come_from_inside_the_root_only(
    live: Live, jp_root_dir: Path, notebook: str, bait: dict[str, Path]
) -> None:
    with FileGuard(bait["pyproject"]) as guard:
        code, data = await live.convert({"path": notebook})
    assert code == 200, data
    assert guard.hits == []
    assert not any("outside_pkg" in f["path"] for f in data["files"])
    # A pyproject.toml inside the root applies, unless it is a link to one outside.
    (jp_root_dir / "work" / "pyproject.toml").symlink_to(bait["pyproject"])
    with FileGuard(bait["pyproject"]) as guard:
        code, data = await live.convert({"path": notebook})
    assert code == 200, data
    assert guard.hits == []
    assert not any("outside_pkg" in f["path"] for f in data["files"])
    # A pyproject.toml that is not TOML is skipped, as the CLI skips it; the next one up applies.
    (jp_root_dir / "work" / "pyproject.toml").unlink()
    (jp_root_dir / "work" / "pyproject.toml").write_text("[tool.nbharden\n")
    (jp_root_dir / "pyproject.toml").write_text('[tool.nbharden]\nname = "inside_pkg"\n')
    code, data = await live.convert({"path": notebook})
    assert code == 200, data
    assert any(f["path"].startswith("src/inside_pkg/") for f in data["files"]), data["files"]


async def test_a_5_mb_path_is_refused_with_a_short_message(live: Live) -> None:
    resp = await live.fetch(
        "nbharden/convert",
        method="POST",
        body=json.dumps({"path": "x" * (5 * 1024 * 1024) + ".ipynb"}),
    )
    assert resp.code == 400
    assert len(resp.body) < 2000


def _planting_notebook(out_name: str, elsewhere: Path) -> dict[str, Any]:
    """``sales.ipynb`` with a first cell that replaces its output folder with a link to
    ``elsewhere`` (idempotent: a recording runs the notebook twice)."""
    nb: dict[str, Any] = json.loads((DATA / "sales.ipynb").read_text())
    plant = (
        "import os\nimport shutil\n"
        f"if not os.path.islink({out_name!r}):\n"
        f"    shutil.rmtree({out_name!r}, ignore_errors=True)\n"
        "    try:\n"
        f"        os.symlink({str(elsewhere)!r}, {out_name!r})\n"
        "    except OSError:\n"
        "        pass\n"
    )
    cell = {"cell_type": "code", "id": "plant", "metadata": {}, "execution_count": None}
    nb["cells"].insert(0, {**cell, "outputs": [], "source": plant})
    return nb


@pytest.mark.slow
@pytest.mark.parametrize(("sandbox", "write"), [("off", True), ("off", False), ("bwrap", True)])
async def test_a_recording_cannot_redirect_the_write_out_of_the_root(
    live: Live, jp_root_dir: Path, sandbox: str, write: bool
) -> None:
    """``record: true``: the notebook's code replaces its output folder (written by an earlier
    request) with a link leading out of the root. The write is refused (409), a dry run too (its
    diffs would show files outside the root), and nothing outside the root is written, created
    or opened; the next request is refused as leading out of the root (403). Before, the root and
    link checks ran only before the recording and the package landed outside the root."""
    outside = jp_root_dir.parent / "redirect-target"
    outside.mkdir()
    work = jp_root_dir / "work"
    work.mkdir()
    (work / "plant.ipynb").write_text(json.dumps(_planting_notebook("plant_prod", outside)))
    (work / "pyproject.toml").write_text(f'[tool.nbharden]\nsandbox = "{sandbox}"\n')
    code, data = await live.convert({"path": "work/plant.ipynb", "write": True})
    assert code == 200, data
    request = {"path": "work/plant.ipynb", "write": write, "record": True}
    with FileGuard(outside) as guard:
        code, err = await live.convert(request)
    assert list(outside.iterdir()) == []
    assert guard.hits == []
    if sandbox == "bwrap" and not (work / "plant_prod").is_symlink():
        assert code in (200, 422), err  # a sandbox that keeps the folder out of reach is fine too
        return
    assert (work / "plant_prod").is_symlink(), "the notebook did not plant its link"
    assert code == 409, err
    assert err["kind"] == "write"
    assert err["message"] == (
        f"work/plant_prod: the output folder now leads to {outside}: it was replaced (by a link) "
        f"while the notebook ran; refused to {'write' if write else 'compare with it'}"
    )
    code, err = await live.convert({"path": "work/plant.ipynb"})
    assert code == 403, err
