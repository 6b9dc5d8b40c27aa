"""The caller of an API view."""

from __future__ import annotations

from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request

from performers.models import User


def request_user(request: Request) -> User:
    """The authenticated user; anonymous requests are refused with 401 (DRF's NotAuthenticated)."""
    if not isinstance(request.user, User):
        raise NotAuthenticated()
    return request.user
