"""Refuse a request body over its limit before anything reads it (CSRF parses forms first).

Django would otherwise spool a 20 MB multipart body to the temporary folder before a view or a
service compares the file with ``MIDI_MAX_BYTES``. This holds under WSGI (gunicorn, runserver); an
ASGI server would hand Django the body already read, so a front proxy's limit would have to do it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Final

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.urls import Resolver404, resolve

# The views that take a MIDI file, pages and API (the admin, where staff may attach one, counts too).
UPLOAD_URL_NAMES: Final = frozenset(
    {"tracks:upload", "tracks:revision-upload", "api-tracks", "api-track-revisions"}
)


def body_limit(path_info: str) -> int:
    """The largest request body, in bytes, accepted at a path.

    Uploads may carry ``MIDI_MAX_BYTES`` of file plus what any other request may carry (the form's
    other fields and the multipart framing); everything else ``REQUEST_BODY_MAX_BYTES``.
    """
    ordinary = int(settings.REQUEST_BODY_MAX_BYTES)
    try:
        match = resolve(path_info)
    except Resolver404:
        return ordinary
    if match.view_name in UPLOAD_URL_NAMES or "admin" in match.namespaces:
        return int(settings.MIDI_MAX_BYTES) + ordinary
    return ordinary


class BoundedInput:
    """``wsgi.input`` that gives at most ``limit`` bytes and raises past them.

    Django reads a body only up to its Content-Length (which the middleware has checked), so this
    guards a body of unknown length (``Transfer-Encoding: chunked``) from anything that reads the
    raw input: it is cut off at the limit instead of being read whole.
    """

    def __init__(self, stream: IO[bytes], limit: int) -> None:
        self._stream = stream
        self.limit = limit
        self.consumed = 0
        self.exceeded = False

    def read(self, size: int | None = -1) -> bytes:
        allowance = self.limit + 1 - self.consumed
        wanted = allowance if size is None or size < 0 else min(size, allowance)
        return self._count(self._stream.read(wanted) if wanted > 0 else b"")

    def readline(self, size: int | None = -1) -> bytes:
        allowance = self.limit + 1 - self.consumed
        wanted = allowance if size is None or size < 0 else min(size, allowance)
        return self._count(self._stream.readline(wanted) if wanted > 0 else b"")

    def _count(self, data: bytes) -> bytes:
        self.consumed += len(data)
        if self.consumed > self.limit:
            self.exceeded = True
            raise RequestDataTooBig(f"the request body is over {self.limit} bytes")
        return data


class RequestBodyLimitMiddleware:
    """413 for a body over its path's limit, from its Content-Length, before the body is read.

    Placed first in MIDDLEWARE. API paths get ``{"detail": …}`` like every other API error; pages
    get a short plain-text answer.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        limit = body_limit(request.path_info)
        length = _content_length(request)
        if length is not None and length > limit:
            return _too_large(request, f"the request body is {length} bytes; at most {limit} are accepted")
        bounded: BoundedInput | None = None
        if length is None and "wsgi.input" in request.META:
            bounded = BoundedInput(request.META["wsgi.input"], limit)
            request.META["wsgi.input"] = bounded
        response = self.get_response(request)
        if bounded is not None and bounded.exceeded:
            response.close()
            return _too_large(
                request, f"the request body is over {limit} bytes; at most {limit} are accepted"
            )
        return response


def _content_length(request: HttpRequest) -> int | None:
    """The declared body length; None when absent or unreadable (Django then reads no body)."""
    raw = str(request.META.get("CONTENT_LENGTH") or "").strip()
    if not (raw.isascii() and raw.isdigit()):
        return None
    return int(raw) if len(raw) <= 20 else 10**20  # never int() thousands of digits


def _too_large(request: HttpRequest, reason: str) -> HttpResponse:
    if request.path_info.startswith("/api/"):
        return JsonResponse({"detail": reason}, status=413)
    return HttpResponse(f"Request body too large: {reason}.\n", status=413, content_type="text/plain")
