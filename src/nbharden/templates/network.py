"""Network helpers of a generated package: an explicit timeout, and retries of one call on transient errors.

nbharden copies the code below the imports into the ``support.py`` of a package whose notebook makes network calls
(``nbharden.transform.network.support_module``), and reads the defaults of ``_network`` for the Config fields. It
is a real module so that it is linted and type-checked where it is written.
"""

import contextlib
import http.client
import logging
import re
import socket
import ssl
import sys
import urllib.error
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
)

logger = logging.getLogger(__name__)


# --- network calls: an explicit timeout, and retries of the one call on transient errors ---

P = ParamSpec("P")
T = TypeVar("T")
_network: dict[str, float] = {
    "attempts": 3,
    "backoff": 0.5,
    "timeout": 30.0,
}
_MAX_WAIT = 60.0


def configure_network(*, attempts: int, backoff: float, timeout: float) -> None:
    """Set the attempts per call, the first backoff and the timeout (seconds) of network calls."""
    if attempts < 1 or backoff < 0 or timeout <= 0:
        raise ValueError(
            f"need attempts >= 1, backoff >= 0 and timeout > 0, "
            f"got {attempts}, {backoff}, {timeout}"
        )
    _network.update(attempts=attempts, backoff=backoff, timeout=timeout)


def http_timeout() -> float:
    """The timeout of each network call, in seconds (Config.http_timeout)."""
    return _network["timeout"]


def _transient_status(status: object) -> bool:
    return isinstance(status, int) and (status == 429 or 500 <= status <= 599)


def is_transient(error: BaseException) -> bool:
    """Whether a failed call is worth another try: a connection error, a timeout, HTTP 429 or 5xx."""
    if isinstance(error, urllib.error.HTTPError):
        return _transient_status(error.code)
    response = getattr(error, "response", None)
    if response is not None and hasattr(response, "status_code"):
        return _transient_status(response.status_code)  # requests/httpx HTTPError
    if isinstance(error, ssl.SSLCertVerificationError):
        return False
    if isinstance(error, socket.gaierror):  # name resolution: retry "try again" only
        return error.errno == socket.EAI_AGAIN
    if isinstance(error, urllib.error.URLError):
        return isinstance(error.reason, OSError) and is_transient(error.reason)
    if isinstance(error, ConnectionError | TimeoutError | http.client.IncompleteRead):
        return True
    requests = sys.modules.get("requests")
    if requests is not None:
        exceptions = requests.exceptions
        if isinstance(error, exceptions.SSLError):
            return False
        if isinstance(
            error,
            exceptions.ConnectionError | exceptions.Timeout | exceptions.ChunkedEncodingError,
        ):
            return True
    httpx = sys.modules.get("httpx")
    if httpx is not None and isinstance(
        error, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError
    ):
        return True
    return False


def _transient_response(result: object) -> bool:
    """A requests/httpx response with status 429 or 5xx (they return those, not raise)."""
    library = type(result).__module__.split(".")[0]
    return library in {"requests", "httpx"} and _transient_status(
        getattr(result, "status_code", None)
    )


def _redact(text: str) -> str:
    """``text`` without credentials in URLs and without query values (they may hold tokens)."""
    text = re.sub(r"//[^/@\s'\"]+@", "//***@", text)
    return re.sub(r"([?&][^=&\s'\"]+)=[^&\s'\"]*", r"\1=***", text)


def _describe(fn: Callable[..., Any], args: tuple[Any, ...]) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    url = next((a for a in args if isinstance(a, str) and "://" in a), None)
    if url is None and args:
        url = getattr(args[0], "full_url", None)  # a urllib.request.Request
    return f"{name} {_redact(str(url))}" if url else str(name)


def _failure(state: RetryCallState) -> str:
    outcome = state.outcome
    if outcome is None:
        return "unknown failure"
    if outcome.failed:
        error = outcome.exception()
        return _redact(f"{type(error).__name__}: {error}")[:300]
    return f"HTTP {getattr(outcome.result(), 'status_code', '?')}"


def _retrying(what: str) -> Retrying:
    attempts = int(_network["attempts"])
    backoff = _network["backoff"]

    def log_retry(state: RetryCallState) -> None:
        outcome = state.outcome
        if outcome is not None and not outcome.failed:
            close = getattr(outcome.result(), "close", None)
            if callable(close):
                close()  # release the connection of the response that is dropped
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        failure = _failure(state)
        logger.warning(
            "%s: attempt %d of %d failed (%s); retrying in %.2f s",
            what,
            state.attempt_number,
            attempts,
            failure,
            wait,
            extra={
                "event": "network_retry",
                "call": what,
                "attempt": state.attempt_number,
                "attempts": attempts,
                "error": failure,
                "wait_s": round(wait, 3),
            },
        )

    def give_up(state: RetryCallState) -> Any:
        failure = _failure(state)
        logger.error(
            "%s: giving up after %d attempt(s) (%s)",
            what,
            state.attempt_number,
            failure,
            extra={
                "event": "network_give_up",
                "call": what,
                "attempts": state.attempt_number,
                "error": failure,
            },
        )
        assert state.outcome is not None
        return state.outcome.result()  # the last error is raised, the last response returned

    return Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=backoff, max=max(_MAX_WAIT, backoff)),
        retry=retry_if_exception(is_transient) | retry_if_result(_transient_response),
        before_sleep=log_retry,
        retry_error_callback=give_up,
    )


def call_with_retry(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)``, tried again on a transient failure, waiting longer each time.

    Transient: a connection error, a timeout, HTTP 429 or 5xx (a raised error, or a requests/httpx
    response with that status). Any other error propagates at once, and any other response (a 404) is
    returned as it is. After Config.retry_attempts attempts the last error is raised, or the last
    429/5xx response returned, as the notebook would have got it. Each retry is logged with its wait.
    """
    return _retrying(_describe(fn, args))(fn, *args, **kwargs)


@contextlib.contextmanager
def socket_timeout(seconds: float) -> Iterator[None]:
    """Give sockets opened inside the block ``seconds`` of timeout (for libraries without an option)."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def read_url(reader: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """A pandas reader (``pd.read_csv``...) on a URL, with the network timeout and retries.

    pandas downloads with urllib and has no timeout option, so the timeout is the sockets' default
    while the reader runs (process-wide: do not read URLs from several threads at once).
    """

    def attempt() -> T:
        with socket_timeout(http_timeout()):
            return reader(*args, **kwargs)

    return _retrying(_describe(reader, args))(attempt)


def aws_config() -> Any:
    """botocore client configuration: the network timeout, and Config.retry_attempts attempts.

    boto3 calls are retried by botocore itself ("standard" mode: exponential backoff with jitter
    on throttling, 5xx and connection errors), which also covers paginators, waiters and transfers.
    """
    from botocore.config import Config as BotoConfig

    return BotoConfig(
        connect_timeout=http_timeout(),
        read_timeout=http_timeout(),
        retries={"total_max_attempts": int(_network["attempts"]), "mode": "standard"},
    )
