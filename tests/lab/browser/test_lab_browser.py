"""nbharden's review panel in a real JupyterLab, driven through Debian's chromium: the review (findings, file tree,
CodeMirror views), writing (statuses read again, the file browser refreshed, Open links), hand-edited files, the
refusal to drop a recorded suite, and errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Lab
from helpers import (
    TIMEOUT,
    manifest_as_if_recorded,
    open_notebook,
    panel,
    run_from_palette,
    shot,
    tab,
    toolbar_button,
    wait_review,
)

pytestmark = pytest.mark.browser


def _statuses(review: Any) -> dict[str, str]:
    return {
        e.get_attribute("data-path"): e.get_attribute("data-status")
        for e in review.locator(".jp-nbharden-file").element_handles()
    }


def _open_file(review: Any, path: str) -> Any:
    entry = review.locator(f'.jp-nbharden-file[data-path="{path}"]')
    folder = entry.locator("xpath=ancestor::details[contains(@class, 'jp-nbharden-folder')]")
    if folder.count() and folder.get_attribute("open") is None:
        folder.locator("summary").first.click()
    entry.locator("summary").click()
    entry.locator(".cm-editor").wait_for(timeout=30_000)
    return entry


def test_review_merge_view_write_then_statuses_read_unchanged(lab: Lab, page: Any) -> None:
    open_notebook(page, lab, "work/sales.ipynb")
    toolbar_button(page).wait_for(timeout=10_000)
    run_from_palette(page, "Harden notebook")
    review = wait_review(page)
    statuses = _statuses(review)
    steps = next(p for p in statuses if p.endswith("steps.py"))
    assert set(statuses.values()) == {"new"} and ".nbharden.json" in statuses
    # the manifest is listed, hidden until asked for
    assert not review.locator('.jp-nbharden-file[data-path=".nbharden.json"]').is_visible()
    review.locator(".jp-nbharden-show-manifest input").check()
    assert review.locator('.jp-nbharden-file[data-path=".nbharden.json"]').is_visible()
    # a new file is highlighted Python code, not a wall of "+"
    entry = _open_file(review, steps)
    assert entry.locator(".jp-nbharden-codeview .cm-content").inner_text().startswith('"""')
    assert entry.locator(".cm-line span").count() > 5, "tokens are highlighted"
    assert entry.locator(".cm-changedLine").count() == 0
    assert not (lab.root / "work" / "sales_prod").exists()

    review.locator(".jp-nbharden-write").click()
    done = review.locator(".jp-nbharden-summary.jp-nbharden-written")
    done.wait_for(timeout=TIMEOUT)
    assert int(done.get_attribute("data-written") or 0) == len(statuses)
    assert done.get_attribute("data-removed") == "0"
    assert set(_statuses(review).values()) == {"unchanged"}, "statuses re-read from the disk"
    assert review.locator(".jp-nbharden-write").is_disabled()
    out = lab.root / "work" / "sales_prod"
    assert all((out / rel).is_file() for rel in statuses)
    # the file browser shows the new folder without a manual refresh
    page.locator(".jp-DirListing-item", has_text="sales_prod").wait_for(timeout=10_000)
    shot(page, "lab-written.png")

    # a changed file opens as a merge view, Python highlighted, the deleted line shown inline
    (out / steps).write_text((out / steps).read_text().replace("def ", "def  ", 1))
    review.locator(".jp-nbharden-refresh").first.click()
    review = wait_review(page)
    assert _statuses(review)[steps] == "edited"
    entry = _open_file(review, steps)
    assert entry.locator(".jp-nbharden-merge .cm-changedLine").count() >= 1
    assert entry.locator(".jp-nbharden-merge .cm-deletedChunk").count() >= 1
    assert entry.locator(".cm-line span").count() > 5
    shot(page, "lab-merge.png")
    # "Open" opens the written file in an editor
    entry.locator(".jp-nbharden-open").click()
    tab(page, "steps.py").first.wait_for(timeout=10_000)


def test_hand_edited_files_get_a_choice_each_in_ui_words(lab: Lab, page: Any) -> None:
    open_notebook(page, lab, "work/sales.ipynb")
    toolbar_button(page).click()
    review = wait_review(page)
    review.locator(".jp-nbharden-write").click()
    review.locator(".jp-nbharden-written").wait_for(timeout=TIMEOUT)
    out = lab.root / "work" / "sales_prod"
    mine, theirs = (next(out.rglob(name)) for name in ("steps.py", "pipeline.py"))
    mine.write_text(mine.read_text() + "# keep me\n")
    theirs.write_text(theirs.read_text() + "# overwrite me\n")
    rel = [p.relative_to(out).as_posix() for p in (mine, theirs)]

    review.locator(".jp-nbharden-refresh").first.click()
    review = wait_review(page)
    assert [p for p, s in _statuses(review).items() if s == "edited"] == sorted(rel)
    review.locator(".jp-nbharden-write").click()
    notice = review.locator(".jp-nbharden-notice-warn")
    notice.wait_for()
    assert "Choose what happens to your edits in 2 file(s)" in notice.inner_text()
    assert "force" not in review.inner_text()
    assert mine.read_text().endswith("# keep me\n"), "nothing written before the choice"
    review.locator(f'.jp-nbharden-file[data-path="{rel[0]}"] input[value="keep"]').check()
    review.locator(f'.jp-nbharden-file[data-path="{rel[1]}"] input[value="overwrite"]').check()
    shot(page, "lab-edited.png")
    review.locator(".jp-nbharden-write").click()
    done = review.locator(".jp-nbharden-written")
    done.wait_for(timeout=TIMEOUT)
    assert "kept 1 of your edits" in done.inner_text()
    assert mine.read_text().endswith("# keep me\n") and "# overwrite me" not in theirs.read_text()
    statuses = _statuses(review)
    assert statuses[rel[0]] == "edited" and statuses[rel[1]] == "unchanged"


