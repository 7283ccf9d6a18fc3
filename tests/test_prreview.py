"""``nbharden review``: real git repositories in a temporary folder (a notebook and its committed recorded
package; a second commit or the working tree changes a cell, the data file, a seed, or only text), real
``nbharden review`` runs, and the renderers on reports built by hand."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import nbformat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from nbharden.behaviour import BehaviourDiff, StepChange, ValueChange
from nbharden.models import Finding, Severity, Span
from nbharden.prreview.collect import cell_lines, code_diff
from nbharden.prreview.formats import render_github, render_junit, render_sarif
from nbharden.prreview.markdown import MARKER, render_markdown
from nbharden.prreview.report import CodeDiff, FileDiff, NotebookReview, ReviewReport, TestReport

PATHS = [
    ".nbharden.json",
    "src/p/steps.py",
    "src/p/config.py",
    "tests/test_steps.py",
    "tests/data/recording.json",
    "tests/data/values/a.json",
    "tests/data/values/b.json",
]
SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-2.1.0.json").read_text())

CELLS = [
    ("scale = 2\nseed = 1", ["parameters"]),
    "import random\nvalues = [float(x) for x in open('data.txt').read().split()]",
    "md:## Score",
    "total = sum(v * scale for v in values)\nscore = total / len(values)\n"
    "random.seed(seed)\nnoise = round(random.random(), 6)\nprint(score, noise)",
]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout


def _write_notebook(path: Path, cells: list[Any]) -> None:
    nb = new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for i, spec in enumerate(cells):
        source, tags = (spec, []) if isinstance(spec, str) else spec
        cell = new_markdown_cell(source[3:]) if source.startswith("md:") else new_code_cell(source)
        cell.id = f"cell-{i}"
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nbformat.write(nb, path)


def _nbharden(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nbharden", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )


def _repo(tmp_path: Path, cells: list[Any] = CELLS) -> Path:
    """A repository on ``main`` with the notebook, its data and its recorded package committed; then on a
    branch ``feature``."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.email", "test@example.com")
    _git(repo, "config", "user.name", "test")
    _write_notebook(repo / "nb.ipynb", cells)
    (repo / "data.txt").write_text("1 2 3 4\n")
    done = _nbharden(repo, "convert", "nb.ipynb")
    assert done.returncode == 0, done.stderr
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "notebook and its package")
    _git(repo, "checkout", "-q", "-b", "feature")
    return repo


def _state(repo: Path) -> tuple[dict[str, bytes], str, str]:
    """Every file of the checkout (not .git), git's view of it, and its worktrees."""
    files = {
        p.relative_to(repo).as_posix(): p.read_bytes()
        for p in repo.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(repo).parts
    }
    return files, _git(repo, "status", "--porcelain"), _git(repo, "worktree", "list")


def _edit(path: Path, index: int, source: str) -> None:
    nb = nbformat.read(path, as_version=4)
    nb.cells[index].source = source
    nbformat.write(nb, path)


