"""Render outputs through the API and the page: format and layout settings, file names, media types."""

from typing import cast

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from tests.factories import RenderFactory, TrackFactory
from tracks import services
from tracks.engine import load_arrangement, transpose_key
from tracks.models import Render, RenderStatus
from tracks.services.render_execution import render_storage_name

pytestmark = pytest.mark.django_db


def _done(render: Render, payload: bytes = b"PK\x03\x04fake") -> Render:
    name = default_storage.save(render_storage_name(render=render), ContentFile(payload))
    Render.objects.filter(pk=render.pk).update(
        status=RenderStatus.DONE, audio=name, audio_size=len(payload), key="E major", tempo_bpm=82.0
    )
    render.refresh_from_db()
    return render


def test_post_render_with_format_and_layout_shows_them(client_for, performer, track, enqueued):
    client = client_for(performer)
    # when the same variant is asked for as stems and as MP3
    stems = client.post("/api/renders/", {"track": track.pk, "format": "stems"}, format="json")
    mp3 = client.post("/api/renders/", {"track": track.pk}, format="json")
    split = client.post("/api/renders/", {"track": track.pk, "layout": "split"}, format="json")
    again = client.post("/api/renders/", {"track": track.pk, "format": "stems"}, format="json")
    # then each format is its own render, and the same request is rendered once
    assert stems.status_code == 202, stems.content
    assert (stems.json()["format"], stems.json()["layout"]) == ("stems", "stereo")
    assert (mp3.json()["format"], split.json()["layout"]) == ("mp3", "split")
    assert len({stems.json()["id"], mp3.json()["id"], split.json()["id"]}) == 3
    assert again.json()["id"] == stems.json()["id"]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [({"format": "ogg"}, "format must be one of"), ({"layout": "mono"}, "layout must be one of")],
)
def test_unknown_format_or_layout_is_400_with_a_reason(
    client_for, performer, track, enqueued, payload, reason
):
    response = client_for(performer).post("/api/renders/", {"track": track.pk, **payload}, format="json")
    assert response.status_code == 400
    assert reason in response.content.decode()
    assert not Render.objects.exists()


@pytest.mark.parametrize(
    ("output_format", "content_type", "extension"),
    [
        ("stems", "application/zip", ".zip"),
        ("midi", "audio/midi", ".mid"),
        ("wav", "audio/wav", ".wav"),
        ("flac", "audio/flac", ".flac"),
    ],
)
def test_download_has_the_format_s_type_and_extension(api_client, output_format, content_type, extension):
    # given a finished render in that format
    track = TrackFactory(title="Harbour Lights")
    render = _done(RenderFactory(revision=track.current_revision, variant_settings={"format": output_format}))
    # when it is downloaded
    response = api_client.get(f"/api/renders/{render.pk}/download/")
    # then the type and the file name follow the format
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert f'filename="Harbour Lights (E major, 82 bpm){extension}"' in response["Content-Disposition"]
    assert render.audio.name.endswith(extension)


def test_the_player_refuses_a_stems_render(client):
    render = _done(RenderFactory(variant_settings={"format": "stems"}))
    assert client.get(f"/renders/{render.pk}/audio/").status_code == 404


def test_download_choice_reuses_a_done_render_of_that_format(client, performer, enqueued):
    # given a finished MP3 render and the same variant already rendered as MIDI
    track = TrackFactory()
    mp3 = _done(RenderFactory(revision=track.current_revision, variant_settings={"transpose": 2}))
    midi = _done(
        RenderFactory(revision=track.current_revision, variant_settings={"transpose": 2, "format": "midi"})
    )
    client.force_login(performer)
    # when MIDI is chosen on the MP3's panel
    response = client.post(f"/renders/{mp3.pk}/as/", {"format": "midi"})
    # then the existing MIDI render is downloaded, nothing new is queued
    assert response.status_code == 302
    assert response["Location"] == f"/api/renders/{midi.pk}/download/"
    assert enqueued == []


def test_click_in_left_ear_queues_a_split_render_with_the_click(client, performer, enqueued):
    track = TrackFactory()
    mp3 = _done(RenderFactory(revision=track.current_revision, variant_settings={"transpose": 2}))
    client.force_login(performer)
    response = client.post(f"/renders/{mp3.pk}/as/", {"format": "mp3", "layout": "split"})
    split = Render.objects.exclude(pk=mp3.pk).get()
    assert response.status_code == 302
    assert response["Location"].endswith(f"?render={split.pk}#listen")
    assert split.settings["layout"] == "split"
    assert split.settings["click"] is True
    assert split.settings["transpose"] == 2
    assert split.status == RenderStatus.QUEUED


def test_cues_are_a_setting_of_their_own(client_for, performer, track, enqueued):
    client = client_for(performer)
    plain = client.post("/api/renders/", {"track": track.pk, "count_in": 1}, format="json").json()
    cued = client.post(
        "/api/renders/", {"track": track.pk, "count_in": 1, "cues": True}, format="json"
    ).json()
    assert (plain["cues"], cued["cues"]) == (False, True)
    assert plain["id"] != cued["id"]
    bad = client.post("/api/renders/", {"track": track.pk, "cues": "loud"}, format="json")
    assert bad.status_code == 400


def test_a_midi_render_is_executed_and_stored_as_a_mid_file(performer):
    # Given a queued MIDI render of a variant two semitones up
    queued = cast(
        Render, RenderFactory(variant_settings={"format": "midi", "transpose": 2}, requested_by=performer)
    )
    # When a worker executes it
    render = services.render_execute(render=queued)
    render.refresh_from_db()
    # Then the stored file is a Standard MIDI File the analyzer reads in the new key
    assert render.status == RenderStatus.DONE, render.error
    assert render.audio.name.endswith(".mid")
    with default_storage.open(render.audio.name, "rb") as handle:
        exported = load_arrangement(handle.read())
    assert exported.analysis["key"] == render.key
    assert render.key == transpose_key(render.revision.analysis["key"], 2)
