"""Template context every page needs."""

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from tracks import selectors


def notifications(request: HttpRequest) -> dict[str, Any]:
    """The signed-in user's unread notification count for the header badge.

    Lazy: the COUNT query runs only when a template shows it, so htmx fragments cost nothing.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"unread_notifications": SimpleLazyObject(lambda: selectors.notification_unread_count(user=user))}
