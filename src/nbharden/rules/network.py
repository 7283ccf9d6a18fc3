"""Network: calls that can hang or fail on a transient error (NBH3xx)."""

from __future__ import annotations

from nbharden.models import Fix, Severity
from nbharden.rules.base import Rule


class NBH301(Rule):
    """## What it does

    A network call has no timeout and can hang forever.

    ## Why it matters

    `requests`, `urllib` and most HTTP clients wait forever by default. In a notebook you notice a
    hung cell and interrupt it; a scheduled job just hangs, holding its resources, until someone
    kills it. Every network call in production code needs a timeout.

    ## Example

    ```python
    r = requests.get(PRICES_URL)          # NBH301 (and NBH302)
    ```

    What nbharden generates:

    ```python
    # http_timeout() is Config.http_timeout (30 s by default), set once by pipeline.run
    r = call_with_retry(requests.get, PRICES_URL, timeout=http_timeout())
    ```

    ## Fix safety

    Safe: applied by default. A call that completes gives the same result. One that used to wait
    forever for a server that never answers now fails with a timeout error instead, which is the
    point; set Config.http_timeout to suit your slowest legitimate call. A timeout the notebook
    gives is kept; a call with `**kwargs` gets none (the mapping may hold one) and stays reported.
    pandas readers on a URL (`pd.read_csv(url)`), which have no timeout option, get it as the socket
    default while they run (`read_url`); boto3 clients as botocore's connect and read timeouts
    (`config=aws_config()`). See docs/scaffolding/retries.md.
    """

    code = "NBH301"
    name = "network-no-timeout"
    severity = Severity.WARNING
    fix = Fix.SAFE
    detector = "nbharden.analyse._CellVisitor._network_call"
    applied_severity = Severity.INFO


class NBH302(Rule):
    """## What it does

    A network call is not retried on transient failures.

    ## Why it matters

    Networks fail briefly all the time: a dropped connection, a 503 during a deploy, a rate limit.
    In a notebook you re-run the cell; an unattended pipeline fails the whole run. Retrying with
    backoff on transient errors makes the pipeline survive them.

    ## Example

    ```python
    r = requests.get(PRICES_URL, timeout=10)          # NBH302
    ```

    What nbharden generates:

    ```python
    # support.call_with_retry: tenacity, Config.retry_attempts attempts (3), waiting
    # Config.retry_backoff (0.5 s), then twice that, ...; each retry is logged
    r = call_with_retry(requests.get, PRICES_URL, timeout=10)
    ```

    ## Fix safety

    Safe: applied by default. Only the call itself is retried, never the whole step, and only on
    connection errors, timeouts, HTTP 429 and 5xx: a 404 or any other error is returned or raised at
    once, as in the notebook, and after the last attempt the code gets the error (or the 429/5xx
    response) the notebook would have got. A retried GET gets the same answer from a server that
    behaves, and a run that fails anyway only fails later. Review calls that are not idempotent (a
    POST that creates something): a retry may send them twice; Config.retry_attempts = 1 turns
    retries off. boto3 clients retry with botocore's own standard mode, with the same number of
    attempts.
    """

    code = "NBH302"
    name = "network-no-retry"
    severity = Severity.INFO
    fix = Fix.SAFE
    detector = "nbharden.analyse._CellVisitor._network_call"
