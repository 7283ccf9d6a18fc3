#!/usr/bin/env bash
# Makes the report shown in docs/review.md from the demo notebook: a repository in a temporary folder with
# notebooks/churn_analysis.ipynb and its recorded package on main, a branch that drops two feature columns
# (the kind of one-line edit whose text diff says little), then nbharden review against main.
#   bash docs/review-demo.sh [WORK_DIR]     (from the repository root, with the venv: make venv)
# Writes WORK_DIR/review.md (the report), review.html and docs/img/review-report.png (chromium's screenshot).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
py="$here/.venv/bin/python"
work="${1:-$(mktemp -d)}"
rm -rf "$work/repo" && mkdir -p "$work/repo/notebooks"
cp "$here/notebooks/churn_analysis.ipynb" "$work/repo/notebooks/"
cp -r "$here/notebooks/data" "$work/repo/notebooks/"
cd "$work/repo"
git init -q -b main && git config user.email demo@example.com && git config user.name demo
"$py" -m nbharden convert notebooks/churn_analysis.ipynb
git add -A && git commit -q -m "churn analysis and its package"

git checkout -q -b fewer-features
"$py" - <<'PY'
import nbformat
nb = nbformat.read("notebooks/churn_analysis.ipynb", as_version=4)
cell = next(c for c in nb.cells if c.source.startswith("feature_cols ="))
cell.source = cell.source.replace('("customer_id", "churned")', '("customer_id", "churned", "support_calls", "calls_per_year")')
nbformat.write(nb, "notebooks/churn_analysis.ipynb")
PY
"$py" -m nbharden convert notebooks/churn_analysis.ipynb || echo "convert exit $? (behaviour changed: expected)"
"$py" -m nbharden convert notebooks/churn_analysis.ipynb --accept-changes
git commit -q -am "Drop the support-call features"

set +e
"$py" -m nbharden review --base main --markdown-file "$work/review.md" --sarif-file "$work/review.sarif" \
    --junit-file "$work/junit.xml" --format github
echo "nbharden review exit code: $?"
set -e
"$py" "$here/docs/img/render_report.py" "$work/review.md" "$work/review.html"
/usr/bin/chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1000,900 \
    --screenshot="$here/docs/img/review-report.png" "file://$work/review.html"
echo "report: $work/review.md"
