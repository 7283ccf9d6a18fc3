"""The command acts on the notebook it was invoked on (issue 15, bug 1), and one panel per notebook is reused.

Before the fix, ``target()`` asked ``app.contextMenuHitTest``, which kept returning the last right-clicked file
after its menu closed: right-click ``other.ipynb``, Escape, then the toolbar button of ``sales.ipynb`` opened
"Harden: other.ipynb". These tests fail on that code.
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest
from conftest import Lab
from helpers import (
    PANEL,
    TIMEOUT,
    open_notebook,
    run_from_palette,
    shot,
    tab,
    toolbar_button,
    wait_review,
)

pytestmark = pytest.mark.browser


def _menu_then_escape(page: Any, name: str) -> None:
    item = page.locator('.jp-DirListing-item[data-file-type="notebook"]', has_text=name)
    item.click(button="right")
    page.locator(".lm-Menu-item", has_text="Harden notebook").wait_for()
    page.keyboard.press("Escape")
    page.locator(".lm-Menu").wait_for(state="hidden")


def _panel_titles(page: Any) -> list[str]:
    return sorted(t.strip() for t in page.locator(".lm-TabBar-tab", has_text="Harden:").all_inner_texts())


def test_toolbar_and_palette_harden_the_current_notebook_after_a_closed_context_menu(lab: Lab, page: Any) -> None:
    shutil.copy(lab.root / "work" / "sales.ipynb", lab.root / "work" / "other.ipynb")
    open_notebook(page, lab, "work/sales.ipynb")
    _menu_then_escape(page, "other.ipynb")
    toolbar_button(page).click()
    wait_review(page)
    assert _panel_titles(page) == ["Harden: sales.ipynb"]
    assert page.locator(f"{PANEL}:visible .jp-nbharden-title").inner_text() == "work/sales.ipynb"

    # the palette too, after another menu was opened and closed
    page.locator(".jp-NotebookPanel .jp-InputPrompt").first.click()
    _menu_then_escape(page, "other.ipynb")
    run_from_palette(page, "Harden notebook")
    wait_review(page)
    assert _panel_titles(page) == ["Harden: sales.ipynb"], "the same panel, reused; other.ipynb untouched"
    shot(page, "lab-target.png")


def test_the_context_menu_hardens_the_item_it_was_opened_on_and_panels_share_one_tab_area(
    lab: Lab, page: Any
) -> None:
    shutil.copy(lab.root / "work" / "sales.ipynb", lab.root / "work" / "other.ipynb")
    open_notebook(page, lab, "work/sales.ipynb")
    item = page.locator('.jp-DirListing-item[data-file-type="notebook"]', has_text="other.ipynb")
    item.click(button="right")
    page.locator(".lm-Menu-item", has_text="Harden notebook").click()
    wait_review(page)
    assert _panel_titles(page) == ["Harden: other.ipynb"]
    assert page.locator(f"{PANEL}:visible .jp-nbharden-title").inner_text() == "work/other.ipynb"

    # a second notebook's panel is a tab next to the first panel, not one more split
    page.locator(".lm-TabBar-tab", has_text="sales.ipynb").first.click()
    toolbar_button(page).click()
    wait_review(page)
    assert _panel_titles(page) == ["Harden: other.ipynb", "Harden: sales.ipynb"]
    bars = page.evaluate(
        """() => [...document.querySelectorAll('.lm-DockPanel-tabBar')]
              .filter(bar => bar.textContent.includes('Harden:'))
              .map(bar => [...bar.querySelectorAll('.lm-TabBar-tab')]
                             .filter(t => t.textContent.includes('Harden:')).length)"""
    )
    assert bars == [2], f"review panels share one tab bar: {bars}"
    # hardening a notebook again reuses its panel
    tab(page, "sales.ipynb").first.click()
    toolbar_button(page).click()
    wait_review(page, timeout=TIMEOUT)
    assert _panel_titles(page) == ["Harden: other.ipynb", "Harden: sales.ipynb"]
