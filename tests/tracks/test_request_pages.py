"""Request and review pages: the inbox, the steps, the track page's brief, approval, diff grid and
suggestions."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from tests.factories import CommentFactory, PerformerFactory, RevisionFactory
from tests.tracks.api.test_review_api import _revision_of
from tests.tracks.engine.test_diff import _song
from tracks.models import Render, TrackRequest

pytestmark = pytest.mark.django_db


def _request(performer, producer, **fields):
    return TrackRequest.objects.create(performer=performer, producer=producer, brief="In A minor", **fields)


def test_the_inbox_puts_what_waits_on_you_first_and_marks_overdue(client, producer, performer):
    # given: one request waiting on the producer (and overdue), one waiting on the performer
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    late = _request(performer, producer, title="Late one", due_date=yesterday)
    _request(performer, producer, title="Their move", status="delivered")
    client.force_login(producer)

    # when
    page = client.get("/requests/").content.decode()

    # then
    waiting = page[page.index("Waiting on you") : page.index("Delivered</h2>")]
    assert "Late one" in waiting
    assert "Their move" not in waiting
    assert f'id="request-{late.pk}"' in waiting
    assert "Overdue" in waiting


def test_the_producer_accepts_on_the_request_page_and_an_illegal_step_shows_the_reason(
    client, producer, performer
):
    found = _request(performer, producer, title="Ballad")
    client.force_login(producer)

    assert "Accept</button>" in client.get(f"/requests/{found.pk}/").content.decode()
    response = client.post(f"/requests/{found.pk}/accept/")
    assert response.status_code == 302
    found.refresh_from_db()
    assert found.status == "accepted"

    again = client.post(f"/requests/{found.pk}/accept/", follow=True).content.decode()
    assert "only a request that is open can be accepted" in again


def test_a_stranger_cannot_see_or_move_a_request(client, producer, performer):
    found = _request(performer, producer, title="Ballad")
    client.force_login(PerformerFactory())

    assert client.get(f"/requests/{found.pk}/").status_code == 404
    assert client.post(f"/requests/{found.pk}/accept/").status_code == 404
    found.refresh_from_db()
    assert found.status == "open"


def test_a_performer_orders_a_track_with_the_form(client, producer, performer):
    client.force_login(performer)

    response = client.post(
        "/requests/new/", {"producer": producer.pk, "title": "Jolene", "brief": "Lower", "key": "C minor"}
    )

    assert response.status_code == 302
    created = TrackRequest.objects.get()
    assert (created.title, created.key, created.producer_id) == ("Jolene", "C minor", producer.pk)
    bad = client.post("/requests/new/", {"producer": producer.pk, "title": "", "brief": "x"})
    assert bad.status_code == 400
    assert TrackRequest.objects.count() == 1


def test_the_track_page_shows_the_brief_beside_the_delivered_revision_and_who_approved(
    client, producer, performer, track
):
    # given: revision 2 delivered for a request and approved
    delivered = RevisionFactory(track=track, number=2, seed=3)
    track.current_revision = delivered
    track.save()
    _request(
        performer,
        producer,
        title="Alto version",
        track=track,
        status="approved",
        delivered_revision=delivered,
        approved_at=timezone.now(),
    )

    # when
    client.force_login(performer)
    as_performer = client.get(f"/tracks/{track.pk}/").content.decode()
    client.force_login(PerformerFactory())
    as_stranger = client.get(f"/tracks/{track.pk}/").content.decode()

    # then
    assert f"Approved by {performer.display_name}" in as_performer
    assert "Delivered for" in as_performer
    assert "In A minor" in as_performer
    assert f"Approved by {performer.display_name}" in as_stranger
    assert "In A minor" not in as_stranger  # the brief is for the request's two parties


def test_the_track_page_shows_the_bars_by_parts_grid(client, track):
    _revision_of(track, 2, _song())
    third = _revision_of(track, 3, _song(bass_shift=dict.fromkeys(range(17, 25), 2)))
    track.current_revision = third
    track.save()

    page = client.get(f"/tracks/{track.pk}/").content.decode()

    assert "Bars changed since the previous revision" in page
    assert page.count('class="diff-changed"') == 8
    assert "bars 17\u201324" in page


def test_a_suggestion_in_the_thread_says_what_it_changes_and_listen_renders_it(
    client, producer, performer, track, enqueued, django_capture_on_commit_callbacks
):
    comment = CommentFactory(track=track, author=performer, settings={"transpose": -2, "tempo": 0.9})
    client.force_login(producer)

    page = client.get(f"/tracks/{track.pk}/").content.decode()
    assert "Suggests: \u22122 semitones, 0.9\u00d7" in page
    assert ">Listen</button>" in page
    assert "Make it the recommended variant" in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/comments/{comment.pk}/listen/")
    render = Render.objects.get()
    assert response.status_code == 302
    assert response["Location"].endswith(f"?render={render.pk}#listen")
    assert render.settings["transpose"] == -2
    assert enqueued == [render.pk]

    client.post(f"/comments/{comment.pk}/recommend/")
    track.refresh_from_db()
    assert track.recommended_settings == comment.settings


def test_a_comment_pinned_to_a_bar_says_when_a_later_revision_changed_that_bar(client, performer, track):
    # given: comments pinned to bars 20 and 5 of revision 2; revision 3 changes bars 17-24
    second = _revision_of(track, 2, _song())
    third = _revision_of(track, 3, _song(bass_shift=dict.fromkeys(range(17, 25), 2)))
    track.current_revision = third
    track.save()
    CommentFactory(track=track, author=performer, revision=second, at_bar=20, at_beat=1.0, body="Bar twenty")
    CommentFactory(track=track, author=performer, revision=second, at_bar=5, at_beat=1.0, body="Bar five")

    # when
    page = client.get(f"/tracks/{track.pk}/").content.decode()

    # then
    assert "Bar 20 changed in revision 3" in page
    assert "Bar 5 changed" not in page


def test_a_performer_orders_a_version_from_the_track_page(client, performer, track):
    client.force_login(performer)
    page = client.get(f"/tracks/{track.pk}/").content.decode()
    assert "Request a version of this track" in page

    form = client.get(
        f"/requests/new/?producer={track.producer_id}&track={track.pk}&title=X"
    ).content.decode()
    assert f'<input type="hidden" name="track" value="{track.pk}">' in form
    response = client.post(
        "/requests/new/",
        {"producer": track.producer_id, "track": track.pk, "title": "Mine", "brief": "Lower"},
    )

    assert response.status_code == 302
    assert TrackRequest.objects.get().track_id == track.pk
