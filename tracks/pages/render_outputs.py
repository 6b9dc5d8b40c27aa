"""The render panel's download choices: the same variant as MP3, WAV, stems, MIDI or with the click in
the left ear. Each choice is a render of its own (identical requests are rendered once per format)."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from backtrack.errors import LimitReached, ServiceUnavailable
from backtrack.throttling import user_write_check
from performers.models import User
from tracks import selectors
from tracks.models import RenderStatus
from tracks.services import render_request


@login_required
@require_POST
def render_as(request: HttpRequest, pk: int) -> HttpResponse:
    """The variant of render ``pk`` in the chosen ``format`` (and ``layout``): its download when it is
    ready, else the track page showing it while a worker makes it."""
    source = selectors.render_get(user=request.user, render_id=pk)
    track_url = source.revision.track.get_absolute_url()
    layout = request.POST.get("layout") or "stereo"
    settings = dict(source.settings) | {"format": request.POST.get("format") or "mp3", "layout": layout}
    if layout == "split":
        settings["click"] = True  # the left ear is for the click: a split render without one is silent
    try:
        user_write_check(scope="renders", user=request.user, what="render requests")
        render, _created = render_request(
            user=cast(User, request.user), revision=source.revision, settings=settings
        )
    except (ValidationError, PermissionDenied, LimitReached, ServiceUnavailable) as exc:
        messages.error(request, " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc))
        return redirect(f"{track_url}?render={source.pk}#listen")
    if render.status == RenderStatus.DONE and render.audio:
        return redirect(reverse("api-render-download", kwargs={"pk": render.pk}))
    return redirect(f"{track_url}?render={render.pk}#listen")
