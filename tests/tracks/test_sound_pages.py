"""The track page's sound controls: preset buttons over the mixer, the sound set, space for the voice."""

from __future__ import annotations

import json
import re
from typing import cast

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import PerformerFactory, TrackFactory
from tracks.models import Render, Track

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tracks.services.renders.render_enqueue", lambda **kwargs: None)


def test_the_mixer_offers_presets_that_fill_the_faders(client: Client) -> None:
    # given a track with a drum kit, seen by a performer
    track = cast(Track, TrackFactory())
    client.force_login(PerformerFactory())
    html = client.get(reverse("tracks:detail", kwargs={"pk": track.pk})).content.decode()
    # then the mixer has one button per preset, and the faders each preset sets
    for label in ("Full band", "Unplugged", "Groove", "Ambient"):
        assert f">{label}</button>" in html
    data = re.search(r'<script id="preset-mixes" type="application/json">(.*?)</script>', html, re.S)
    assert data is not None
    mixes = json.loads(data.group(1))
    drums = [str(p["index"]) for p in track.current_revision.parts if p["is_drum"]]
    assert drums
    assert all(mixes["unplugged"][index]["mute"] for index in drums)
    assert mixes["full"] == {}
    # and a switch for space for the voice, with its amount
    assert 'role="switch"' in html
    assert "Space for my voice" in html
    assert 'name="space_for_voice"' in html


def test_the_space_switch_and_sound_reach_the_render(client: Client, enqueued: None, settings) -> None:
    # given a performer on a track page
    track = cast(Track, TrackFactory())
    client.force_login(PerformerFactory())
    bpm = track.current_revision.analysis["tempo_bpm"]
    sound = next(iter(settings.SOUND_SETS))
    # when they switch on space for the voice at 8 dB, with a sound set, and render
    response = client.post(
        reverse("tracks:render-create", kwargs={"pk": track.pk}),
        {
            "transpose": "0",
            "tempo": str(bpm),
            "count_in": "0",
            "space_voice": "on",
            "space_for_voice": "8",
            "sound": sound,
        },
        **HTMX,
    )
    # then the render carries both
    assert response.status_code == 200
    render = Render.objects.get()
    assert render.settings["space_for_voice"] == 8.0
    assert render.settings["sound"] == sound


def test_the_amount_alone_does_not_turn_space_on(client: Client, enqueued: None) -> None:
    track = cast(Track, TrackFactory())
    client.force_login(PerformerFactory())
    bpm = track.current_revision.analysis["tempo_bpm"]
    client.post(
        reverse("tracks:render-create", kwargs={"pk": track.pk}),
        {"transpose": "0", "tempo": str(bpm), "count_in": "0", "space_for_voice": "8"},
        **HTMX,
    )
    assert "space_for_voice" not in Render.objects.get().settings


def test_the_producer_picks_the_default_sound_on_the_track_page(client: Client, settings) -> None:
    # given a producer on their track's page
    track = cast(Track, TrackFactory())
    client.force_login(track.producer)
    html = client.get(reverse("tracks:detail", kwargs={"pk": track.pk})).content.decode()
    assert "Default sound" in html
    sound = next(iter(settings.SOUND_SETS))
    # when they save a default sound
    response = client.post(reverse("tracks:track-default-sound", kwargs={"pk": track.pk}), {"sound": sound})
    # then the track has it
    assert response.status_code == 302
    track.refresh_from_db()
    assert track.default_sound == sound


def test_nobody_else_changes_the_default_sound(client: Client, settings) -> None:
    track = cast(Track, TrackFactory())
    client.force_login(PerformerFactory())
    html = client.get(reverse("tracks:detail", kwargs={"pk": track.pk})).content.decode()
    assert "Default sound" not in html
    response = client.post(
        reverse("tracks:track-default-sound", kwargs={"pk": track.pk}),
        {"sound": next(iter(settings.SOUND_SETS))},
    )
    assert response.status_code in (403, 404)
    track.refresh_from_db()
    assert track.default_sound == ""


def test_spoken_cues_are_a_choice_on_the_page(client: Client, enqueued: None) -> None:
    # given a performer on a track page
    track = cast(Track, TrackFactory())
    client.force_login(PerformerFactory())
    bpm = track.current_revision.analysis["tempo_bpm"]
    page = client.get(track.get_absolute_url()).content.decode()
    assert "Spoken cues" in page

    # when they ask for spoken cues with a count-in
    client.post(
        reverse("tracks:render-create", kwargs={"pk": track.pk}),
        {"transpose": "0", "tempo": str(bpm), "count_in": "1", "cues": "on"},
        **HTMX,
    )

    # then the render speaks them, and the page shows the choice again for that render
    render = Render.objects.get()
    assert render.settings["cues"] is True
    again = client.get(f"{track.get_absolute_url()}?render={render.pk}").content.decode()
    assert re.search(r'name="cues"[^>]*checked', again)
    assert "spoken cues" in again
