"""Track requests: a performer orders a track, the producer accepts, delivers and revises, the performer
asks for changes or approves.

The legal steps live in one table (``STEPS``); every step locks the request row first, so two clicks
racing on one request leave one outcome, and the loser gets ``RequestConflict`` (409) with the reason.
Every step notifies the other side, in the app and by email.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from backtrack.errors import Conflict
from backtrack.text import excerpt
from performers.models import User
from tracks import rules, selectors
from tracks.engine import key_name
from tracks.engine.notes import parse_key
from tracks.models import Comment, NotificationKind, RequestStatus, Revision, Track, TrackRequest
from tracks.services.notifications import notification_create

TEMPO_BPM_RANGE = (20.0, 300.0)


class RequestConflict(Conflict):
    """The step does not fit the request's current status."""


@dataclass(frozen=True)
class Step:
    actor: str  # "producer" or "performer": who may take the step
    sources: tuple[str, ...]  # statuses the step may start from
    target: str
    kind: NotificationKind
    done: str  # past tense for the reason of a refused step


# The one table of legal steps: open → accepted → delivered → approved, or changes_requested → delivered.
STEPS: dict[str, Step] = {
    "accept": Step(
        "producer",
        (RequestStatus.OPEN,),
        RequestStatus.ACCEPTED,
        NotificationKind.REQUEST_ACCEPTED,
        "accepted",
    ),
    "decline": Step(
        "producer",
        (RequestStatus.OPEN, RequestStatus.ACCEPTED),
        RequestStatus.DECLINED,
        NotificationKind.REQUEST_DECLINED,
        "declined",
    ),
    "deliver": Step(
        "producer",
        (RequestStatus.ACCEPTED, RequestStatus.CHANGES_REQUESTED),
        RequestStatus.DELIVERED,
        NotificationKind.REQUEST_DELIVERED,
        "delivered",
    ),
    "changes": Step(
        "performer",
        (RequestStatus.DELIVERED,),
        RequestStatus.CHANGES_REQUESTED,
        NotificationKind.REQUEST_CHANGES,
        "sent back for changes",
    ),
    "approve": Step(
        "performer",
        (RequestStatus.DELIVERED,),
        RequestStatus.APPROVED,
        NotificationKind.REQUEST_APPROVED,
        "approved",
    ),
}


def request_url(track_request: TrackRequest) -> str:
    return reverse("tracks:request-detail", kwargs={"pk": track_request.pk})


def _status_label(status: str) -> str:
    return str(RequestStatus(status).label).lower()


def _clean_key(value: str, errors: dict[str, list[str]]) -> str:
    if not value.strip():
        return ""
    try:
        tonic, mode = parse_key(value.strip())
    except ValueError as exc:
        errors["key"] = [str(exc)]
        return ""
    return key_name(tonic, mode)


def request_create(
    *,
    performer: User,
    producer_id: int,
    title: str,
    brief: str,
    track_id: int | None = None,
    key: str = "",
    tempo_bpm: float | None = None,
    due_date: datetime.date | None = None,
) -> TrackRequest:
    """A performer asks a producer for a track; the producer is notified."""
    if not performer.is_authenticated or not performer.is_performer:
        raise PermissionDenied("only performers can request tracks")
    errors: dict[str, list[str]] = {}
    producer = User.objects.filter(pk=producer_id, is_active=True, is_producer=True).first()
    if producer is None:
        errors["producer"] = ["no such producer"]
    elif producer.pk == performer.pk:
        errors["producer"] = ["you cannot request a track from yourself"]
    title = rules.text_field(title, field="title", limit=rules.TITLE_MAX, errors=errors)
    if not title and "title" not in errors:
        errors["title"] = ["a request needs a title"]
    brief = rules.text_field(brief, field="brief", limit=rules.TEXT_MAX, errors=errors, multiline=True)
    if not brief and "brief" not in errors:
        errors["brief"] = ["say what you would like: the brief cannot be empty"]
    track: Track | None = None
    if track_id is not None:
        track = Track.objects.filter(selectors.track_visible_q(user=performer), pk=track_id).first()
        if track is None:
            errors["track"] = ["no such track"]
        elif producer is not None and track.producer_id != producer.pk:
            errors["track"] = ["that track is not this producer's"]
    key = _clean_key(key or "", errors)
    if tempo_bpm is not None and not TEMPO_BPM_RANGE[0] <= tempo_bpm <= TEMPO_BPM_RANGE[1]:
        errors["tempo_bpm"] = [f"tempo must be between {TEMPO_BPM_RANGE[0]:g} and {TEMPO_BPM_RANGE[1]:g} bpm"]
    if due_date is not None and due_date < timezone.localdate():
        errors["due_date"] = ["the due date is in the past"]
    if errors:
        raise ValidationError(errors)
    assert producer is not None
    with transaction.atomic():
        track_request = TrackRequest.objects.create(
            performer=performer,
            producer=producer,
            title=title,
            brief=brief,
            track=track,
            key=key,
            tempo_bpm=round(tempo_bpm, 2) if tempo_bpm is not None else None,
            due_date=due_date,
        )
        notification_create(
            recipient=producer,
            kind=NotificationKind.REQUEST_NEW,
            text=f"{performer.display_name} asked you for a track: “{title}”",
            url=request_url(track_request),
        )
    return track_request


