"""The producer names a revision's melody part from the track page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from backtrack.text import parse_id
from performers.models import User
from tracks import selectors
from tracks.services import revision_melody_set


@login_required
@require_POST
def revision_melody(request: HttpRequest, pk: int) -> HttpResponse:
    revision = selectors.revision_get(user=request.user, revision_id=pk)
    raw = request.POST.get("part", "")
    part = None if raw in ("", "none") else parse_id(raw)
    if raw not in ("", "none") and part is None:
        messages.error(request, "Choose one of the parts.")
    else:
        user = request.user
        assert isinstance(user, User)  # login_required
        try:
            revision_melody_set(user=user, revision=revision, part=part)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, "Melody part saved: key suggestions now follow it.")
    return redirect(f"{revision.track.get_absolute_url()}?revision={revision.number}#parts-heading")
