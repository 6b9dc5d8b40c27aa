"""One home for throttling: who the client is, a counter in the cache, and the limits built on it.

Every path that can be flooded or used to guess passwords goes through here: the HTML and admin
logins and ``POST /api/auth/token/`` (per client address and per account), sign-up on both paths
(per address), and the expensive writes (uploads, render requests) that the pages and the API share
one budget for (the DRF throttles in ``backtrack.api.throttles`` call ``write_budget_spend`` too).

Counters live in the cache (Redis in production, so every web process shares them). A throttle must
never take a feature down with it: when the cache cannot be reached the request is let through and
the problem is logged.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from typing import Any, Protocol, cast

from django.conf import settings
from django.core.cache import cache
from redis.exceptions import RedisError

from backtrack.errors import LimitReached

logger = logging.getLogger(__name__)

_RATE_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class _HasMeta(Protocol):
    META: Any


class TooManyAttempts(LimitReached):
    """An allowance of attempts (logins, sign-ups, uploads, renders) is used up for now: 429."""

    def __init__(self, *, retry_after_s: int, what: str = "attempts") -> None:
        self.retry_after_s = max(1, int(retry_after_s))
        minutes = max(1, math.ceil(self.retry_after_s / 60))
        super().__init__(f"Too many {what}; try again in {minutes} minute{'s' if minutes != 1 else ''}.")


def client_address(request: _HasMeta) -> str:
    """The address of the client, as far as it can be trusted.

    ``TRUSTED_PROXIES`` says how many proxies of our own stand in front of the app. With none (the
    default) ``X-Forwarded-For`` is ignored, because any client can send it: the address is the
    socket's (``REMOTE_ADDR``). With N proxies, each appends the address it saw, so the Nth address
    from the right of ``X-Forwarded-For`` is the one our outermost proxy saw (anything to its left
    came from the client). The same rule as DRF's ``NUM_PROXIES``, which settings set from it.
    """
    remote = str(request.META.get("REMOTE_ADDR") or "")
    proxies = int(getattr(settings, "TRUSTED_PROXIES", 0))
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if proxies <= 0 or not forwarded:
        return remote
    addresses = str(forwarded).split(",")
    return addresses[-min(proxies, len(addresses))].strip() or remote


def _key(*parts: str) -> str:
    """A cache key from any text (usernames may hold anything): hashed, so always a valid key."""
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"throttle:{parts[0]}:{digest}"


def _bucket(key: str, window_s: int, now: float) -> tuple[str, int]:
    """The key of the current fixed window and the seconds until it ends."""
    index = int(now // window_s)
    return f"{key}:{index}", max(1, math.ceil((index + 1) * window_s - now))


def hit(key: str, *, limit: int, window_s: int) -> int | None:
    """Count one request against ``limit`` per ``window_s`` seconds; the seconds to wait when over.

    A fixed window (aligned to the clock) with an atomic increment, so simultaneous requests cannot
    all slip past the limit; across a window boundary at most twice ``limit`` get through. When the
    cache is down the request is let through (None) and the problem is logged.
    """
    bucket, retry_after = _bucket(key, window_s, time.time())
    try:
        cache.add(bucket, 0, timeout=window_s + 1)
        try:
            count = cache.incr(bucket)
        except ValueError:  # the window ended between add and incr
            cache.add(bucket, 1, timeout=window_s + 1)
            count = 1
    except (RedisError, OSError) as exc:
        logger.warning("throttle %s skipped: the cache is unavailable (%s)", key.split(":")[1], exc)
        return None
    return retry_after if count > limit else None


def _peek(key: str, *, limit: int, window_s: int) -> int | None:
    """Like ``hit`` without counting: the seconds to wait when ``key`` is already at its limit."""
    bucket, retry_after = _bucket(key, window_s, time.time())
    try:
        count = int(cache.get(bucket) or 0)
    except (RedisError, OSError) as exc:
        logger.warning("throttle %s skipped: the cache is unavailable (%s)", key.split(":")[1], exc)
        return None
    return retry_after if count >= limit else None


def parse_rate(rate: str) -> tuple[int, int]:
    """DRF's rate notation (``"30/hour"``, ``"10/m"``) as (requests, seconds)."""
    count, period = rate.split("/")
    return int(count), _RATE_PERIODS[period.strip()[0]]


# --- logins and sign-ups -------------------------------------------------------------------------


def _username_key(username: str) -> str:
    return _key("login-user", username.strip().casefold())


def login_attempt_check(*, request: _HasMeta, username: str) -> None:
    """Count a login attempt; TooManyAttempts when its address or its account is over the limit.

    Per address, every attempt counts (``LOGIN_ATTEMPTS_PER_IP``). Per account, failed attempts
    count (``LOGIN_FAILURES_PER_USERNAME``, recorded by ``login_failed``), and once the account is at
    its limit every attempt is refused, the right password too, so a guessing loop learns nothing.
    """
    window = int(settings.LOGIN_WINDOW_S)
    retry = hit(
        _key("login-ip", client_address(request)), limit=int(settings.LOGIN_ATTEMPTS_PER_IP), window_s=window
    )
    if retry is None:
        retry = _peek(
            _username_key(username), limit=int(settings.LOGIN_FAILURES_PER_USERNAME), window_s=window
        )
    if retry is not None:
        logger.warning("login throttled: address %s, account %r", client_address(request), username[:150])
        raise TooManyAttempts(retry_after_s=retry)


def login_failed(*, username: str) -> None:
    """Count a failed login against its account (whether or not the account exists)."""
    hit(
        _username_key(username),
        limit=int(settings.LOGIN_FAILURES_PER_USERNAME),
        window_s=int(settings.LOGIN_WINDOW_S),
    )


def signup_attempt_check(*, request: _HasMeta) -> None:
    """Count a sign-up attempt from the client's address (``SIGNUPS_PER_IP`` per ``SIGNUP_WINDOW_S``)."""
    retry = hit(
        _key("signup-ip", client_address(request)),
        limit=int(settings.SIGNUPS_PER_IP),
        window_s=int(settings.SIGNUP_WINDOW_S),
    )
    if retry is not None:
        logger.warning("sign-up throttled: address %s", client_address(request))
        raise TooManyAttempts(retry_after_s=retry)


# --- expensive writes: one budget per user, pages and API alike -----------------------------------


def write_rate(scope: str) -> str | None:
    """The rate of a write scope ("uploads", "renders"): REST_FRAMEWORK's DEFAULT_THROTTLE_RATES."""
    rates = cast(dict[str, Any], settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES") or {})
    rate = rates.get(scope)
    return str(rate) if rate else None


def write_budget_spend(*, scope: str, ident: str, rate: str | None = None) -> int | None:
    """Spend one unit of a write budget; the seconds to wait when it is used up, else None.

    ``ident`` names who pays (``"user:<id>"``; an address for anonymous callers). The page views and
    the DRF throttles count under the same key, so one user has one budget across both.
    """
    rate = rate if rate is not None else write_rate(scope)
    if rate is None:
        return None
    limit, window = parse_rate(rate)
    return hit(_key(scope, ident), limit=limit, window_s=window)


def user_write_check(*, scope: str, user: Any, what: str) -> None:
    """TooManyAttempts when ``user`` has used up the ``scope`` budget (the pages' entry point)."""
    retry = write_budget_spend(scope=scope, ident=f"user:{user.pk}")
    if retry is not None:
        raise TooManyAttempts(retry_after_s=retry, what=what)
