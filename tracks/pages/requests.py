"""Request pages: the inbox of requests (both sides, what waits on you first, overdue marked), one
request with the steps its viewer may take, and the form a performer orders a track with."""

from __future__ import annotations

import datetime
from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from backtrack.errors import Conflict
from backtrack.text import parse_id
from performers.models import User
from tracks import selectors
from tracks.models import RequestStatus, TrackRequest
from tracks.services import requests as request_services


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


def _row(track_request: TrackRequest, user: User) -> dict[str, Any]:
    waits_on = selectors.request_waits_on(track_request=track_request)
    mine = track_request.producer_id if waits_on == "producer" else track_request.performer_id
    return {
        "request": track_request,
        "overdue": selectors.request_is_overdue(track_request=track_request),
        "waits_on_me": waits_on is not None and mine == user.pk,
        "other": track_request.performer if track_request.producer_id == user.pk else track_request.producer,
    }


@login_required
def request_inbox(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    rows = [_row(found, user) for found in selectors.request_list(user=user)[:300]]
    waiting = [row for row in rows if row["waits_on_me"]]
    groups = []
    for value, label in RequestStatus.choices:
        members = [row for row in rows if row["request"].status == value and not row["waits_on_me"]]
        if members:
            groups.append({"label": label, "rows": members})
    return render(request, "tracks/requests.html", {"waiting": waiting, "groups": groups})


@login_required
def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    found = selectors.request_get(user=user, request_id=pk)
    revisions = []
    if found.producer_id == user.pk and found.track is not None:
        revisions = list(selectors.revision_list(track=found.track)[:20])
    context = {
        **_row(found, user),
        "is_producer": found.producer_id == user.pk,
        "is_performer": found.performer_id == user.pk,
        "revisions": revisions,
        "own_tracks": list(user.tracks.order_by("-created_at")[:50]) if found.track is None else [],
        "comments": list(found.comments.order_by("created_at")),
    }
    return render(request, "tracks/requests_detail.html", context)


@login_required
@require_POST
def request_step(request: HttpRequest, pk: int, step: str) -> HttpResponse:
    user = _user(request)
    found = selectors.request_get(user=user, request_id=pk)
    try:
        if step == "accept":
            request_services.request_accept(user=user, track_request=found)
        elif step == "decline":
            request_services.request_decline(
                user=user, track_request=found, reason=request.POST.get("reason", "")
            )
        elif step == "deliver":
            revision_id = parse_id(request.POST.get("revision", ""))
            if revision_id is None:
                raise ValidationError("choose a revision to deliver")
            revision = selectors.revision_get(user=user, revision_id=revision_id)
            request_services.request_deliver(user=user, track_request=found, revision=revision)
        elif step == "changes":
            request_services.request_changes(
                user=user, track_request=found, body=request.POST.get("body", "")
            )
        elif step == "approve":
            request_services.request_approve(user=user, track_request=found)
        else:
            raise ValidationError("no such step")
    except (ValidationError, PermissionDenied, Conflict) as exc:
        text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        messages.error(request, text[:1:].upper() + text[1:])
    return redirect("tracks:request-detail", pk=pk)


@login_required
def request_new(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    errors: dict[str, list[str]] = {}
    values = request.POST if request.method == "POST" else request.GET
    if request.method == "POST":
        due: datetime.date | None = None
        tempo: float | None = None
        try:
            due = datetime.date.fromisoformat(values["due_date"]) if values.get("due_date") else None
        except ValueError:
            errors["due_date"] = ["give the date as YYYY-MM-DD"]
        try:
            tempo = float(values["tempo_bpm"]) if values.get("tempo_bpm") else None
        except ValueError:
            errors["tempo_bpm"] = ["give the tempo in beats per minute"]
        if not errors:
            try:
                created = request_services.request_create(
                    performer=user,
                    producer_id=parse_id(values.get("producer", "")) or 0,
                    title=values.get("title", ""),
                    brief=values.get("brief", ""),
                    track_id=parse_id(values.get("track", "")) if values.get("track") else None,
                    key=values.get("key", ""),
                    tempo_bpm=tempo,
                    due_date=due,
                )
            except ValidationError as exc:
                errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
            except PermissionDenied as exc:
                errors = {"__all__": [str(exc)]}
            else:
                messages.success(request, "Your request is sent.")
                return redirect("tracks:request-detail", pk=created.pk)
    producers = User.objects.filter(is_producer=True, is_active=True).exclude(pk=user.pk).order_by("username")
    context = {"values": values, "errors": errors, "producers": producers[:200]}
    return render(request, "tracks/requests_new.html", context, status=400 if errors else 200)
