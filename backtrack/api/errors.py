"""One error shape for the whole API: ``{"detail": "<reason>", "errors": {field: [messages]}}``.

DRF's own exceptions, Django's ValidationError/PermissionDenied/Http404 raised by services, and the
conditions of ``backtrack.errors`` (a backing service down: 503; an allowance used up: 429; a step that
does not fit the current state: 409) all become
JSON with a reason a person understands; none of them is a 500. Apps subclass those conditions, so
this handler knows no app.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from backtrack.errors import Conflict, LimitReached, ServiceUnavailable


def _django_validation_errors(exc: DjangoValidationError) -> dict[str, list[str]]:
    if hasattr(exc, "error_dict"):
        return {field: [str(message) for message in messages] for field, messages in exc.message_dict.items()}
    return {"non_field_errors": [str(message) for message in exc.messages]}


def _flatten(errors: Any, prefix: str = "") -> list[str]:
    if isinstance(errors, dict):
        lines: list[str] = []
        for field, value in errors.items():
            name = f"{prefix}.{field}" if prefix else str(field)
            lines.extend(_flatten(value, "" if name == "non_field_errors" else name))
        return lines
    if isinstance(errors, list):
        return [line for item in errors for line in _flatten(item, prefix)]
    return [f"{prefix}: {errors}" if prefix else str(errors)]


def _validation_response(errors: dict[str, Any]) -> Response:
    reasons = _flatten(errors)
    return Response(
        {"detail": "; ".join(reasons) or "invalid input", "errors": errors},
        status=status.HTTP_400_BAD_REQUEST,
    )


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        return _validation_response(_django_validation_errors(exc))
    if isinstance(exc, DjangoPermissionDenied):
        reason = str(exc) or "you are not allowed to do that"
        return Response({"detail": reason}, status=status.HTTP_403_FORBIDDEN)
    if isinstance(exc, Http404):
        reason = str(exc) or "not found"
        return Response({"detail": reason}, status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, ServiceUnavailable):
        return Response(
            {"detail": str(exc), **exc.extra()},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(exc.retry_after_s)},
        )
    if isinstance(exc, Conflict):
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, LimitReached):
        headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s else None
        return Response({"detail": str(exc)}, status=status.HTTP_429_TOO_MANY_REQUESTS, headers=headers)
    if isinstance(exc, (KombuOperationalError, RedisError)):
        return Response(
            {"detail": "a backing service (Redis) is unavailable right now; try again shortly"},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "30"},
        )
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return _validation_response(detail)

    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" in response.data:
        response.data = {"detail": str(response.data["detail"])}
    elif response is not None:
        response.data = {"detail": "; ".join(_flatten(response.data)) or "request failed"}
    return response
