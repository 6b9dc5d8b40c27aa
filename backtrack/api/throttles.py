"""Per-user throttles for the expensive writes; reads are never throttled here.

Counters live in the cache (Redis in production). A throttle must never take a feature down with
it: when the cache cannot be reached the request is let through and the problem is logged.
"""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError
from rest_framework.request import Request
from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle, UserRateThrottle

logger = logging.getLogger(__name__)


def _allow_if_cache_down(throttle: SimpleRateThrottle, check: Any) -> bool:
    try:
        return bool(check())
    except (RedisError, OSError) as exc:
        logger.warning("throttle %s skipped: the cache is unavailable (%s)", throttle.scope, exc)
        return True


class _WriteThrottle(UserRateThrottle):
    def allow_request(self, request: Request, view: Any) -> bool:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return True
        return _allow_if_cache_down(self, lambda: super(_WriteThrottle, self).allow_request(request, view))


class UploadThrottle(_WriteThrottle):
    scope = "uploads"


class RenderRequestThrottle(_WriteThrottle):
    scope = "renders"


class AuthThrottle(ScopedRateThrottle):
    """Sign-up and token requests, per client address (scope "auth")."""

    def allow_request(self, request: Request, view: Any) -> bool:
        return _allow_if_cache_down(self, lambda: super(AuthThrottle, self).allow_request(request, view))
