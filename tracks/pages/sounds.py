"""The producer picks a track's default sound set from the track page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from performers.models import User
from tracks import selectors
from tracks.services import track_update


@login_required
@require_POST
def track_default_sound(request: HttpRequest, pk: int) -> HttpResponse:
    track = selectors.track_get(user=request.user, track_id=pk)
    user = request.user
    assert isinstance(user, User)  # login_required
    try:
        track_update(user=user, track=track, default_sound=request.POST.get("sound", "")[:40])
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Default sound saved: renders that name none use it.")
    return redirect(f"{track.get_absolute_url()}#parts-heading")
