"""DRF's side of ``backtrack.throttling``: per-user throttles for the expensive writes (reads are
never throttled here) and the per-address throttle of the sign-up and token endpoints.

The counting happens in ``backtrack.throttling``, so a page and the API spend one budget, clients
are told apart by their real address (``TRUSTED_PROXIES``), and a cache outage lets requests through.
"""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError
from rest_framework.request import Request
from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle, UserRateThrottle

from backtrack.throttling import client_address, write_budget_spend

logger = logging.getLogger(__name__)


def _allow_if_cache_down(throttle: SimpleRateThrottle, check: Any) -> bool:
    try:
        return bool(check())
    except (RedisError, OSError) as exc:
        logger.warning("throttle %s skipped: the cache is unavailable (%s)", throttle.scope, exc)
        return True


class _WriteThrottle(UserRateThrottle):
    """One budget per user and scope, shared with the page views (``write_budget_spend``)."""

    _retry_after: int | None = None

    def get_ident(self, request: Request) -> str:
        return client_address(request)

    def allow_request(self, request: Request, view: Any) -> bool:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return True
        user = request.user
        ident = f"user:{user.pk}" if user and user.is_authenticated else f"address:{self.get_ident(request)}"
        self._retry_after = write_budget_spend(scope=str(self.scope), ident=ident, rate=self.get_rate())
        return self._retry_after is None

    def wait(self) -> float | None:
        return self._retry_after


class UploadThrottle(_WriteThrottle):
    scope = "uploads"


class RenderRequestThrottle(_WriteThrottle):
    scope = "renders"


class AuthThrottle(ScopedRateThrottle):
    """Sign-up and token requests, per real client address (scope "auth")."""

    def get_ident(self, request: Request) -> str:
        return client_address(request)

    def allow_request(self, request: Request, view: Any) -> bool:
        return _allow_if_cache_down(self, lambda: super(AuthThrottle, self).allow_request(request, view))