def _review(
    repo: Path, tmp_path: Path, *args: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """Run ``nbharden review`` with every output; check the checkout did not change; the outputs by format."""
    outputs = {fmt: tmp_path / f"review.{fmt}" for fmt in ("markdown", "json", "sarif", "junit")}
    before = _state(repo)
    done = _nbharden(
        repo, "review", *args, *(a for fmt, p in outputs.items() for a in (f"--{fmt}-file", str(p)))
    )
    assert _state(repo) == before  # files, notebook, git status and worktrees: all as they were
    assert done.stdout == outputs["markdown"].read_text()
    texts = {fmt: p.read_text() for fmt, p in outputs.items()}
    jsonschema.Draft202012Validator(SCHEMA).validate(json.loads(texts["sarif"]))
    ET.fromstring(texts["junit"])
    return done, texts


def _headline(markdown: str) -> str:
    first, second = markdown.splitlines()[:2]
    assert first == MARKER
    return second.removeprefix("### nbharden review: ")


@pytest.mark.slow
def test_a_committed_cell_change(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    _edit(repo / "nb.ipynb", 3, CELLS[3].replace("len(values)", "(len(values) + 1)"))  # type: ignore[union-attr]
    refused = _nbharden(repo, "convert", "nb.ipynb")
    assert refused.returncode == 1  # the approved-baseline gate
    assert _nbharden(repo, "convert", "nb.ipynb", "--accept-changes").returncode == 0
    _git(repo, "commit", "-q", "-am", "score over n + 1")

    done, texts = _review(repo, tmp_path, "--base", "main", "--fail-on-change")
    assert done.returncode == 1, done.stderr  # behaviour changed and --fail-on-change
    assert _headline(texts["markdown"]) == "1 result changed: score 5 -> 4 (-20.0%)"
    report = json.loads(texts["json"])
    (nb,) = report["notebooks"]
    assert nb["in_sync"] is True and nb["tests"]["ok"] is True
    assert [v["name"] for v in nb["behaviour"]["results"]] == ["score"]
    assert nb["code"]["data"] == {"added": 1, "removed": 1, "index": 1}
    assert [f["path"] for f in nb["code"]["files"]] == ["src/nb/steps.py"]
    assert "| `nb.ipynb` | 1 result changed | in sync |" in texts["markdown"]
    junit = ET.fromstring(texts["junit"])
    assert {s.get("name") for s in junit.iter("testsuite")} == {
        "nbharden review",
        "nb.ipynb: generated tests",
    }
    assert not list(junit.iter("failure"))


@pytest.mark.slow
def test_uncommitted_data_and_seed_changes_out_of_sync(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    (repo / "data.txt").write_text("1 2 3 10\n")
    _edit(repo / "nb.ipynb", 0, "scale = 2\nseed = 2")

    done, texts = _review(repo, tmp_path, "--base", "main")
    assert done.returncode == 1, done.stderr  # the committed package is out of sync
    random.seed(1)
    old = round(random.random(), 6)
    random.seed(2)
    new = round(random.random(), 6)
    rel = (new - old) / old * 100
    assert _headline(texts["markdown"]) == (
        f"2 results changed: noise {old:.3f} -> {new:.3f} ({rel:+.1f}%), score 5 -> 8 (+60.0%); "
        "1 other value changed (values)"
    )
    assert "**out of sync**" in texts["markdown"]
    assert (
        "Run `nbharden convert nb.ipynb --accept-changes` and commit `nb_prod`."
        in texts["markdown"]
    )
    assert "| `load_data` | values: added 10.0, removed 4.0 |" in texts["markdown"]
    sarif = json.loads(texts["sarif"])
    assert {r["baselineState"] for r in sarif["runs"][0]["results"]} == {"unchanged"}
    failures = [f.get("message") or "" for f in ET.fromstring(texts["junit"]).iter("failure")]
    assert len(failures) == 1 and failures[0].startswith("out of sync with the notebook")


@pytest.mark.slow
def test_a_text_only_edit_is_no_behaviour_change(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    _edit(repo / "nb.ipynb", 2, "## Score of the values")
    _edit(repo / "nb.ipynb", 1, CELLS[1] + "  # one number per word")  # type: ignore[operator]
    converted = _nbharden(repo, "convert", "nb.ipynb")  # no --accept-changes needed
    assert converted.returncode == 0, converted.stderr
    _git(repo, "commit", "-q", "-am", "wording")

    # default base: the merge base with main; in the sandbox, whose run folder is where pytest's JUnit goes
    done, texts = _review(repo, tmp_path, "--fail-on-change", "--sandbox")
    assert done.returncode == 0, done.stderr + texts["markdown"]
    suites = {s.get("name"): s for s in ET.fromstring(texts["junit"]).iter("testsuite")}
    assert int(suites["nb.ipynb: generated tests"].get("tests") or 0) > 0
    assert _headline(texts["markdown"]) == "no behaviour change"
    report = json.loads(texts["json"])
    assert report["base"] == "merge-base of HEAD and main"
    assert report["notebooks"][0]["in_sync"] is True


# --- renderers, on reports built by hand -------------------------------------------------------------------


def _report(**changes: Any) -> ReviewReport:
    accuracy = ValueChange(
        "accuracy", "changed", "float", 0.7777, 0.8121, (0.8121 - 0.7777) / 0.7777
    )
    df = ValueChange("df", "changed", "pandas.DataFrame", details=("shape 800x3 -> 795x3",))
    behaviour = BehaviourDiff(
        (accuracy,),
        (df,),
        (
            StepChange("load", "unchanged", (2,)),
            StepChange("clean", "changed", (3,), (df,)),
            StepChange("evaluate", "changed", (5,), (accuracy,), (df,)),
        ),
    )
    new = Finding(
        "NBH205", 'hard-coded path "x|y.csv"\nsecond line', Span(4, 2, 5), Severity.WARNING
    )
    old = Finding("NBH604", "1 print() call(s) became logging calls", None, Severity.INFO)
    nb = NotebookReview(
        "notebooks/churn.ipynb",
        "notebooks/churn_prod",
        recorded=True,
        behaviour=behaviour,
        code=CodeDiff(),
        findings=(new, old),
        new_findings=(new,),
        in_sync=True,
        tests=TestReport(True, {"passed": 3}, "3 passed in 1.00s", ""),
        cell_lines=(10, 20, 30, 40),
    )
    nb = NotebookReview(**{**nb.__dict__, **changes})
    return ReviewReport("origin/main", "a" * 40, "b" * 40, (nb,))


def test_markdown_headline_table_and_sections() -> None:
    text = render_markdown(_report())
    assert (
        _headline(text)
        == "1 result changed: accuracy 0.778 -> 0.812 (+4.4%); 1 other value changed (df)"
    )
    assert (
        "| `notebooks/churn.ipynb` | 1 result changed, 1 value changed | in sync | 3 passed | 1 new, 0 resolved |"
        in text
    )
    assert "| `evaluate` | accuracy 0.778 -> 0.812 (+4.4%); inputs changed: df |" in text
    assert "Unchanged: `load`." in text
    assert '- `NBH205` cell 4:2:5: hard-coded path "x|y.csv" second line' in text
    assert text.count("<details>") == text.count("</details>") == 1


def test_markdown_stays_under_the_comment_limit() -> None:
    huge = "".join(f"+line {i}\n" for i in range(50_000))
    code = CodeDiff(tuple(FileDiff(f"f{i}.py", "changed", huge) for i in range(3)))
    text = render_markdown(_report(code=code))
    assert len(text) < 65_536
    assert "more lines" in text


def test_sarif_validates_and_marks_new_findings() -> None:
    log = json.loads(render_sarif(_report()))
    jsonschema.Draft202012Validator(SCHEMA).validate(log)
    results = log["runs"][0]["results"]
    assert [(r["ruleId"], r["baselineState"]) for r in results] == [
        ("NBH205", "new"),
        ("NBH604", "unchanged"),
    ]
    assert results[0]["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 41
    }  # cell 4, line 2
    assert log["runs"][0]["tool"]["driver"]["rules"][results[0]["ruleIndex"]]["id"] == "NBH205"


def test_junit_and_annotations() -> None:
    report = _report(in_sync=False, out_of_sync=("src/x/steps.py",))
    junit = ET.fromstring(render_junit(report))
    assert [f.get("message") for f in junit.iter("failure")] == [
        "out of sync with the notebook: src/x/steps.py"
    ]
    lines = render_github(report).splitlines()
    assert lines[0].startswith("::error file=notebooks/churn.ipynb,title=nbharden%3A out of sync::")
    assert lines[1].startswith(
        "::warning file=notebooks/churn.ipynb,title=nbharden%3A behaviour::1 result changed"
    )
    assert lines[2] == (
        "::warning file=notebooks/churn.ipynb,line=41,title=NBH205::"
        'hard-coded path "x|y.csv"%0Asecond line (cell 4:2:5)'
    )
    assert report.exit_code == 1
    assert _report().exit_code == 0
    assert ReviewReport("b", "a", "c", _report().notebooks, fail_on_change=True).exit_code == 1


def test_code_diff_filters_the_noise() -> None:
    base = {
        ".nbharden.json": "{1}",
        "src/p/steps.py": "a = 1\n",
        "tests/data/recording.json": "{}",
        "tests/data/values/aa.json": "1",
        "tests/data/values/bb.json": "2",
    }
    head = {
        ".nbharden.json": "{2}",
        "src/p/steps.py": "a = 2\n",
        "tests/data/recording.json": "{ }",
        "tests/data/values/aa.json": "1",
        "tests/data/values/cc.json": "3",
        "src/p/new.py": "x\n",
    }
    diff = code_diff(base, head, "pkg")
    assert [(f.path, f.status) for f in diff.files] == [
        ("src/p/new.py", "added"),
        ("src/p/steps.py", "changed"),
    ]
    assert "--- a/pkg/src/p/steps.py" in diff.files[1].diff and "+a = 2" in diff.files[1].diff
    assert diff.data == {"added": 1, "removed": 1, "index": 1} and diff.manifest_changed
    assert code_diff(base, base).empty


def test_cell_lines_point_into_the_notebook_file(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    _write_notebook(path, ["x = 1\ny = 2", "md:# Title", "z = 3"])
    text = path.read_text()
    lines = text.splitlines()
    starts = cell_lines(text)
    assert len(starts) == 3
    assert lines[starts[0] - 1].strip() == '"x = 1\\n",'
    assert lines[starts[0]].strip() == '"y = 2"'
    assert lines[starts[2] - 1].strip() == '"z = 3"'


# --- the CI recipes: the Action's steps run locally, the forge's API a local stub ---------------------------


class _Forge:
    """A stub of the forge's comment API on 127.0.0.1: lists ``comments``, records every request."""

    def __init__(self, comments: list[dict[str, Any]] | None = None) -> None:
        import http.server
        import threading

        self.comments = comments or []
        self.requests: list[tuple[str, str, Any]] = []
        forge = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, body: Any, status: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _record(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                forge.requests.append((self.command, self.path, body))
                assert self.headers.get("Authorization") or self.headers.get("PRIVATE-TOKEN")
                return body

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._record()
                self._answer(forge.comments)

            def do_POST(self) -> None:  # noqa: N802
                self._answer({"id": 1, **self._record()}, 201)

            do_PATCH = do_PUT = do_POST  # noqa: N815

            def log_message(self, *args: Any) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _expression(
    expr: str, inputs: dict[str, str], outputs: dict[str, str], env: dict[str, str]
) -> Any:
    """The value of one ``${{ }}`` expression of action.yml; the few forms it uses, nothing else."""
    import re

    expr = expr.strip()
    values = {
        "github.action_path": str(Path(__file__).resolve().parents[1]),
        "github.token": "test-token",
        "github.event_name": env["GITHUB_EVENT_NAME"],
        **{f"inputs.{k}": v for k, v in inputs.items()},
        **{f"steps.review.outputs.{k}": v for k, v in outputs.items()},
    }
    if expr in values:
        return values[expr]
    terms = re.fullmatch(r"(\S+) == '(\w+)'(?: && (\S+) == '(\w+)')?", expr)
    assert terms, f"action.yml uses an expression the test does not know: {expr}"
    a, x, b, y = terms.groups()
    return values[a] == x and (b is None or values[b] == y)


def _run_action(
    repo: Path, tmp_path: Path, inputs: dict[str, str], env: dict[str, str]
) -> list[Any]:
    """Run every step of action.yml like the runner does (bash, the step's env, GITHUB_OUTPUT)."""
    import re

    import yaml

    action = yaml.safe_load((Path(__file__).resolve().parents[1] / "action.yml").read_text())
    given = {k: str(v.get("default", "")) for k, v in action["inputs"].items()} | inputs
    outputs: dict[str, str] = {}
    runs = []
    for step in action["runs"]["steps"]:
        subst = lambda text: re.sub(  # noqa: E731
            r"\$\{\{(.*?)\}\}",
            lambda m: str(_expression(m.group(1), given, outputs, env)),
            str(text),
        )
        condition = step.get("if")
        if condition and not _expression(condition.strip()[3:-2], given, outputs, env):
            runs.append((step["name"], None))
            continue
        step_env = {**env, **{k: subst(v) for k, v in (step.get("env") or {}).items()}}
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", subst(step["run"])],
            cwd=repo,
            env=step_env,
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
        runs.append((step["name"], done))
        for line in Path(env["GITHUB_OUTPUT"]).read_text().splitlines():
            key, _, value = line.partition("=")
            outputs[key] = value
    return runs


def _actions_env(tmp_path: Path, forge: _Forge, event: dict[str, Any]) -> dict[str, str]:
    (tmp_path / "event.json").write_text(json.dumps(event))
    for name in ("output", "summary"):
        (tmp_path / name).write_text("")
    (tmp_path / "runner").mkdir()
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "NO_COLOR": "1",
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(tmp_path / "event.json"),
        "GITHUB_REPOSITORY": "octo/churn",
        "GITHUB_API_URL": forge.url,
        "GITHUB_BASE_REF": "main",
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
        "RUNNER_TEMP": str(tmp_path / "runner"),
    }


@pytest.mark.slow
def test_the_github_action_comments_on_the_pull_request(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    _edit(repo / "nb.ipynb", 3, CELLS[3].replace("len(values)", "(len(values) + 1)"))  # type: ignore[union-attr]
    assert _nbharden(repo, "convert", "nb.ipynb", "--accept-changes").returncode == 0
    _git(repo, "commit", "-q", "-am", "score over n + 1")
    _git(
        repo, "remote", "add", "origin", str(repo)
    )  # the action fetches the base branch from origin
    forge = _Forge()
    try:
        env = _actions_env(tmp_path, forge, {"pull_request": {"number": 7}})
        inputs = {"install": "false", "python": sys.executable}
        runs = _run_action(repo, tmp_path, inputs, env)
    finally:
        forge.close()
    names = [name for name, _ in runs]
    assert names == ["Install nbharden", "Review", "Comment on the pull request", "Result"]
    assert runs[0][1] is None  # install: false
    for name, done in runs[1:]:
        assert done is not None and done.returncode == 0, (name, done and done.stderr)
    review = runs[1][1]
    assert (
        "::warning file=nb.ipynb,title=nbharden%3A behaviour::1 result changed: score 5 -> 4"
        in review.stdout
    )
    report = (tmp_path / "runner" / "nbharden-review" / "review.md").read_text()
    assert (tmp_path / "summary").read_text() == report
    methods = [(m, p) for m, p, _ in forge.requests]
    assert methods == [
        ("GET", "/repos/octo/churn/issues/7/comments?per_page=100&page=1"),
        ("POST", "/repos/octo/churn/issues/7/comments"),
    ]
    body = forge.requests[1][2]["body"]
    assert body == report
    assert body.splitlines()[:2] == [
        MARKER,
        "### nbharden review: 1 result changed: score 5 -> 4 (-20.0%)",
    ]
    assert "Base `origin/main`" in body


@pytest.mark.parametrize("forge_name", ["github", "gitlab"])
def test_comment_updates_the_earlier_review(tmp_path: Path, forge_name: str) -> None:
    forge = _Forge([{"id": 3, "body": "looks good"}, {"id": 42, "body": f"{MARKER}\nold report"}])
    (tmp_path / "review.md").write_text(f"{MARKER}\n### nbharden review: no behaviour change\n")
    env = {
        **os.environ,
        "GITHUB_EVENT_PATH": "",
        "NBHARDEN_PR_NUMBER": "7",
        "GITHUB_REPOSITORY": "octo/churn",
        "GITHUB_API_URL": forge.url,
        "GITHUB_TOKEN": "t",
        "CI_API_V4_URL": forge.url + "/api/v4",
        "CI_PROJECT_ID": "group/churn",
        "CI_MERGE_REQUEST_IID": "5",
        "NBHARDEN_GITLAB_TOKEN": "t",
    }
    try:
        done = subprocess.run(
            [sys.executable, "-m", "nbharden", "comment", forge_name, "--body-file", "review.md"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        forge.close()
    assert done.returncode == 0, done.stderr
    assert "review comment updated" in done.stderr
    method, path, body = forge.requests[-1]
    if forge_name == "github":
        assert (method, path) == ("PATCH", "/repos/octo/churn/issues/comments/42")
    else:
        assert (method, path) == ("PUT", "/api/v4/projects/group%2Fchurn/merge_requests/5/notes/42")
    assert body == {"body": (tmp_path / "review.md").read_text()}


def test_comment_outside_a_pull_request_posts_nothing(tmp_path: Path) -> None:
    (tmp_path / "review.md").write_text("x")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "NBHARDEN_"))}
    done = subprocess.run(
        [sys.executable, "-m", "nbharden", "comment", "github", "--body-file", "review.md"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and "nothing posted" in done.stderr


# --- what review refuses, and what it reports without running anything -------------------------------------


def _bare_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "bare"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.email", "test@example.com")
    _git(repo, "config", "user.name", "test")
    return repo


@pytest.mark.slow
def test_review_outside_git_and_with_an_unknown_base(tmp_path: Path) -> None:
    outside = tmp_path / "plain"
    outside.mkdir()
    done = _nbharden(outside, "review")
    assert done.returncode == 2 and "not inside a git repository" in done.stderr
    repo = _bare_repo(tmp_path)
    (repo / "README").write_text("x\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "one")
    done = _nbharden(repo, "review", "--base", "no-such-branch")
    assert done.returncode == 2 and "--base no-such-branch: no such revision" in done.stderr
    done = _nbharden(repo, "review", "--base", "main")
    assert done.returncode == 0, done.stderr
    assert _headline(done.stdout) == "no notebook with a generated package under the given paths"


def test_a_package_whose_notebook_was_deleted(tmp_path: Path) -> None:
    from nbharden.manifest import build_manifest

    repo = _bare_repo(tmp_path)
    _write_notebook(repo / "nb.ipynb", ["x = 1"])
    (repo / "nb_prod").mkdir()
    manifest = build_manifest(
        {}, notebook_sha256="0" * 64, notebook_name="nb.ipynb", tool_version="0.1.0"
    )
    (repo / "nb_prod" / ".nbharden.json").write_text(manifest)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "one")
    (repo / "nb.ipynb").unlink()
    done = _nbharden(repo, "review", "--base", "main", "--format", "json")
    assert done.returncode == 1, done.stderr
    (nb,) = json.loads(done.stdout)["notebooks"]
    assert nb["error"] == "nb.ipynb was deleted but its package nb_prod was not"


def test_findings_are_matched_by_rule_and_message_not_by_cell() -> None:
    from nbharden.prreview.collect import _minus

    def f(code: str, cell: int, message: str = "m") -> Finding:
        return Finding(code, message, Span(cell))

    base = (f("NBH201", 3), f("NBH201", 5), f("NBH603", 7))
    head = (f("NBH201", 4), f("NBH603", 8), f("NBH401", 9))  # a cell was inserted above
    assert [x.code for x in _minus(head, base)] == ["NBH401"]
    assert [(x.code, x.span and x.span.cell) for x in _minus(base, head)] == [("NBH201", 5)]


@given(
    st.dictionaries(st.sampled_from(PATHS), st.text(max_size=5), max_size=len(PATHS)),
    st.dictionaries(st.sampled_from(PATHS), st.text(max_size=5), max_size=len(PATHS)),
)
@settings(max_examples=200, deadline=None)
def test_code_diff_accounts_for_every_differing_file(
    base: dict[str, str], head: dict[str, str]
) -> None:
    diff = code_diff(base, head)
    differing = {p for p in set(base) | set(head) if base.get(p) != head.get(p)}
    shown = {f.path for f in diff.files}
    data = {p for p in differing if p.startswith("tests/data/")}
    assert shown == differing - data - {".nbharden.json"}
    assert sum(diff.data.values()) == len(data)
    assert diff.manifest_changed == (".nbharden.json" in differing)
    assert diff.empty == (not differing)


@pytest.mark.slow
def test_a_package_recorded_with_parameters_regenerates_with_them(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    done = _nbharden(repo, "convert", "nb.ipynb", "-p", "scale", "3", "--accept-changes")
    assert done.returncode == 0, done.stderr
    _git(repo, "commit", "-q", "-am", "recorded with scale 3")
    done, texts = _review(repo, tmp_path, "--base", "main", "--no-tests")
    assert done.returncode == 0, (
        done.stderr + texts["markdown"]
    )  # in sync: -p scale 3 is used again
    assert _headline(texts["markdown"]) == "1 result changed: score 5 -> 7.50 (+50.0%)"


@pytest.mark.slow
def test_the_gitlab_template_notes_the_merge_request(tmp_path: Path) -> None:
    import yaml

    repo = _repo(tmp_path)
    _edit(repo / "nb.ipynb", 3, CELLS[3].replace("len(values)", "(len(values) + 1)"))  # type: ignore[union-attr]
    assert _nbharden(repo, "convert", "nb.ipynb", "--accept-changes").returncode == 0
    _git(repo, "commit", "-q", "-am", "score over n + 1")
    _git(repo, "remote", "add", "origin", str(repo))
    template = yaml.safe_load(
        (Path(__file__).resolve().parents[1] / "ci/gitlab/nbharden-review.yml").read_text()
    )
    job = template[".nbharden-review"]
    forge = _Forge()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",  # the venv's python
        **job["variables"],
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
        "CI_MERGE_REQUEST_IID": "5",
        "CI_PROJECT_ID": "42",
        "CI_API_V4_URL": forge.url + "/api/v4",
        "NBHARDEN_GITLAB_TOKEN": "t",
    }
    try:
        done = subprocess.run(
            ["bash", "-eo", "pipefail", "-c", "\n".join(job["script"])],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
    finally:
        forge.close()
    assert done.returncode == 0, done.stderr
    report = (repo / "nbharden-review.md").read_text()
    assert _headline(report) == "1 result changed: score 5 -> 4 (-20.0%)"
    ET.fromstring((repo / "nbharden-junit.xml").read_text())
    assert [(m, p) for m, p, _ in forge.requests] == [
        ("GET", "/api/v4/projects/42/merge_requests/5/notes?per_page=100&page=1"),
        ("POST", "/api/v4/projects/42/merge_requests/5/notes"),
    ]
    assert forge.requests[1][2] == {"body": report}
    assert set(job["artifacts"]["paths"]) <= {p.name for p in repo.iterdir()}
