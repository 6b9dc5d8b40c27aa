"""Instant listening: ``GET /api/renders/{id}/stream/[?from=SECONDS]``, the render's MP3 as it renders."""

from __future__ import annotations

import math

from django.http import HttpResponseBase, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.views import APIView

from backtrack.errors import Conflict
from tracks import selectors
from tracks.api.views import ERROR
from tracks.models import RenderStatus
from tracks.services import listening

MAX_FROM_S = 24 * 3600


def _from_seconds(value: str | None) -> float:
    """``?from=``: seconds into the song, 0 when absent; a 400 names it when it is not a time."""
    if value is None or value == "":
        return 0.0
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and 0.0 <= seconds <= MAX_FROM_S):
        raise ValidationError({"from": [f"from must be a number of seconds from 0 to {MAX_FROM_S}"]})
    return seconds


class RenderStreamApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="renders_stream",
        parameters=[OpenApiParameter("from", float, description="start at this many seconds into the song")],
        responses={
            (200, "audio/mpeg"): OpenApiResponse(
                response=OpenApiTypes.BINARY,
                description="the MP3 as it renders (the whole file once it is done); X-Stream-From gives "
                "the exact start in seconds",
            ),
            400: ERROR,
            404: ERROR,
            409: ERROR,
        },
    )
    def get(self, request: Request, pk: int) -> HttpResponseBase:
        render = selectors.render_get(user=request.user, render_id=pk)
        from_s = _from_seconds(request.query_params.get("from"))
        if not selectors.render_streams(render=render):
            raise Conflict("only MP3 renders can be listened to while they render; download this one")
        if render.status == RenderStatus.FAILED:
            raise Conflict(f"the render failed: {render.error or 'no reason given'}")
        start = listening.stream_start(from_s=from_s)
        response = StreamingHttpResponse(
            listening.render_stream_chunks(render=render, start=start), content_type="audio/mpeg"
        )
        response["Cache-Control"] = "no-store"
        response["X-Stream-From"] = f"{start.seconds:.3f}"
        response["X-Render-Status"] = str(render.status)
        response["X-Content-Type-Options"] = "nosniff"
        return response
