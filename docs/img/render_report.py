"""Render a nbharden review Markdown report to an HTML page styled like a GitHub comment (for the screenshot
in docs/review.md). Usage: python render_report.py review.md review.html"""

from __future__ import annotations

import sys
from pathlib import Path

import mistune

STYLE = """
body { font: 14px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2328;
       max-width: 940px; margin: 16px auto; padding: 16px 24px; border: 1px solid #d1d9e0; border-radius: 6px; }
h3 { font-size: 1.25em; border-bottom: 1px solid #d1d9e0; padding-bottom: .3em; }
h4 { font-size: 1em; margin: 1em 0 .4em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #d1d9e0; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
code { background: #eff1f3; padding: .1em .35em; border-radius: 4px; font-size: 85%; }
pre { background: #f6f8fa; padding: 10px; border-radius: 6px; overflow: hidden; font-size: 12px; }
pre code { background: none; padding: 0; }
details { margin: .5em 0; }
summary { cursor: pointer; }
"""


def main(source: str, target: str) -> None:
    text = Path(source).read_text(encoding="utf-8")
    # the screenshot shows the notebook's section open and the code diffs folded, as a reviewer first sees it
    text = text.replace("<details>\n<summary><b>", "<details open>\n<summary><b>", 1)
    html = mistune.create_markdown(escape=False, plugins=["table"])(text)
    page = f"<!doctype html><meta charset='utf-8'><style>{STYLE}</style><body>{html}</body>"
    Path(target).write_text(page, encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
