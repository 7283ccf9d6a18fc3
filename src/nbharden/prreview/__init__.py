"""Review before merge (``nbharden review``): what a change did to the behaviour of a repository's notebooks.

``collect.review_changes`` builds a ``report.ReviewReport``; ``render`` turns it into Markdown (a pull-request
comment, ``$GITHUB_STEP_SUMMARY``), SARIF 2.1.0, JUnit XML, JSON and GitHub workflow annotations; ``comment``
posts or updates the one comment on a GitHub pull request or a GitLab merge request.
"""
