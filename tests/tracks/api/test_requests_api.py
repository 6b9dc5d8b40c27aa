"""The request loop through the API: request → accept → deliver → changes → deliver → approve."""

from __future__ import annotations

import datetime

import pytest
from django.core import mail
from django.utils import timezone

from tests.factories import PerformerFactory, ProducerFactory, RevisionFactory, TrackFactory
from tracks.models import Comment, Notification, TrackRequest

pytestmark = pytest.mark.django_db


def _kinds(user) -> list[str]:
    return list(
        Notification.objects.filter(recipient=user)
        .order_by("created_at", "id")
        .values_list("kind", flat=True)
    )


def test_the_full_loop_notifies_the_other_side_at_each_step_and_refuses_illegal_steps(
    client_for, producer, performer, track, django_capture_on_commit_callbacks
):
    singer = client_for(performer)
    maker = client_for(producer)

    # given: a performer asks the producer for a version of their track
    with django_capture_on_commit_callbacks(execute=True):
        created = singer.post(
            "/api/requests/",
            {
                "producer": producer.pk,
                "title": "Harbour Lights for alto",
                "brief": "Down a fourth, softer drums.",
                "track": track.pk,
                "key": "a minor",
                "tempo_bpm": 96,
                "due_date": str(timezone.localdate() + datetime.timedelta(days=7)),
            },
            format="json",
        )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["status"] == "open"
    assert body["key"] == "A minor"
    request_id = body["id"]
    assert _kinds(producer) == ["request_new"]
    assert any("Harbour Lights for alto" in message.body for message in mail.outbox)
    url = f"/api/requests/{request_id}"

    # an illegal step: delivering before accepting
    refused = maker.post(f"{url}/deliver/", {"revision": track.current_revision.pk}, format="json")
    assert refused.status_code == 409
    assert "open" in refused.json()["detail"]

    # the wrong side: the performer cannot accept their own request
    assert singer.post(f"{url}/accept/").status_code == 403

    accepted = maker.post(f"{url}/accept/")
    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["status"] == "accepted"
    assert _kinds(performer) == ["request_accepted"]

    # accepting twice is refused with a reason
    again = maker.post(f"{url}/accept/")
    assert again.status_code == 409
    assert again.json()["detail"] == "this request is accepted; only a request that is open can be accepted"

    first = RevisionFactory(track=track, number=2, seed=1)
    delivered = maker.post(f"{url}/deliver/", {"revision": first.pk}, format="json")
    assert delivered.status_code == 200, delivered.content
    assert delivered.json()["status"] == "delivered"
    assert delivered.json()["delivered_revision"] == first.pk
    assert _kinds(performer)[-1] == "request_delivered"

    changes = singer.post(f"{url}/changes/", {"body": "The bridge is too busy."}, format="json")
    assert changes.status_code == 200, changes.content
    assert changes.json()["status"] == "changes_requested"
    comment = Comment.objects.get(pk=changes.json()["comment"])
    assert comment.track_id == track.pk
    assert comment.track_request_id == request_id
    assert comment.revision_id == first.pk
    assert _kinds(producer)[-1] == "request_changes"

    # approving what is not delivered is refused
    assert singer.post(f"{url}/approve/").status_code == 409

    second = RevisionFactory(track=track, number=3, seed=2)
    assert maker.post(f"{url}/deliver/", {"revision": second.pk}, format="json").status_code == 200
    approved = singer.post(f"{url}/approve/")
    assert approved.status_code == 200, approved.content
    assert approved.json()["status"] == "approved"
    assert approved.json()["delivered_revision"] == second.pk
    assert approved.json()["approved_at"] is not None

    assert _kinds(performer) == ["request_accepted", "request_delivered", "request_delivered"]
    assert _kinds(producer) == ["request_new", "request_changes", "request_approved"]
    # nothing moves a finished request
    assert maker.post(f"{url}/decline/", {"reason": "too late"}, format="json").status_code == 409
    assert singer.post(f"{url}/changes/", {"body": "one more"}, format="json").status_code == 409


def test_a_request_is_not_found_for_anyone_but_its_two_parties(client_for, producer, performer):
    track_request = TrackRequest.objects.create(performer=performer, producer=producer, title="T", brief="B")
    stranger = client_for(PerformerFactory())

    assert stranger.get(f"/api/requests/{track_request.pk}/").status_code == 404
    assert stranger.post(f"/api/requests/{track_request.pk}/accept/").status_code == 404
    assert client_for(producer).get(f"/api/requests/{track_request.pk}/").status_code == 200
    assert client_for(performer).get(f"/api/requests/{track_request.pk}/").status_code == 200
    track_request.refresh_from_db()
    assert track_request.status == "open"


