"""The request state machine: one table of legal steps, one outcome when clicks race."""

from __future__ import annotations

import threading

import pytest
from django.db import close_old_connections, connection

from backtrack.errors import Conflict
from tests.factories import PerformerFactory, TrackFactory
from tracks.models import Notification, RequestStatus, TrackRequest
from tracks.services import requests as request_services


def _take(step: str, track_request: TrackRequest, revision=None):
    producer, performer = track_request.producer, track_request.performer
    if step == "accept":
        return request_services.request_accept(user=producer, track_request=track_request)
    if step == "decline":
        return request_services.request_decline(user=producer, track_request=track_request, reason="No time")
    if step == "deliver":
        return request_services.request_deliver(user=producer, track_request=track_request, revision=revision)
    if step == "changes":
        return request_services.request_changes(user=performer, track_request=track_request, body="Slower")
    return request_services.request_approve(user=performer, track_request=track_request)


LEGAL = {
    ("open", "accept"),
    ("open", "decline"),
    ("accepted", "decline"),
    ("accepted", "deliver"),
    ("changes_requested", "deliver"),
    ("delivered", "changes"),
    ("delivered", "approve"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("status", [choice for choice, _ in RequestStatus.choices])
@pytest.mark.parametrize("step", ["accept", "decline", "deliver", "changes", "approve"])
def test_only_the_legal_steps_move_a_request(status, step):
    # given
    track = TrackFactory()
    track_request = TrackRequest.objects.create(
        performer=PerformerFactory(),
        producer=track.producer,
        title="T",
        brief="B",
        track=track,
        status=status,
        delivered_revision=track.current_revision if status != "open" else None,
    )

    # when / then
    if (status, step) in LEGAL:
        _take(step, track_request, revision=track.current_revision)
        track_request.refresh_from_db()
        assert track_request.status == request_services.STEPS[step].target
        assert Notification.objects.count() == 1
    else:
        with pytest.raises(Conflict, match=f"this request is {RequestStatus(status).label.lower()}"):
            _take(step, track_request, revision=track.current_revision)
        track_request.refresh_from_db()
        assert track_request.status == status
        assert not Notification.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_approve_and_changes_racing_leave_one_outcome_and_one_notification():
    # given: a delivered request, and the performer's approve and changes clicks at the same moment
    track = TrackFactory()
    track_request = TrackRequest.objects.create(
        performer=PerformerFactory(),
        producer=track.producer,
        title="T",
        brief="B",
        track=track,
        status="delivered",
        delivered_revision=track.current_revision,
    )
    steps = ["approve", "changes"] * 3
    barrier = threading.Barrier(len(steps))
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def click(step: str) -> None:
        try:
            fresh = TrackRequest.objects.select_related("producer", "performer", "track").get(
                pk=track_request.pk
            )
            barrier.wait(timeout=10)
            _take(step, fresh)
            outcomes.append(step)
        except Conflict:
            outcomes.append("refused")
        except BaseException as exc:
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    # when
    threads = [threading.Thread(target=click, args=(step,)) for step in steps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # then: one click won, the five others were refused, and the row says what the winner did
    assert errors == []
    winners = [outcome for outcome in outcomes if outcome != "refused"]
    assert len(winners) == 1
    assert outcomes.count("refused") == len(steps) - 1
    track_request.refresh_from_db()
    assert track_request.status == request_services.STEPS[winners[0]].target
    assert Notification.objects.count() == 1
    assert track_request.comments.count() == (1 if winners == ["changes"] else 0)
