"""nbharden's "Harden notebook" command in a real JupyterLab, driven through Debian's chromium."""

from __future__ import annotations

from typing import Any

from conftest import ARTIFACTS, Lab

TIMEOUT = 90_000  # ms: the first conversion in a cold process imports libcst, black, ruff


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
            page.locator(".jp-NotebookPanel .jp-InputPrompt").first.click()
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
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "lab-palette-failed.png"))
    raise AssertionError(f"could not run {label!r} from the palette: {last}")


def test_harden_from_the_palette_review_and_write(lab: Lab, page: Any) -> None:
    open_notebook(page, lab, "work/sales.ipynb")
    # The command is also on the notebook toolbar (declared in schema/plugin.json).
    toolbar = page.locator('.jp-NotebookPanel-toolbar [data-command="nbharden:harden"]')
    toolbar.wait_for(timeout=10_000)
    run_from_palette(page, "Harden notebook")

    review = page.locator(".jp-nbharden-Review")
    review.locator(".jp-nbharden-file[open] .jp-nbharden-diff").first.wait_for(timeout=TIMEOUT)
    # The diff is coloured per line, and findings name their cell.
    assert review.locator(".jp-nbharden-add").count() > 10
    findings = review.locator(".jp-nbharden-finding")
    assert findings.count() >= 1
    assert review.locator(".jp-nbharden-where", has_text="cell").count() >= 1
    paths = review.locator(".jp-nbharden-path").all_inner_texts()
    assert ".nbharden.json" in paths and any(p.endswith(".py") for p in paths)
    assert not (lab.root / "work" / "sales_prod").exists()

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "lab-review.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000

    # Clicking a finding with a cell jumps to that cell in the notebook.
    located = review.locator(".jp-nbharden-finding.jp-nbharden-clickable").first
    cell = int(located.locator(".jp-nbharden-where").inner_text().split()[1].split(":")[0])
    located.click()
    page.wait_for_function(
        "n => { const c = document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell');"
        " return c[n - 1] && c[n - 1].classList.contains('jp-mod-active'); }",
        arg=cell,
        timeout=10_000,
    )

    # Write files: they appear on disk, exactly the files the panel listed.
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="Harden: sales.ipynb").click()
    review.locator(".jp-nbharden-write").click()
    done = review.locator(".jp-nbharden-written")
    done.wait_for(timeout=TIMEOUT)
    assert int(done.get_attribute("data-written") or 0) == len(paths)
    out = lab.root / "work" / "sales_prod"
    for rel in paths:
        assert (out / rel).is_file(), rel
    page.screenshot(path=str(ARTIFACTS / "lab-written.png"))


def test_the_file_browser_menu_on_a_broken_notebook_shows_a_readable_error(
    lab: Lab, page: Any
) -> None:
    open_notebook(page, lab, "work/sales.ipynb")
    item = page.locator('.jp-DirListing-item[data-file-type="notebook"]', has_text="broken.ipynb")
    item.click(button="right")
    page.locator(".lm-Menu-item", has_text="Harden notebook").click()
    error = page.locator(".jp-nbharden-Review .jp-nbharden-error")
    error.wait_for(timeout=TIMEOUT)
    text = error.inner_text()
    assert "cannot read this notebook" in text
    assert "work/broken.ipynb" in text and "JSON" in text
    assert str(lab.root) not in text
    page.screenshot(path=str(ARTIFACTS / "lab-error.png"))
