"""Post the review as one comment on a GitHub pull request or a GitLab merge request, or update the one
posted before (found by the report's first line, ``markdown.MARKER``), so a pull request carries one
review comment however often CI runs. Standard library only (``urllib``)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nbharden.errors import NbhardenError, UsageError
from nbharden.prreview.markdown import MARKER

#: GitHub's REST API version the requests are written for.
GITHUB_API_VERSION = "2022-11-28"


class CommentError(NbhardenError):
    """The forge refused or could not be reached (exit 1: the review itself is done)."""

    exit_code = 1


@dataclass(frozen=True)
class Target:
    """Where the comment goes: the API's base URL, the comments collection of the pull or merge request,
    the URL of one comment given its id, and the headers that authenticate."""

    collection: str
    item: str  # with "{id}"
    headers: Mapping[str, str]
    update_method: str  # PATCH (GitHub) or PUT (GitLab)


def github_target(env: Mapping[str, str], event: Mapping[str, Any]) -> Target | None:
    """The pull request of a GitHub Actions run (``GITHUB_API_URL``, ``GITHUB_REPOSITORY``, the event's
    ``pull_request.number`` or ``NBHARDEN_PR_NUMBER``; token ``GITHUB_TOKEN``). None when the run is not
    for a pull request."""
    number = env.get("NBHARDEN_PR_NUMBER") or (event.get("pull_request") or {}).get("number")
    if not number:
        return None
    repo = _required(env, "GITHUB_REPOSITORY")
    api = env.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
    headers = {
        "Authorization": f"Bearer {_required(env, 'GITHUB_TOKEN')}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": GITHUB_API_VERSION,
    }
    return Target(
        f"{api}/repos/{repo}/issues/{int(number)}/comments",
        f"{api}/repos/{repo}/issues/comments/{{id}}",
        headers,
        "PATCH",
    )


def gitlab_target(env: Mapping[str, str]) -> Target | None:
    """The merge request of a GitLab CI pipeline (``CI_API_V4_URL``, ``CI_PROJECT_ID``,
    ``CI_MERGE_REQUEST_IID``; token ``NBHARDEN_GITLAB_TOKEN``, a project access token with the ``api``
    scope: a job token cannot write notes). None outside a merge request pipeline."""
    iid = env.get("CI_MERGE_REQUEST_IID")
    if not iid:
        return None
    api = _required(env, "CI_API_V4_URL").rstrip("/")
    project = urllib.parse.quote(_required(env, "CI_PROJECT_ID"), safe="")
    notes = f"{api}/projects/{project}/merge_requests/{int(iid)}/notes"
    headers = {"PRIVATE-TOKEN": _required(env, "NBHARDEN_GITLAB_TOKEN")}
    return Target(notes, notes + "/{id}", headers, "PUT")


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    if not value:
        raise UsageError(f"{name} is not set; it is needed to post the review comment")
    return value


def post_or_update(target: Target, body: str, *, timeout: float = 30.0) -> str:
    """Update the comment that starts with ``MARKER``, or post a new one; returns "updated" or "created".

    Raises ``CommentError`` when the forge refuses or cannot be reached.
    """
    if not body.startswith(MARKER):
        body = f"{MARKER}\n{body}"
    existing = _find(target, timeout)
    if existing is not None:
        _request(
            target.update_method, target.item.format(id=existing), target, {"body": body}, timeout
        )
        return "updated"
    _request("POST", target.collection, target, {"body": body}, timeout)
    return "created"


def _find(target: Target, timeout: float) -> int | None:
    """The id of the first comment whose body starts with ``MARKER`` (pages of 100, at most 50 pages)."""
    for page in range(1, 51):
        items = _request(
            "GET", f"{target.collection}?per_page=100&page={page}", target, None, timeout
        )
        if not isinstance(items, list):
            return None
        for item in items:
            if isinstance(item, dict) and str(item.get("body") or "").startswith(MARKER):
                return int(item["id"])
        if len(items) < 100:
            return None
    return None


def _request(method: str, url: str, target: Target, data: object, timeout: float) -> Any:
    payload = None if data is None else json.dumps(data).encode("utf-8")
    headers = {**target.headers, "User-Agent": "nbharden-review"}
    if payload is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=payload, method=method, headers=headers)
    try:
        with urllib.request.urlopen(
            request, timeout=timeout
        ) as response:  # noqa: S310 - the forge's API
            text = response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        raise CommentError(f"{method} {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise CommentError(f"{method} {url}: {exc}") from None
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        raise CommentError(f"{method} {url}: the answer is not JSON") from None
