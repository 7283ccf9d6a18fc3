"""The review panel on the demo notebook, in a real JupyterLab and Debian's chromium (issue 15's targets).

From the click on the notebook toolbar's Harden button to the panel showing a recorded review of
notebooks/churn_analysis.ipynb:

* when the progress box appears (target: within 0.5 s of the click);
* every cell start of every recorded run as the panel shows it (target: at least one update per cell), and the
  longest gap between two updates;
* when the recorded review is shown;

then a second recorded review, cancelled in the middle of its first run: from the click on Cancel to the panel
being usable again (target: under 2 s).

    .venv/bin/python bench/lab_panel.py [--json bench/results/lab_panel.json]

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


def measure(page: Any, url: str, token: str) -> dict[str, Any]:
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
    page.evaluate("() => { window.__nbhCancel = performance.now(); }")
    review.locator(".jp-nbharden-cancel").click()
    review.locator(".jp-nbharden-idle", has_text="Cancelled").wait_for(timeout=30_000)
    back = page.evaluate("() => performance.now() - window.__nbhCancel")
    first["cancel_to_usable_ms"] = round(back, 1)
    return first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "lab_panel.json")
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
                result = measure(page, url, token)
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO)
    result.update(
        commit=head.stdout.strip(),
        machine=platform.machine(),
        cpus=os.cpu_count(),
        load_average=[round(x, 2) for x in os.getloadavg()],
    )
    print(json.dumps(result, indent=2))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
