"""The review panel on the demo notebook, in a real JupyterLab and Debian's chromium (issue 15's targets).

From the click on the notebook toolbar's Harden button to the panel showing a recorded review of
notebooks/churn_analysis.ipynb:

* when the progress box appears (target: within 0.5 s of the click);
* every cell start of every recorded run as the panel shows it (target: at least one update per cell), and the
  longest gap between two updates;
* when the recorded review is shown;

then a second recorded review, cancelled in the middle of its first run: from the click on Cancel to the panel
being usable again (target: under 2 s).

    .venv/bin/python bench/lab_panel.py [--json bench/results/lab_panel.json] [--screenshots docs/img]

The output folder is first written statically and marked as holding a recorded suite, so that the click starts a
recording at once ("Run notebook and record" defaults to on for such a folder), as it does for a user who converted
with the command line before.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("NBHARDEN_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage"]

OBSERVE = """() => {
  window.__nbh = [];
  window.__nbhStart = performance.now();
  let box = null;
  new MutationObserver(records => {
    const now = document.querySelector('.jp-nbharden-Review .jp-nbharden-progress');
    if (now && !box) { box = now; window.__nbh.push([performance.now() - window.__nbhStart, 'progress', 0, 0]); }
    for (const r of records) {
      if (r.type === 'attributes' && r.attributeName === 'data-position') {
        window.__nbh.push([performance.now() - window.__nbhStart, 'cell',
          Number(r.target.getAttribute('data-run')), Number(r.target.getAttribute('data-position'))]);
      }
    }
    if (!now && box) { box = null; window.__nbh.push([performance.now() - window.__nbhStart, 'gone', 0, 0]); }
  }).observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ['data-position']});
}"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_lab(root: Path, home: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    token, port = os.urandom(16).hex(), _port()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
    }
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                return proc, url, token
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("jupyter lab did not start")


def prepare(root: Path) -> None:
    """The demo notebook and its data; its output folder written statically and marked as recorded."""
    sys.path.insert(0, str(REPO / "tests" / "lab" / "browser"))
    from helpers import manifest_as_if_recorded

    from nbharden import api
    from nbharden.settings import Settings

    shutil.copytree(REPO / "notebooks", root / "demo")
    notebook = root / "demo" / "churn_analysis.ipynb"
    out = root / "demo" / "churn_analysis_prod"
    api.write(api.convert(notebook, Settings(out=out, record=False)))
    manifest_as_if_recorded(out)