def test_decline_needs_a_reason_and_tells_the_performer(client_for, producer, performer):
    track_request = TrackRequest.objects.create(performer=performer, producer=producer, title="T", brief="B")
    maker = client_for(producer)

    assert (
        maker.post(f"/api/requests/{track_request.pk}/decline/", {"reason": " "}, format="json").status_code
        == 400
    )
    response = maker.post(
        f"/api/requests/{track_request.pk}/decline/", {"reason": "Booked out"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["decline_reason"] == "Booked out"
    assert Notification.objects.get(recipient=performer).kind == "request_declined"


def test_list_shows_the_callers_own_requests_filtered_by_status(client_for, producer, performer):
    mine = TrackRequest.objects.create(performer=performer, producer=producer, title="Mine", brief="B")
    TrackRequest.objects.create(
        performer=performer, producer=producer, title="Done", brief="B", status="approved"
    )
    TrackRequest.objects.create(
        performer=PerformerFactory(), producer=ProducerFactory(), title="Not mine", brief="B"
    )

    listing = client_for(performer).get("/api/requests/?status=open").json()
    everything = client_for(producer).get("/api/requests/").json()

    assert [row["id"] for row in listing["results"]] == [mine.pk]
    assert listing["results"][0]["waits_on"] == "producer"
    assert sorted(row["title"] for row in everything["results"]) == ["Done", "Mine"]


def test_bad_requests_are_refused_with_reasons_and_leave_no_row(client_for, performer, producer):
    other_track = TrackFactory()
    singer = client_for(performer)

    cases = [
        ({"producer": performer.pk, "title": "T", "brief": "B"}, "producer"),
        ({"producer": producer.pk, "title": "T", "brief": "B", "track": other_track.pk}, "track"),
        ({"producer": producer.pk, "title": "T", "brief": "B", "key": "H major"}, "key"),
        ({"producer": producer.pk, "title": "T", "brief": "B", "tempo_bpm": 900}, "tempo_bpm"),
        ({"producer": producer.pk, "title": "T", "brief": "B", "due_date": "2001-01-01"}, "due_date"),
    ]
    for payload, field in cases:
        response = singer.post("/api/requests/", payload, format="json")
        assert response.status_code == 400, payload
        assert field in response.json()["errors"], response.json()
    # a producer-only account cannot order tracks
    assert (
        client_for(producer)
        .post("/api/requests/", {"producer": ProducerFactory().pk, "title": "T", "brief": "B"}, format="json")
        .status_code
        == 403
    )
    assert not TrackRequest.objects.exists()


def test_deliver_refuses_a_revision_of_another_track_or_another_producer(
    client_for, producer, performer, track
):
    track_request = TrackRequest.objects.create(
        performer=performer, producer=producer, title="T", brief="B", track=track, status="accepted"
    )
    own_other = TrackFactory(producer=producer)
    foreign = TrackFactory()
    maker = client_for(producer)

    for revision in (own_other.current_revision, foreign.current_revision):
        response = maker.post(
            f"/api/requests/{track_request.pk}/deliver/", {"revision": revision.pk}, format="json"
        )
        assert response.status_code == 400
    track_request.refresh_from_db()
    assert track_request.status == "accepted"
    assert track_request.delivered_revision is None


def test_deliver_without_a_named_track_makes_the_delivered_track_the_requests(
    client_for, producer, performer
):
    track_request = TrackRequest.objects.create(
        performer=performer, producer=producer, title="T", brief="B", status="accepted"
    )
    new_track = TrackFactory(producer=producer)

    response = client_for(producer).post(
        f"/api/requests/{track_request.pk}/deliver/",
        {"revision": new_track.current_revision.pk},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["track"] == new_track.pk


def test_overdue_is_marked_until_approved(client_for, producer, performer):
    late = TrackRequest.objects.create(
        performer=performer,
        producer=producer,
        title="Late",
        brief="B",
        due_date=timezone.localdate() - datetime.timedelta(days=1),
    )
    finished = TrackRequest.objects.create(
        performer=performer,
        producer=producer,
        title="Finished",
        brief="B",
        status="approved",
        due_date=timezone.localdate() - datetime.timedelta(days=1),
    )
    client = client_for(performer)

    assert client.get(f"/api/requests/{late.pk}/").json()["overdue"] is True
    assert client.get(f"/api/requests/{finished.pk}/").json()["overdue"] is False


def test_deliver_refuses_a_track_the_performer_cannot_hear(client_for, producer, performer, private_track):
    track_request = TrackRequest.objects.create(
        performer=performer, producer=producer, title="T", brief="B", status="accepted"
    )

    response = client_for(producer).post(
        f"/api/requests/{track_request.pk}/deliver/",
        {"revision": private_track.current_revision.pk},
        format="json",
    )

    assert response.status_code == 400
    assert "make it public" in response.json()["detail"]
    track_request.refresh_from_db()
    assert (track_request.status, track_request.track_id) == ("accepted", None)
    assert not Notification.objects.exists()
