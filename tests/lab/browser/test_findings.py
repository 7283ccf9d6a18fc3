"""Findings in the review panel and in the notebook: labels with the execution counts users see (`[7]`), grouped by
severity, gutter markers on the lines they concern, a click puts the cursor on the exact line, "Explain"."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Lab
from helpers import open_notebook, panel, shot, toolbar_button, wait_review, write_notebook

pytestmark = pytest.mark.browser

CELLS = [
    "#md # Prices",
    "import random\nrate = 0.2",
    "#md ## Draw",
    "n = 5\nx = random.random() * n",
    "print(x * rate)",
]


def test_findings_are_labelled_grouped_marked_in_the_gutter_and_explained(lab: Lab, page: Any) -> None:
    write_notebook(lab.root / "work" / "draw.ipynb", CELLS, counts=[3, 7, 12])
    open_notebook(page, lab, "work/draw.ipynb")
    toolbar_button(page).click()
    review = wait_review(page)

    unseeded = review.locator('.jp-nbharden-finding[data-code="NBH401"]')
    assert unseeded.locator(".jp-nbharden-where").inner_text() == "[7]:2", "the prompt users see, not 'cell 4'"
    group = review.locator('.jp-nbharden-finding-group[data-severity="warning"]')
    assert group.locator('.jp-nbharden-finding[data-code="NBH401"]').count() == 1
    assert review.locator('.jp-nbharden-finding-group[data-severity="info"] [data-code="NBH604"]').count() == 1

    # a marker in the gutter of the cell's editor, on the line the finding names
    cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")
    flagged = cells.nth(3)
    marker = flagged.locator('.jp-nbharden-gutter-marker[title*="NBH"]')
    marker.first.wait_for(timeout=10_000)
    assert marker.count() == 1 and "NBH401 ([7] line 2)" in (marker.get_attribute("title") or "")
    assert flagged.locator(".cm-line.jp-nbharden-flagged-line").inner_text() == "x = random.random() * n"
    assert flagged.get_attribute("data-nbharden-findings") == "1"
    assert cells.nth(1).locator('.jp-nbharden-gutter-marker[title*="NBH"]').count() == 0
    shot(page, "lab-gutter.png")

    # a click jumps to the cell and puts the cursor on the exact line and column
    unseeded.locator(".jp-nbharden-finding-row").click()
    page.wait_for_function(
        "() => document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell')[3]"
        ".classList.contains('jp-mod-active')",
        timeout=10_000,
    )
    position = page.locator(".jp-StatusBar-TextItem", has_text="Ln ")
    position.first.wait_for(timeout=10_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-StatusBar-TextItem')].some(e => /Ln 2, Col 5/.test(e.textContent))",
        timeout=10_000,
    )

    # "Explain" shows the rule's documentation with its example
    page.locator(".lm-TabBar-tab", has_text="Harden: draw.ipynb").click()
    review = panel(page)
    unseeded = review.locator('.jp-nbharden-finding[data-code="NBH401"]')
    unseeded.locator(".jp-nbharden-explain").click()
    doc = unseeded.locator(".jp-nbharden-explanation")
    doc.locator(".cm-editor").first.wait_for(timeout=10_000)
    assert "NBH401" in doc.locator("h4").inner_text()
    assert "seed" in doc.inner_text().lower()
    shot(page, "lab-explain.png")