def test_a_static_review_never_removes_a_recorded_suite_without_asking(lab: Lab, page: Any) -> None:
    """Issue 15, bug 2: Write was enabled with no warning and removed the recorded tests. Fails on that code."""
    open_notebook(page, lab, "work/sales.ipynb")
    toolbar_button(page).click()
    review = wait_review(page)
    review.locator(".jp-nbharden-write").click()
    review.locator(".jp-nbharden-written").wait_for(timeout=TIMEOUT)
    out = lab.root / "work" / "sales_prod"
    recorded = manifest_as_if_recorded(out)
    before = {p: (out / p).read_text() for p in recorded}

    # the same steps as in the issue (and in the panel before the fix): review again, click Write
    toolbar_button(page).click()
    review = wait_review(page)
    review.locator(".jp-nbharden-write").click()
    page.locator(".jp-Dialog, .jp-nbharden-written, .jp-nbharden-error").first.wait_for(timeout=TIMEOUT)
    assert {p: (out / p).read_text() for p in recorded if (out / p).exists()} == before, (
        "Write removed the recorded suite without asking"
    )
    dialog = page.locator(".jp-Dialog")
    assert "Replace the recorded test suite?" in dialog.inner_text()
    dialog.locator("button", has_text="Cancel").click()
    warning = review.locator(".jp-nbharden-drops")
    assert warning.get_attribute("data-count") == str(len(recorded))
    statuses = _statuses(review)
    assert sorted(p for p, s in statuses.items() if s == "removed") == recorded, "removals listed as such"
    review.locator(".jp-nbharden-write").click()
    dialog.wait_for()
    assert f"removes {len(recorded)} recorded file(s)" in dialog.inner_text()
    shot(page, "lab-recorded-suite.png")
    dialog.locator("button", has_text="Cancel").click()
    assert {p: (out / p).read_text() for p in recorded} == before, "cancel writes nothing"

    review.locator(".jp-nbharden-write").click()
    page.locator(".jp-Dialog button", has_text=f"Remove {len(recorded)} recorded files").click()
    done = review.locator(".jp-nbharden-written")
    done.wait_for(timeout=TIMEOUT)
    assert done.get_attribute("data-removed") == str(len(recorded))
    gone = [
        e.get_attribute("data-path")
        for e in review.locator('.jp-nbharden-file[data-status="removed"]').element_handles()
    ]
    assert sorted(gone) == recorded, "removals still shown after writing"
    assert not any((out / p).exists() for p in recorded)


def test_the_file_browser_menu_on_a_broken_notebook_shows_a_readable_error(lab: Lab, page: Any) -> None:
    open_notebook(page, lab, "work/sales.ipynb")
    item = page.locator('.jp-DirListing-item[data-file-type="notebook"]', has_text="broken.ipynb")
    item.click(button="right")
    page.locator(".lm-Menu-item", has_text="Harden notebook").click()
    error = panel(page).locator(".jp-nbharden-error")
    error.wait_for(timeout=TIMEOUT)
    text = error.inner_text()
    assert "cannot read this notebook" in text
    assert "work/broken.ipynb" in text and "JSON" in text
    assert str(lab.root) not in text
    shot(page, "lab-error.png")


def test_unsaved_edits_are_saved_or_asked_about(lab: Lab, page: Any) -> None:
    open_notebook(page, lab, "work/sales.ipynb")
    cell = page.locator(".jp-NotebookPanel .jp-Cell .cm-content").nth(1)
    cell.click()
    page.keyboard.press("End")
    page.keyboard.type("\nextra = 42")
    toolbar_button(page).click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=10_000)
    assert "has changes that are not saved" in dialog.inner_text()
    dialog.locator("button", has_text="Save and continue").click()
    wait_review(page)
    saved = json.loads(Path(lab.root / "work" / "sales.ipynb").read_text())
    assert "extra = 42" in "".join(saved["cells"][1]["source"]), "saved before converting"
    steps = panel(page).locator(".jp-nbharden-file", has_text="steps.py")
    assert steps.count() == 1
