import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from backtrack.api.throttles import UploadThrottle
from tests.conftest import stored_files
from tests.factories import PerformerFactory, ProducerFactory, TrackFactory, genre
from tracks.models import Revision, Track

pytestmark = pytest.mark.django_db

# The engine's refusals, each through the upload endpoint: (file bytes, words the reason contains).
BAD_FILES = [
    (b"", "empty"),
    (b"ID3\x03\x00\x00\x00\x00\x00\x00 not midi at all", "MThd"),
    (b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0", "no tracks"),
    (b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x7f\xff\xff\xff\x00", "chunk"),
    (b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\xe7\x28MTrk\x00\x00\x00\x04\x00\xff\x2f\x00", "SMPTE"),
    (b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0MTrk\x00\x00\x00\x04\x00\xff\x2f\x00", "no notes"),
    (
        b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0MTrk\x00\x00\x00\x0c\xff\xff\xff\xff\x7f\x90\x3c\x40\x00\xff\x2f\x00",
        "delta",
    ),
]


def upload(client, midi_upload, data=None, **fields):
    payload = {"title": "Blue Hour", "genre": "pop", "midi": midi_upload(data), **fields}
    return client.post("/api/tracks/", payload, format="multipart")


def test_a_producer_uploads_a_track(client_for, producer, midi_upload):
    # when
    response = upload(client_for(producer), midi_upload, description="Ballad", is_public="false")

    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["title"] == "Blue Hour"
    assert body["genre"] == "pop"
    assert body["is_public"] is False
    revision = body["current_revision"]
    assert revision["number"] == 1
    analysis = revision["analysis"]
    assert {"duration_s", "tempo_bpm", "key", "time_signature", "parts", "melody_part"} <= set(analysis)
    assert {"index", "name", "program", "is_drum", "role", "notes", "low", "high"} <= set(
        analysis["parts"][0]
    )
    assert Track.objects.get(pk=body["id"]).producer == producer


def test_a_performer_may_not_upload(client_for, performer, midi_upload, isolated_media):
    response = upload(client_for(performer), midi_upload)
    assert response.status_code == 403
    assert response.json()["detail"] == "only producers upload tracks"
    assert Track.objects.count() == 0
    assert stored_files(isolated_media) == []


def test_anonymous_upload_is_refused(api_client, midi_upload):
    response = upload(api_client, midi_upload)
    assert response.status_code == 401
    assert Track.objects.count() == 0


@pytest.mark.parametrize(("data", "reason"), BAD_FILES)
def test_a_bad_midi_file_is_400_with_the_engine_reason_and_leaves_nothing(
    client_for, producer, midi_upload, isolated_media, data, reason
):
    # when
    response = upload(client_for(producer), midi_upload, data)

    # then
    assert response.status_code == 400, response.content
    body = response.json()
    assert reason.lower() in body["errors"]["midi"][0].lower()
    assert body["detail"].startswith("midi: ")
    assert Track.objects.count() == 0
    assert Revision.objects.count() == 0
    assert stored_files(isolated_media) == []


def test_a_file_over_the_size_limit_is_400(client_for, producer, midi_upload, settings):
    settings.MIDI_MAX_BYTES = 64
    response = upload(client_for(producer), midi_upload)
    assert response.status_code == 400
    assert "limit" in response.json()["errors"]["midi"][0]


def test_missing_fields_are_400_with_reasons(client_for, producer):
    response = client_for(producer).post("/api/tracks/", {"title": ""}, format="multipart")
    assert response.status_code == 400
    assert {"title", "genre", "midi"} <= set(response.json()["errors"])


def test_the_upload_throttle_answers_429(client_for, producer, midi_upload, monkeypatch):
    monkeypatch.setattr(UploadThrottle, "THROTTLE_RATES", {"uploads": "2/hour"})
    client = client_for(producer)

    codes = [upload(client, midi_upload, title=f"Song {n}").status_code for n in range(3)]

    assert codes == [201, 201, 429]
    assert Track.objects.count() == 2
    assert client.get("/api/tracks/").status_code == 200


def test_the_producer_uploads_revision_2(client_for, track, midi_upload):
    response = client_for(track.producer).post(
        f"/api/tracks/{track.pk}/revisions/",
        {"midi": midi_upload(), "notes": "Softer brass"},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    assert (response.json()["number"], response.json()["notes"]) == (2, "Softer brass")
    detail = client_for(track.producer).get(f"/api/tracks/{track.pk}/").json()
    assert detail["current_revision"]["number"] == 2
    listing = client_for(track.producer).get(f"/api/tracks/{track.pk}/revisions/").json()
    assert [revision["number"] for revision in listing] == [2, 1]


@pytest.mark.parametrize("who", ["performer", "other_producer"])
def test_only_the_tracks_producer_uploads_revisions(client_for, track, midi_upload, who):
    user = PerformerFactory() if who == "performer" else ProducerFactory()
    response = client_for(user).post(
        f"/api/tracks/{track.pk}/revisions/", {"midi": midi_upload()}, format="multipart"
    )
    assert response.status_code == 403
    assert "producer" in response.json()["detail"]
    assert track.revisions.count() == 1


def test_the_wrong_role_is_403_even_when_the_request_is_also_incomplete(client_for, track):
    # the role decides first: a performer or a stranger learns they may not, not which fields are missing
    performer, stranger = client_for(PerformerFactory()), client_for(ProducerFactory())
    assert performer.post("/api/tracks/", {"title": "x"}, format="multipart").status_code == 403
    revision = stranger.post(f"/api/tracks/{track.pk}/revisions/", {"notes": "x"}, format="multipart")
    assert revision.status_code == 403
    edit = stranger.patch(f"/api/tracks/{track.pk}/", {"title": ""}, format="json")
    assert edit.status_code == 403
    assert track.revisions.count() == 1


def test_revision_upload_to_a_private_track_of_someone_else_is_404(client_for, private_track, midi_upload):
    response = client_for(ProducerFactory()).post(
        f"/api/tracks/{private_track.pk}/revisions/", {"midi": midi_upload()}, format="multipart"
    )
    assert response.status_code == 404


def test_a_bad_revision_file_is_400(client_for, track, midi_upload):
    response = client_for(track.producer).post(
        f"/api/tracks/{track.pk}/revisions/", {"midi": midi_upload(b"MThd")}, format="multipart"
    )
    assert response.status_code == 400
    assert "midi" in response.json()["errors"]


def test_list_and_filters(api_client):
    rock = TrackFactory(title="Thunder Road", genre=genre("rock"))
    TrackFactory(title="Sugar", genre=genre("pop"))
    TrackFactory(title="Hidden thunder", is_public=False)

    by_genre = api_client.get("/api/tracks/?genre=rock").json()
    by_text = api_client.get("/api/tracks/?q=thunder").json()

    assert [row["id"] for row in by_genre["results"]] == [rock.pk]
    assert [row["id"] for row in by_text["results"]] == [rock.pk]
    row = by_text["results"][0]
    assert row["current_revision"]["key"]
    assert row["current_revision"]["tempo_bpm"]


def test_private_tracks_are_404_for_strangers_and_visible_to_their_producer(
    api_client, client_for, private_track
):
    assert api_client.get(f"/api/tracks/{private_track.pk}/").status_code == 404
    assert client_for(PerformerFactory()).get(f"/api/tracks/{private_track.pk}/").status_code == 404
    assert client_for(private_track.producer).get(f"/api/tracks/{private_track.pk}/").status_code == 200
    assert api_client.get("/api/tracks/").json()["count"] == 0


def test_pagination(api_client):
    TrackFactory.create_batch(5)
    page = api_client.get("/api/tracks/?page_size=2&page=2").json()
    assert page["count"] == 5
    assert len(page["results"]) == 2
    assert page["next"]
    assert page["previous"]


@pytest.mark.parametrize("page_size", [2, 10])
def test_the_list_costs_the_same_number_of_queries_whatever_the_page_size(
    client_for, django_assert_num_queries, page_size
):
    # given
    viewer = PerformerFactory()
    TrackFactory.create_batch(10)
    client = client_for(viewer)

    # then: one count, one page (tracks joined with producer, profile, genre and revision)
    with django_assert_num_queries(2):
        response = client.get(f"/api/tracks/?page_size={page_size}")
    assert len(response.json()["results"]) == page_size


def test_the_detail_query_count_does_not_grow_with_parts(api_client):
    small = TrackFactory()
    with CaptureQueriesContext(connection) as queries:
        api_client.get(f"/api/tracks/{small.pk}/")
    assert len(queries) <= 2


def test_the_producer_edits_a_track(client_for, track):
    response = client_for(track.producer).patch(
        f"/api/tracks/{track.pk}/", {"title": "Renamed"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["title"] == "Renamed"
    other = client_for(ProducerFactory()).patch(f"/api/tracks/{track.pk}/", {"title": "Mine"}, format="json")
    assert other.status_code == 403
    track.refresh_from_db()
    assert track.title == "Renamed"


# --- key suggestions ---------------------------------------------------------------------------


def _melody_range(track):
    pitches = [int(row[0]) for row in track.current_revision.analysis["melody_histogram"]]
    return min(pitches), max(pitches)


def test_key_suggestions_for_my_range(client_for, track):
    # given: a singer whose range is the melody's range 2 semitones up
    low, high = _melody_range(track)
    singer = PerformerFactory()
    singer.profile.vocal_low, singer.profile.vocal_high = low + 2, high + 2
    singer.profile.save()

    # when
    body = client_for(singer).get(f"/api/tracks/{track.pk}/key-suggestions/").json()

    # then
    best = body["suggestions"][0]
    assert body["current_key"] == track.current_revision.analysis["key"]
    assert best["transpose"] == 2
    assert best["fits"] is True
    assert set(best) >= {"transpose", "key", "fits", "melody_low", "melody_high", "out_of_range"}


def test_key_suggestions_for_another_performer_who_shares_their_range(client_for, track):
    low, high = _melody_range(track)
    singer = PerformerFactory()
    singer.profile.vocal_low, singer.profile.vocal_high = low - 5, high - 5
    singer.profile.share_vocal_range = True
    singer.profile.save()
    body = (
        client_for(ProducerFactory())
        .get(f"/api/tracks/{track.pk}/key-suggestions/?performer={singer.pk}")
        .json()
    )
    assert body["suggestions"][0]["transpose"] == -5


def test_key_suggestions_without_a_range_is_400_with_a_reason(client_for, track):
    response = client_for(PerformerFactory()).get(f"/api/tracks/{track.pk}/key-suggestions/")
    assert response.status_code == 400
    assert "vocal range" in response.json()["detail"]


def test_key_suggestions_of_a_private_track_is_404(client_for, private_track):
    assert (
        client_for(PerformerFactory()).get(f"/api/tracks/{private_track.pk}/key-suggestions/").status_code
        == 404
    )


def test_key_suggestions_show_my_remembered_key(client_for, track):
    singer = PerformerFactory()
    singer.profile.vocal_low, singer.profile.vocal_high = 55, 76
    singer.profile.save()
    client = client_for(singer)
    assert (
        client.put(f"/api/tracks/{track.pk}/chosen-key/", {"transpose": 3}, format="json").status_code == 200
    )
    assert client.get(f"/api/tracks/{track.pk}/key-suggestions/").json()["chosen_transpose"] == 3
    assert client.get("/api/me/chosen-keys/").json()[0]["transpose"] == 3
