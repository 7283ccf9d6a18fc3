"""Recording from the review panel (real kernels): "Run notebook and record" on by default for a folder with a recorded
suite, progress per run and per cell, Cancel (the kernel stopped), a failing cell located with "Go to cell", and a
recorded review written and its generated tests run, test by test."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Lab
from helpers import (
    TIMEOUT,
    open_notebook,
    panel,
    shot,
    toolbar_button,
    wait_review,
    wait_until,
    write_notebook,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: Records every change of the progress box: [ms since the click, event, run, position].
OBSERVE = """() => {
  window.__nbh = [];
  window.__nbhStart = performance.now();
  const seen = node => {
    const box = document.querySelector('.jp-nbharden-Review .jp-nbharden-progress');
    if (box && !window.__nbhBox) {
      window.__nbhBox = box;
      window.__nbh.push([performance.now() - window.__nbhStart, 'progress', null, null]);
    }
  };
  new MutationObserver(records => {
    seen();
    for (const r of records) {
      if (r.type === 'attributes' && r.attributeName === 'data-position') {
        const box = r.target;
        window.__nbh.push([performance.now() - window.__nbhStart, 'cell',
                           Number(box.getAttribute('data-run')), Number(box.getAttribute('data-position'))]);
      }
    }
    if (!document.querySelector('.jp-nbharden-Review .jp-nbharden-progress') && window.__nbhBox) {
      window.__nbhBox = null;
      window.__nbh.push([performance.now() - window.__nbhStart, 'gone', null, null]);
    }
  }).observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ['data-position']});
}"""


def _process_gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def _static_package(notebook: Path) -> Path:
    """Write the notebook's static package (as an earlier conversion left it) and make it look recorded."""
    from helpers import manifest_as_if_recorded

    from nbharden import api
    from nbharden.settings import Settings

    out = notebook.parent / f"{notebook.stem}_prod"
    api.write(api.convert(notebook, Settings(out=out, record=False)))
    manifest_as_if_recorded(out)
    return out


def test_record_by_default_shows_every_cell_and_cancel_stops_the_kernel(lab: Lab, page: Any) -> None:
    pid_file = lab.root.parent / "kernel.pid"
    cells = [
        f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))",
        "time.sleep(0.2)\na = 1",
        "time.sleep(0.2)\nb = a + 1",
        "time.sleep(0.2)\nc = b + 1",
        "time.sleep(600)",
    ]
    notebook = lab.root / "work" / "slow.ipynb"
    write_notebook(notebook, cells)
    out = _static_package(notebook)
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    open_notebook(page, lab, "work/slow.ipynb")
    page.evaluate(OBSERVE)
    toolbar_button(page).click()
    review = panel(page)
    progress = review.locator('.jp-nbharden-progress[data-position="5"]')
    progress.wait_for(timeout=TIMEOUT)
    assert review.locator(".jp-nbharden-record").is_checked(), "on by default: the folder holds a recorded suite"
    assert "run 1 of 2" in review.locator(".jp-nbharden-stage").inner_text()
    assert "Cell 5 of 5 · cell 5" in review.locator(".jp-nbharden-cell-line").inner_text()
    events = page.evaluate("() => window.__nbh")
    assert events[0][1] == "progress", "the progress box comes first"
    assert [(e[2], e[3]) for e in events if e[1] == "cell"] == [(1, p) for p in range(1, 6)], "every cell shown"
    shot(page, "lab-recording.png")

    review.locator(".jp-nbharden-cancel").click()
    review.locator(".jp-nbharden-idle", has_text="Cancelled").wait_for(timeout=10_000)
    events = page.evaluate("() => window.__nbh")
    assert events[-1][1] == "gone"
    pid = int(pid_file.read_text())
    wait_until(lambda: _process_gone(pid), timeout=2.0, what="the kernel to stop")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == before


def test_a_failing_cell_is_located_and_go_to_cell_jumps_there(lab: Lab, page: Any) -> None:
    write_notebook(
        lab.root / "work" / "fails.ipynb", ["a = 1", "#md ## Divide", "b = 2\nc = a / 0", "d = 3"], counts=[2, 5, 6]
    )
    open_notebook(page, lab, "work/fails.ipynb")
    toolbar_button(page).click()
    review = wait_review(page)
    review.locator(".jp-nbharden-record").check()
    error = panel(page).locator('.jp-nbharden-error[data-kind="execution"]')
    error.wait_for(timeout=TIMEOUT)
    text = error.inner_text()
    assert "The notebook failed when it was run" in text and "ZeroDivisionError" in text
    assert "work/fails.ipynb:cell 3" in text
    go = error.locator(".jp-nbharden-goto")
    assert go.inner_text() == "Go to [5]"
    shot(page, "lab-failed-cell.png")
    go.click()
    page.wait_for_function(
        "() => document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell')[2]"
        ".classList.contains('jp-mod-active')",
        timeout=10_000,
    )


def test_a_recorded_review_is_written_and_its_tests_run_one_by_one(lab: Lab, page: Any) -> None:
    write_notebook(
        lab.root / "work" / "small.ipynb",
        [
            "#md # Small",
            "rate = 0.5\nn = 4",
            "#md ## Compute",
            "values = [i * rate for i in range(n)]\ntotal = sum(values)",
        ],
    )
    open_notebook(page, lab, "work/small.ipynb")
    toolbar_button(page).click()
    review = wait_review(page)
    started = time.monotonic()
    review.locator(".jp-nbharden-record").check()
    review = panel(page)
    review.locator(".jp-nbharden-summary", has_text="Recorded review").wait_for(timeout=TIMEOUT)
    recorded = review.locator('.jp-nbharden-file[data-path="tests/data/recording.json"]')
    assert recorded.count() == 1
    review.locator(".jp-nbharden-write").click()
    tests = review.locator(".jp-nbharden-tests")
    tests.wait_for(timeout=TIMEOUT)  # a recorded write runs its tests, as the command line's convert does
    outcomes = [e.get_attribute("data-outcome") for e in tests.locator(".jp-nbharden-test").element_handles()]
    assert tests.get_attribute("data-returncode") == "0"
    assert outcomes.count("passed") >= 3 and set(outcomes) <= {"passed", "skipped"}
    assert tests.locator(".jp-nbharden-test-id", has_text="tests/test_steps.py::").count() >= 1
    shot(page, "lab-tests.png")
    assert time.monotonic() - started < 600
