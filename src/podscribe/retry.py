"""The one way podscribe retries: bounded exponential backoff around a transient fault.

Every caller that tries again (storage, webhooks, the Apple lookup, the job's steps, waiting
for the database) builds its ``tenacity.Retrying`` here, so "what is worth retrying" is
:func:`podscribe.errors.is_transient` unless a caller says otherwise, and a throttled
upstream's ``Retry-After`` is honoured (capped) the same way everywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
    wait_exponential,
)
from tenacity.stop import stop_base

from podscribe.errors import UpstreamThrottledError, is_transient

__all__ = ["retrying"]


def retrying(
    *,
    attempts: int | None = None,
    within_seconds: float | None = None,
    initial_seconds: float = 0.5,
    max_seconds: float = 10.0,
    retry_on: Callable[[BaseException], bool] = is_transient,
    log: logging.Logger | None = None,
    what: str = "",
    reraise: bool = True,
) -> Retrying:
    """A ``tenacity.Retrying`` with podscribe's backoff.

    Args:
        attempts: tries in all (the first included); ``None`` with ``within_seconds`` only.
        within_seconds: stop once this long has passed since the first try.
        initial_seconds: the first wait; each later one doubles, up to ``max_seconds``.
        max_seconds: the longest wait, also the cap on an upstream's ``Retry-After``.
        retry_on: which exceptions are worth another try (default: transient podscribe errors).
        log: where each retry is logged as a warning (``what``, attempt, error), if anywhere.
        what: the step being retried, for that log line.
        reraise: re-raise the last error (``True``) or raise ``tenacity.RetryError``.

    Raises:
        ValueError: neither ``attempts`` nor ``within_seconds`` bounds the retries.
    """
    bounds: list[stop_base] = []
    if attempts is not None:
        bounds.append(stop_after_attempt(attempts))
    if within_seconds is not None:
        bounds.append(stop_after_delay(within_seconds))
    if not bounds:
        raise ValueError("retries need a bound: attempts or within_seconds")
    stop = stop_any(*bounds)
    exponential = wait_exponential(multiplier=initial_seconds, max=max_seconds)

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, UpstreamThrottledError) and error.retry_after is not None:
            return min(error.retry_after, max_seconds)
        return float(exponential(state))

    def before_sleep(state: RetryCallState) -> None:
        if log is not None:
            error = state.outcome.exception() if state.outcome else None
            log.warning(
                "transient fault; retrying",
                extra={"step": what, "attempt": state.attempt_number, "error": str(error)},
            )

    return Retrying(
        stop=stop,
        wait=wait,
        retry=retry_if_exception(retry_on),
        before_sleep=before_sleep,
        reraise=reraise,
    )
