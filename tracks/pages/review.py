"""Thread buttons of a suggestion: Listen (its render, shared by everyone) and, for the producer, make
it the track's recommended variant."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from backtrack.errors import LimitReached, ServiceUnavailable
from backtrack.throttling import user_write_check
from performers.models import User
from tracks import selectors
from tracks.services import render_request
from tracks.services.suggestions import track_recommend_settings


@login_required
@require_POST
def comment_listen(request: HttpRequest, pk: int) -> HttpResponse:
    comment = selectors.comment_get(user=request.user, comment_id=pk)
    track_url = comment.track.get_absolute_url()
    revision = comment.revision or comment.track.current_revision
    if comment.settings is None or revision is None:
        messages.error(request, "This comment suggests no settings to listen to.")
        return redirect(f"{track_url}#comment-{comment.pk}")
    try:
        user_write_check(scope="renders", user=request.user, what="render requests")
        render, _created = render_request(
            user=cast(User, request.user), revision=revision, settings=dict(comment.settings)
        )
    except (ValidationError, PermissionDenied, LimitReached, ServiceUnavailable) as exc:
        messages.error(request, " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc))
        return redirect(f"{track_url}#comment-{comment.pk}")
    return redirect(f"{track_url}?render={render.pk}#listen")


@login_required
@require_POST
def comment_recommend(request: HttpRequest, pk: int) -> HttpResponse:
    comment = selectors.comment_get(user=request.user, comment_id=pk)
    try:
        track_recommend_settings(user=cast(User, request.user), comment=comment)
        messages.success(request, "This suggestion is now the recommended variant.")
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc))
    return redirect(f"{comment.track.get_absolute_url()}#comment-{comment.pk}")
