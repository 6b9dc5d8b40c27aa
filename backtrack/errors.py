"""Domain exceptions the API and the pages map to one HTTP answer each.

Apps subclass these for their own conditions (a render queue that is down, a limit that is reached),
so the shared error handler needs to know no app.
"""

from __future__ import annotations


class ServiceUnavailable(Exception):  # noqa: N818 (a condition, answered 503)
    """A backing service (Redis, storage) cannot take the request right now: 503 with Retry-After."""

    retry_after_s = 30

    def extra(self) -> dict[str, object]:
        """Fields to add to the JSON body besides ``detail``."""
        return {}


class LimitReached(Exception):  # noqa: N818 (a condition, answered 429)
    """The caller has used up an allowance (active renders, comments an hour): 429."""

    retry_after_s: int | None = None


class Conflict(Exception):  # noqa: N818 (a condition, answered 409)
    """The step does not fit the object's current state (an illegal status change): 409 with the reason."""
