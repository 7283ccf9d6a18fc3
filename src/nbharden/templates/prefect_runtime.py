"""What the generated Prefect flow (``flow.py``) needs from Prefect: task options from Config, one value of
a step that returns several, the task runner chosen by a setting, secrets from Prefect Secret blocks, and
running the flow from the command line. Written by nbharden; yours to change. Needs the ``prefect`` extra.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar

from prefect import State
from prefect.futures import PrefectFuture, wait
from prefect.states import Completed
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

P = ParamSpec("P")
R = TypeVar("R")


# without prefect installed (nbharden's own checks) PrefectFuture is Any
class Output(PrefectFuture[Any]):  # type: ignore[misc,unused-ignore]
    """The ``index``-th value of a step that returns several (a tuple), as a future of its own.

    Passed to ``.submit()`` like the step's own future: the task that takes it waits for the step, and
    the flow run's graph shows the edge from the step that made the value.
    """

    def __init__(self, future: PrefectFuture[Any], index: int) -> None:
        # PrefectFuture's own __init__ is deprecated for subclasses: this one keeps only the step's future
        self._future = future
        self._index = index

    @property
    def task_run_id(self) -> Any:
        return self._future.task_run_id

    @property
    def state(self) -> State[Any]:
        state = self._future.state
        if not state.is_completed():
            return state  # a failed or unfinished step: the task that takes this value does not run
        value = self._future.result()[self._index]
        return Completed(data=value, state_details=state.state_details)

    def wait(self, timeout: float | None = None) -> None:
        self._future.wait(timeout)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> Any:
        return self._future.result(timeout, raise_on_failure)[self._index]

    def add_done_callback(self, fn: Callable[[PrefectFuture[Any]], None]) -> None:
        self._future.add_done_callback(lambda _: fn(self))


def task_options(retries: int, retry_delay: float, timeout: float | None) -> dict[str, Any]:
    """Options of every task (``Task.with_options``): ``retries`` attempts more after a failure, the
    first ``retry_delay`` seconds later and each next one twice as late, and a time limit per attempt.
    """
    delays = [retry_delay * 2**attempt for attempt in range(retries)]
    return {"retries": retries, "retry_delay_seconds": delays or 0, "timeout_seconds": timeout}


def saving_figures(step: Callable[P, R], show: Callable[[str], Any], name: str) -> Callable[P, R]:
    """``step``, then save the figures it left open (``show(name)``), as the pipeline does after each step."""

    @functools.wraps(step)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        result = step(*args, **kwargs)
        show(name)
        return result

    return wrapper


def task_runner(prefix: str) -> TaskRunner[Any]:
    """The task runner named by the setting ``<prefix>TASK_RUNNER``: ``threads`` (the default: steps
    that do not depend on each other run at the same time in this process) or ``dask`` (prefect-dask's
    ``DaskTaskRunner``, on the cluster at ``<prefix>DASK_ADDRESS``, else on a new local cluster).
    """
    kind = os.environ.get(f"{prefix}TASK_RUNNER", "threads").strip().lower()
    if kind == "threads":
        return ThreadPoolTaskRunner()
    if kind == "dask":
        from prefect_dask.task_runners import DaskTaskRunner  # the prefect-dask package

        address = os.environ.get(f"{prefix}DASK_ADDRESS") or None
        runner: TaskRunner[Any] = DaskTaskRunner(address=address)
        return runner
    raise ValueError(f"{prefix}TASK_RUNNER={kind!r}: use 'threads' or 'dask'")


class SecretBlocks(PydanticBaseSettingsSource):
    """The last source of a secret field: the Prefect Secret block ``<block_prefix>-<field>``
    (underscores as dashes), when it exists. Listed after the environment, ``.env`` and the secrets
    folder in ``settings_customise_sources``, so a value set there wins, whatever its name
    (``<PKG>_<FIELD>`` or an alias the notebook read)."""

    def __init__(
        self, settings_cls: type[BaseSettings], block_prefix: str, names: Iterable[str]
    ) -> None:
        super().__init__(settings_cls)
        self.block_prefix, self.names = block_prefix, tuple(names)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ reads the blocks

    def __call__(self) -> dict[str, Any]:
        from prefect.blocks.system import Secret

        found: dict[str, Any] = {}
        for name in self.names:
            try:
                block: Any = Secret.load(f"{self.block_prefix}-{name.replace('_', '-')}")
            except ValueError:  # no such block: Config says the secret is missing
                continue
            found[name] = str(block.get())
        return found


def _items(results: Any) -> list[tuple[str, Any]]:
    if isinstance(results, Mapping):
        return [(str(key), value) for key, value in results.items()]
    if dataclasses.is_dataclass(results) and not isinstance(results, type):
        return [(f.name, getattr(results, f.name)) for f in dataclasses.fields(results)]
    return [("result", results)]


def describe(value: Any) -> str:
    """A short text for a result: the value when it is small, else its type and shape."""
    if isinstance(value, bool | int | float | complex | str | type(None)):
        text = repr(value)
        return text if len(text) <= 80 else text[:77] + "..."
    if isinstance(value, list | tuple | dict | set | frozenset) and len(text := repr(value)) <= 80:
        return text
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple):
        return f"{type(value).__name__} of shape {shape}"
    if isinstance(value, list | tuple | dict | set | frozenset):
        return f"{type(value).__name__} of {len(value)} items"
    return type(value).__name__


def run_and_report(
    flow: Callable[..., Any], parameters: Mapping[str, Any], echo: Callable[[str], Any] = print
) -> int:
    """Run ``flow`` with ``parameters`` here (Prefect's API: PREFECT_API_URL, else a temporary local
    server); echo the flow run's state and results. Returns 0 when the run completed, else 1.
    """
    from prefect.settings import (
        PREFECT_SERVER_ANALYTICS_ENABLED,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        temporary_settings,
    )

    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request to Prefect's API
    # Without PREFECT_API_URL Prefect starts a temporary server for this run: give it 120 s to start
    # (Prefect's 20 are too few on a busy machine) and no telemetry (its heartbeat races the run for
    # the SQLite database and prints a traceback). Values set in the environment win.
    updates = {}
    if "PREFECT_SERVER_ANALYTICS_ENABLED" not in os.environ:
        updates[PREFECT_SERVER_ANALYTICS_ENABLED] = False
    with temporary_settings(
        updates=updates, set_defaults={PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: 120}
    ):
        state = flow(**parameters, return_state=True)
    echo(f"flow run {state.state_details.flow_run_id}: {state.type.value} ({state.name})")
    if not state.is_completed():
        echo(f"  {state.message or ''}".rstrip())
        error = state.result(raise_on_failure=False)
        if isinstance(error, BaseException):
            echo(f"  {type(error).__name__}: {error}")
        return 1
    for name, value in _items(state.result()):
        echo(f"  {name} = {describe(value)}")
    return 0


def finish(futures: Sequence[PrefectFuture[Any]]) -> None:
    """Wait for every step, then raise the first failure in notebook order (the one the pipeline,
    which runs the steps one after the other, would have raised)."""
    wait(list(futures))
    for future in futures:
        future.result()
