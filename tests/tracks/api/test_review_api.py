"""Suggestions that can be heard, the recommended variant, and the revision diff through the API."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.base import ContentFile

from tests.factories import CommentFactory, PerformerFactory, RevisionFactory
from tests.tracks.engine.test_diff import _song
from tracks.engine import load_arrangement
from tracks.models import Comment, Render

pytestmark = pytest.mark.django_db

SUGGESTION = {"transpose": -2, "tempo": 0.9, "mix": {"3": {"gain_db": -6}}}


def test_a_comment_with_settings_says_what_it_changes_and_offers_a_listen_url(client_for, performer, track):
    # when
    response = client_for(performer).post(
        f"/api/tracks/{track.pk}/comments/",
        {"body": "Try it like this", "settings": SUGGESTION},
        format="json",
    )

    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["settings"]["transpose"] == -2
    assert body["settings"]["mix"] == {"3": {"gain_db": -6.0, "mute": False, "solo": False}}
    assert body["settings_summary"] == "\u22122 semitones, 0.9\u00d7, Piano \u22126 dB"
    assert body["listen_url"].endswith(f"/api/comments/{body['id']}/listen/")
    listed = client_for(performer).get(f"/api/tracks/{track.pk}/comments/").json()["results"][0]
    assert listed["listen_url"] == body["listen_url"]


def test_a_plain_comment_has_no_settings_and_no_listen_url(client_for, performer, track):
    body = (
        client_for(performer)
        .post(f"/api/tracks/{track.pk}/comments/", {"body": "Nice"}, format="json")
        .json()
    )

    assert body["settings"] is None
    assert body["listen_url"] is None
    assert body["settings_summary"] == ""


@pytest.mark.parametrize(
    ("suggested", "reason"),
    [
        ({"transpose": 40}, "transpose must be between"),
        ({"mix": {"9": {"gain_db": -3}}}, "there is no part 9"),
        ({"loudness": 3}, "unknown setting"),
    ],
)
def test_invalid_suggested_settings_are_refused_and_leave_no_comment(
    client_for, performer, track, suggested, reason
):
    response = client_for(performer).post(
        f"/api/tracks/{track.pk}/comments/", {"body": "Try", "settings": suggested}, format="json"
    )

    assert response.status_code == 400
    assert reason in response.json()["errors"]["settings"][0]
    assert not Comment.objects.exists()


def test_listen_renders_the_suggestion_once_for_everyone_exactly_as_a_render_request(
    client_for, performer, track, enqueued, django_capture_on_commit_callbacks
):
    # given: a suggestion on the track
    client = client_for(performer)
    comment = client.post(
        f"/api/tracks/{track.pk}/comments/", {"body": "Try", "settings": SUGGESTION}, format="json"
    ).json()

    # when: its author and another performer listen, and a third asks for the same render directly
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(comment["listen_url"])
    second = client_for(PerformerFactory()).post(comment["listen_url"])
    direct = client_for(PerformerFactory()).post(
        "/api/renders/", {"revision": track.current_revision.pk, **SUGGESTION}, format="json"
    )

    # then: one render, one task, the same answer
    assert first.status_code == second.status_code == direct.status_code == 202
    assert first.json()["id"] == second.json()["id"] == direct.json()["id"]
    assert first.json()["transpose"] == -2
    assert first.json()["tempo"] == 0.9
    assert Render.objects.count() == 1
    assert enqueued == [first.json()["id"]]


def test_listen_to_a_comment_without_settings_is_refused(client_for, performer, track):
    comment = CommentFactory(track=track, author=performer)

    response = client_for(performer).post(f"/api/comments/{comment.pk}/listen/")

    assert response.status_code == 400
    assert "no settings" in response.json()["detail"]
    assert not Render.objects.exists()


def test_listen_on_a_private_track_is_not_found_for_others(client_for, private_track):
    comment = CommentFactory(track=private_track, author=private_track.producer, settings={"transpose": 1})

    assert client_for(PerformerFactory()).post(f"/api/comments/{comment.pk}/listen/").status_code == 404


def test_the_producer_applies_a_suggestion_as_the_recommended_variant(client_for, producer, performer, track):
    comment = (
        client_for(performer)
        .post(f"/api/tracks/{track.pk}/comments/", {"body": "Try", "settings": SUGGESTION}, format="json")
        .json()
    )

    refused = client_for(performer).post(f"/api/comments/{comment['id']}/recommend/")
    applied = client_for(producer).post(f"/api/comments/{comment['id']}/recommend/")

    assert refused.status_code == 403
    assert applied.status_code == 200, applied.content
    assert applied.json()["settings_summary"].startswith("\u22122 semitones")
    track.refresh_from_db()
    assert track.recommended_settings == comment["settings"]


def _revision_of(track, number: int, data: bytes):
    return RevisionFactory(
        track=track,
        number=number,
        midi=ContentFile(data, name=f"r{number}.mid"),
        midi_sha256=hashlib.sha256(data).hexdigest(),
        analysis=load_arrangement(data).analysis,
    )


def test_diff_against_the_previous_revision_by_default_and_against_any(api_client, track):
    # given: revision 2 and 3 of constructed songs, 3 with the bass changed in bars 17-24
    second = _revision_of(track, 2, _song())
    third = _revision_of(track, 3, _song(bass_shift=dict.fromkeys(range(17, 25), 2)))

    # when
    default = api_client.get(f"/api/revisions/{third.pk}/diff/")
    against_same = api_client.get(f"/api/revisions/{third.pk}/diff/?against={third.pk}")

    # then
    assert default.status_code == 200, default.content
    body = default.json()
    assert body["against"] == second.pk
    assert body["tempo_changed"] is False
    assert body["key_changed"] is False
    assert body["bars_before"] == body["bars_after"] == 32
    assert {part["name"]: part["changed_bars"] for part in body["parts"]} == {
        "Melody": [],
        "Bass": [[17, 24]],
        "Strings": [],
    }
    assert [part["status"] for part in body["parts"]] == ["same", "changed", "same"]
    assert {part["status"] for part in against_same.json()["parts"]} == {"same"}


def test_diff_refuses_a_revision_of_another_track_and_hides_private_tracks(api_client, track, private_track):
    response = api_client.get(
        f"/api/revisions/{track.current_revision.pk}/diff/?against={private_track.current_revision.pk}"
    )

    assert response.status_code == 400
    assert "no such revision of this track" in response.json()["detail"]
    assert api_client.get(f"/api/revisions/{private_track.current_revision.pk}/diff/").status_code == 404


def test_the_first_revision_has_every_part_added(api_client, track):
    body = api_client.get(f"/api/revisions/{track.current_revision.pk}/diff/").json()

    assert body["against"] is None
    assert {part["status"] for part in body["parts"]} == {"added"}
