"""Conditions the render services raise; the API and the pages answer each with one status."""

from __future__ import annotations

from backtrack.errors import LimitReached, ServiceUnavailable


class RenderQueueUnavailable(ServiceUnavailable):
    """The broker (Redis) did not take the task; the render row stays queued for the sweeper."""

    def __init__(self, *, render_id: int) -> None:
        self.render_id = render_id
        super().__init__(
            "the render queue is unavailable right now; your render is saved "
            f"(id {render_id}) and will start when the queue is back"
        )

    def extra(self) -> dict[str, object]:
        return {"render": self.render_id}


class RenderLimitReached(LimitReached):
    """The user already has as many active renders as allowed."""


class CommentLimitReached(LimitReached):
    """The user posted as many comments as allowed in the current window."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message)


class TransientRenderError(Exception):
    """Storage or database trouble that a later attempt may not meet (the task retries these)."""