def measure(page: Any, url: str, token: str, shots: Path | None = None) -> dict[str, Any]:
    page.goto(f"{url}/lab/tree/demo/churn_analysis.ipynb?token={token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
    page.locator(".jp-StatusBar-TextItem", has_text="Idle").first.wait_for(timeout=120_000)
    button = page.locator('.jp-NotebookPanel-toolbar [data-command="nbharden:harden"]').first
    button.wait_for()
    page.evaluate(OBSERVE)
    button.click()
    review = page.locator(".jp-nbharden-Review").first
    review.locator(".jp-nbharden-summary", has_text="Recorded review").wait_for(timeout=900_000)
    shown = page.evaluate("() => performance.now() - window.__nbhStart")
    events = page.evaluate("() => window.__nbh")
    cells = [(e[2], e[3]) for e in events if e[1] == "cell"]
    times = [e[0] for e in events if e[1] in ("progress", "cell")]
    runs = sorted({r for r, _ in cells})
    per_run = {r: [p for rr, p in cells if rr == r] for r in runs}
    total = max((p for _, p in cells), default=0)
    first = {
        "progress_visible_ms": round(next(e[0] for e in events if e[1] == "progress"), 1),
        "recorded_review_shown_s": round(shown / 1000, 2),
        "runs": runs,
        "cells_per_run": total,
        "every_cell_shown": all(per_run[r] == list(range(1, total + 1)) for r in runs),
        "updates": len(cells),
        "longest_gap_between_updates_ms": round(
            max((b - a for a, b in zip(times, times[1:], strict=False)), default=0), 1
        ),
    }

    # a second review, cancelled in the middle of its first run
    page.evaluate(OBSERVE)
    review.locator(".jp-nbharden-refresh").first.click()
    page.wait_for_function(
        "() => window.__nbh.some(e => e[1] === 'cell' && e[2] === 1 && e[3] >= 6)", timeout=300_000
    )
    if shots is not None:
        page.screenshot(path=str(shots / "lab-progress.png"))
    page.evaluate("() => { window.__nbhCancel = performance.now(); }")
    review.locator(".jp-nbharden-cancel").click()
    review.locator(".jp-nbharden-idle", has_text="Cancelled").wait_for(timeout=30_000)
    back = page.evaluate("() => performance.now() - window.__nbhCancel")
    first["cancel_to_usable_ms"] = round(back, 1)
    return first


def screenshots(page: Any, shots: Path) -> None:
    """The docs' pictures (docs/lab.md), after ``measure``: a recorded review with the recorded types' diff, the
    written package with its tests, the question before a static review removes the recorded suite, the notebook
    with its findings in the gutter."""
    review = page.locator(".jp-nbharden-Review").first
    review.locator(".jp-nbharden-refresh").first.click()
    review.locator(".jp-nbharden-summary", has_text="Recorded review").wait_for(timeout=900_000)
    steps = review.locator('.jp-nbharden-file[data-path="src/churn_analysis/steps.py"]')
    steps.locator("summary").click()
    steps.locator(".cm-changedLine").first.wait_for(timeout=30_000)
    steps.locator(".cm-changedLine").first.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "lab-review.png"))
    review.locator(".jp-nbharden-write").click()
    # the folder's fake recording (see prepare) differs from the real one: the panel asks to accept that
    page.locator(".jp-Dialog button", has_text="Accept the new behaviour").click(timeout=300_000)
    review.locator(".jp-nbharden-tests").wait_for(timeout=900_000)
    review.evaluate("node => node.scrollTo(0, 0)")
    page.screenshot(path=str(shots / "lab-written.png"))
    # what a static review of that folder asks before writing
    review.locator(".jp-nbharden-record").uncheck()
    review.locator(".jp-nbharden-summary", has_text="not run").wait_for(timeout=300_000)
    review.locator(".jp-nbharden-write").click()
    page.locator(".jp-Dialog").wait_for()
    page.screenshot(path=str(shots / "lab-recorded-suite.png"))
    page.locator(".jp-Dialog button", has_text="Cancel").click()
    finding = review.locator(".jp-nbharden-finding:has(.jp-nbharden-where[data-cell])").first
    finding.locator(".jp-nbharden-explain").click()
    finding.locator(".jp-nbharden-explanation .cm-editor").first.wait_for(timeout=30_000)
    finding.locator(".jp-nbharden-finding-row").click()
    page.wait_for_timeout(1000)
    page.screenshot(path=str(shots / "lab-findings.png"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "lab_panel.json")
    parser.add_argument("--screenshots", type=Path, help="also take docs/lab.md's screenshots into this folder")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="nbharden-bench-lab-") as tmp:
        root, home = Path(tmp) / "root", Path(tmp) / "home"
        root.mkdir()
        prepare(root)
        proc, url, token = start_lab(root, home)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
                page = browser.new_page(viewport={"width": 1500, "height": 950})
                if args.screenshots:
                    args.screenshots.mkdir(parents=True, exist_ok=True)
                result = measure(page, url, token, args.screenshots)
                report(result, args.json)
                if args.screenshots:
                    screenshots(page, args.screenshots)
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def report(result: dict[str, Any], path: Path) -> None:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO)
    result.update(
        commit=head.stdout.strip(),
        machine=platform.machine(),
        cpus=os.cpu_count(),
        load_average=[round(x, 2) for x in os.getloadavg()],
    )
    print(json.dumps(result, indent=2), flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
