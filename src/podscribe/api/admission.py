"""Who may ask: each authenticated request is rate-limited and its key checked, in that order.

The limiter runs first, for every request to an authenticated route whether its key is good
or not, so guessing keys spends the (tighter) create budget like any other unadmitted
request. Reads by a known key get a budget of their own. Both limits are one Redis round trip.
What a handler then knows about its request is a :class:`RequestContext`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from werkzeug.wrappers import Request

from podscribe.api.auth import Caller, authenticate
from podscribe.api.validation import client_ip
from podscribe.errors import (
    JobNotFoundError,
    RateLimitedError,
    RouteNotFoundError,
    UnauthorizedError,
)
from podscribe.ratelimit import Bucket, RateDecision, RateLimiter, address_identity
from podscribe.settings import Settings

__all__ = ["RateLimitExceededError", "RequestContext", "admit", "admit_public", "parse_job_id"]

_READ_METHODS = frozenset({"GET", "HEAD"})
"""Methods limited by the read budget; every other one by the create budget."""


@dataclass(frozen=True)
class RequestContext:
    """What a handler knows about its request.

    Attributes:
        request: the request.
        base_url: scheme and host of the API as the caller reached it (routes with ``auth``
            only: public routes must not read the settings unless they need to, so that
            liveness probes answer before logging is configured, as they always did).
        caller: the authenticated key (routes with ``auth`` only).
        rate: the rate limiter's decision (routes with ``auth`` only).
        path_job_id: the path's job id as sent (routes with ``{job_id}`` only); read it as
            :attr:`job`, parsed.
    """

    request: Request
    base_url: str | None = None
    caller: Caller | None = None
    rate: RateDecision | None = None
    path_job_id: str | None = None

    @property
    def key(self) -> Caller:
        """The caller of an authenticated route.

        Raises:
            UnauthorizedError: the route was not admitted (a route table mistake).
        """
        if self.caller is None:
            raise UnauthorizedError("authentication required")
        return self.caller

    @property
    def links_base(self) -> str:
        """The base URL links of an authenticated route's answer are built on.

        Raises:
            UnauthorizedError: the route was not admitted (a route table mistake).
        """
        if self.base_url is None:
            raise UnauthorizedError("authentication required")
        return self.base_url

    @property
    def job(self) -> uuid.UUID:
        """The job id of a route under ``/v1/transcriptions/{job_id}``, as a UUID.

        Parsed when the handler first needs it, so a handler's own checks of the query keep
        their place before the 404 of a malformed id, as they always had.

        Raises:
            JobNotFoundError: the id is not a UUID.
            RouteNotFoundError: the route's path names no job (a route table mistake).
        """
        if self.path_job_id is None:
            raise RouteNotFoundError("this route names no job")
        return parse_job_id(self.path_job_id)


class RateLimitExceededError(RateLimitedError):
    """A refusal that carries its ``RateLimit-*`` headers to the problem response."""

    def __init__(self, decision: RateDecision) -> None:
        super().__init__(
            f"too many requests; try again in {decision.retry_after}s", decision.retry_after
        )
        self.headers = decision.headers()


def admit(
    request: Request, settings: Settings, limiter: RateLimiter, base_url: str
) -> RequestContext:
    """Rate-limit (IP, and key when valid) and authenticate, in one Redis round trip.

    Args:
        request: the request.
        settings: the keys, the limits and the trusted proxy hops are read.
        limiter: the rate limiter.
        base_url: the API's base URL for this request.

    Returns:
        The context of an admitted request.

    Raises:
        RateLimitExceededError: a budget is spent (before the key is judged).
        UnauthorizedError: no key, or not a configured one.
    """
    unauthorized: UnauthorizedError | None = None
    try:
        caller: Caller | None = authenticate(request.headers.get("Authorization"), settings)
    except UnauthorizedError as error:
        caller, unauthorized = None, error
    address = address_identity(client_ip(request, settings.proxy_hops))
    if caller is not None and request.method in _READ_METHODS:
        # Polling is cheap and expected: reads get a budget of their own, so a client
        # polling once a second never eats into what it may submit.
        buckets = [
            Bucket(f"ip:read:{address}", settings.rate_limit_reads_per_ip),
            Bucket(f"key:read:{caller.fingerprint}", settings.rate_limit_reads_per_key),
        ]
    else:
        # Creates, and every request without a valid key (key guessing) whatever its
        # method, share the tighter budget.
        buckets = [Bucket(f"ip:{address}", settings.rate_limit_per_ip)]
        if caller is not None:
            buckets.append(Bucket(f"key:{caller.fingerprint}", settings.rate_limit_per_key))
    rate = limiter.hit(buckets)
    if not rate.allowed:
        raise RateLimitExceededError(rate)
    if unauthorized is not None or caller is None:
        raise unauthorized or UnauthorizedError("authentication required")
    return RequestContext(request, base_url, caller=caller, rate=rate)


def admit_public(
    request: Request, settings: Settings, limiter: RateLimiter, budget: str
) -> RequestContext:
    """Rate-limit an unauthenticated route per client address, on a budget of its own.

    For what browsers send without a key (CSP reports): no key is read, and the route's
    own bucket keeps a flood of it from spending the API's budgets, or theirs from it.

    Args:
        request: the request.
        settings: the trusted proxy hops and the budget's limit are read.
        limiter: the rate limiter.
        budget: the settings field of the route's per-address limit (``Route.budget``).

    Returns:
        The context of an admitted request (with its rate decision, for the headers).

    Raises:
        RateLimitExceededError: the address spent the budget.
    """
    address = address_identity(client_ip(request, settings.proxy_hops))
    limit = int(getattr(settings, budget))
    rate = limiter.hit([Bucket(f"ip:{budget}:{address}", limit)])
    if not rate.allowed:
        raise RateLimitExceededError(rate)
    return RequestContext(request, rate=rate)


def parse_job_id(value: str) -> uuid.UUID:
    """The path's job id, parsed at the edge.

    Raises:
        JobNotFoundError: ``value`` is not a UUID (no job can have that id: 404, as any
            unknown id).
    """
    try:
        return uuid.UUID(value)
    except ValueError:
        raise JobNotFoundError(f"no job {value!r:.100}") from None
