"""Helpers of the browser tests: notebooks written for a test, opening them, the command palette, the panel."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from conftest import ARTIFACTS, Lab

TIMEOUT = 90_000  # ms: the first conversion in a cold process imports libcst, black, ruff
PANEL = ".jp-nbharden-Review"


def write_notebook(
    path: Path,
    cells: Sequence[str],
    counts: Sequence[int | None] | None = None,
) -> None:
    """A python3 notebook at ``path``: code cells (a source starting with ``#md `` is markdown), with the
    execution counts ``counts`` (None: never run) as the prompts show them."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    numbers = iter(counts or [])
    for source in cells:
        if source.startswith("#md "):
            nb.cells.append(new_markdown_cell(source[4:]))
        else:
            nb.cells.append(new_code_cell(source, execution_count=next(numbers, None)))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


def open_notebook(page: Any, lab: Lab, path: str) -> None:
    page.goto(lab.open_url(path))
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=TIMEOUT)
    # Wait for the kernel: while it starts, focus moves around and closes the modal palette.
    page.locator(".jp-StatusBar-TextItem", has_text="Idle").first.wait_for(timeout=TIMEOUT)


def run_from_palette(page: Any, label: str) -> None:
    """Open the command palette, type ``label`` and run the active item.

    The modal palette closes when it loses focus; if anything takes the focus while typing, the
    whole interaction is tried again (up to five times).
    """
    palette = page.locator("#modal-command-palette .lm-CommandPalette-input")
    item = page.locator(".lm-CommandPalette-item.lm-mod-active", has_text=label)
    last: Exception | None = None
    for _ in range(5):
        try:
            page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-InputPrompt").first.click()
            page.keyboard.press("Escape")
            page.keyboard.press("Control+Shift+C")
            palette.wait_for(state="visible", timeout=3_000)
            palette.fill(label, timeout=3_000)
            # The palette re-renders on every key: wait for the command to be the active item.
            item.wait_for(timeout=3_000)
            page.keyboard.press("Enter")
            return
        except Exception as exc:  # noqa: BLE001 - retried; the last one is reported
            last = exc
    shot(page, "lab-palette-failed.png")
    raise AssertionError(f"could not run {label!r} from the palette: {last}")


def toolbar_button(page: Any) -> Any:
    """The Harden button of the visible notebook's toolbar."""
    return page.locator(
        '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-NotebookPanel-toolbar [data-command="nbharden:harden"]'
    ).first


def panel(page: Any) -> Any:
    return page.locator(f"{PANEL}:visible").first


def wait_review(page: Any, timeout: int = TIMEOUT) -> Any:
    """The visible panel once it shows a review (findings and files)."""
    review = panel(page)
    review.locator(".jp-nbharden-files").wait_for(timeout=timeout)
    return review


def tab(page: Any, label: str) -> Any:
    return page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=label)


def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    return path


def manifest_as_if_recorded(out: Path) -> list[str]:
    """Add a recorded suite's files to a written folder and its manifest; returns their paths."""
    import hashlib

    def sha256_text(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    files = {
        "tests/data/recording.json": '{"steps": {}}\n',
        "tests/test_steps.py": "def test_step() -> None:\n    assert True\n",
        "tests/data/values/0f00e6f90b485d7358b3a7bf.json": "[1, 2, 3]\n",
    }
    manifest = json.loads((out / ".nbharden.json").read_text())
    for rel, text in files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
        manifest["files"][rel] = sha256_text(text)
    (out / ".nbharden.json").write_text(json.dumps(manifest, sort_keys=True, indent=2) + "\n")
    return sorted(files)


def wait_until(predicate: Any, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