def _lock_request(request_id: int) -> TrackRequest:
    """Lock one request row for the current transaction (a no-op UPDATE first, as ``_lock_render``
    does, so SQLite takes its write lock at once instead of failing on an upgrade)."""
    TrackRequest.objects.filter(pk=request_id).update(status=F("status"))
    return (
        TrackRequest.objects.select_for_update(of=("self",))
        .select_related("performer", "producer", "track")
        .get(pk=request_id)
    )


def _check_step(*, user: User, track_request: TrackRequest, name: str) -> Step:
    step = STEPS[name]
    if user.pk not in (track_request.performer_id, track_request.producer_id):
        raise Http404("no such request")
    actor_id = track_request.producer_id if step.actor == "producer" else track_request.performer_id
    if user.pk != actor_id:
        raise PermissionDenied(f"only the request's {step.actor} can do that")
    if track_request.status not in step.sources:
        allowed = " or ".join(_status_label(source) for source in step.sources)
        raise RequestConflict(
            f"this request is {_status_label(track_request.status)}; only a request that is {allowed} "
            f"can be {step.done}"
        )
    return step


def _notify(*, user: User, track_request: TrackRequest, step: Step, text: str) -> None:
    other = track_request.performer if step.actor == "producer" else track_request.producer
    notification_create(recipient=other, kind=step.kind, text=text, url=request_url(track_request))


def _step(*, user: User, track_request: TrackRequest, name: str, text: str, **changes: Any) -> TrackRequest:
    """Check and take one step under the row lock; ``changes`` are the fields it sets besides status."""
    with transaction.atomic():
        locked = _lock_request(track_request.pk)
        step = _check_step(user=user, track_request=locked, name=name)
        locked.status = step.target
        for field, value in changes.items():
            setattr(locked, field, value)
        locked.save(update_fields=["status", "updated_at", *changes])
        _notify(user=user, track_request=locked, step=step, text=text)
    return locked


def request_accept(*, user: User, track_request: TrackRequest) -> TrackRequest:
    who = user.display_name
    return _step(
        user=user,
        track_request=track_request,
        name="accept",
        text=f"{who} accepted your request “{track_request.title}”",
    )


def request_decline(*, user: User, track_request: TrackRequest, reason: str) -> TrackRequest:
    errors: dict[str, list[str]] = {}
    reason = rules.text_field(reason, field="reason", limit=rules.TEXT_MAX, errors=errors, multiline=True)
    if not reason and "reason" not in errors:
        errors["reason"] = ["say why you decline"]
    if errors:
        raise ValidationError(errors)
    who = user.display_name
    return _step(
        user=user,
        track_request=track_request,
        name="decline",
        text=f"{who} declined your request “{track_request.title}”: “{excerpt(reason)}”",
        decline_reason=reason,
    )


def request_deliver(*, user: User, track_request: TrackRequest, revision: Revision) -> TrackRequest:
    """The producer delivers a revision of the named track (or, with none named, of any of their own
    tracks, which becomes the request's track). The performer must be able to hear it."""
    track = revision.track
    if track.producer_id != track_request.producer_id:
        raise ValidationError({"revision": ["that revision is not of one of your tracks"]})
    if track_request.track_id is not None and track.pk != track_request.track_id:
        raise ValidationError({"revision": ["deliver a revision of the requested track"]})
    if not selectors.track_is_visible(track=track, user=track_request.performer):
        raise ValidationError({"revision": ["the performer cannot see that track: make it public first"]})
    who = user.display_name
    return _step(
        user=user,
        track_request=track_request,
        name="deliver",
        text=f"{who} delivered revision {revision.number} for your request “{track_request.title}”",
        delivered_revision=revision,
        track=track,
    )


def request_changes(*, user: User, track_request: TrackRequest, body: str) -> tuple[TrackRequest, Comment]:
    """The performer asks for changes: a comment in the track's thread, linked to the request."""
    errors: dict[str, list[str]] = {}
    body = rules.text_field(body, field="body", limit=rules.COMMENT_MAX, errors=errors, multiline=True)
    if not body and "body" not in errors:
        errors["body"] = ["say what should change"]
    if errors:
        raise ValidationError(errors)
    who = user.display_name
    with transaction.atomic():
        changed = _step(
            user=user,
            track_request=track_request,
            name="changes",
            text=f"{who} asked for changes to “{track_request.title}”: “{excerpt(body)}”",
        )
        assert changed.track is not None  # a delivered request always has its track
        comment = Comment.objects.create(
            track=changed.track,
            author=user,
            body=body,
            revision=changed.delivered_revision,
            track_request=changed,
        )
    return changed, comment


def request_approve(*, user: User, track_request: TrackRequest) -> TrackRequest:
    who = user.display_name
    return _step(
        user=user,
        track_request=track_request,
        name="approve",
        text=f"{who} approved your delivery for “{track_request.title}”",
        approved_at=timezone.now(),
    )
