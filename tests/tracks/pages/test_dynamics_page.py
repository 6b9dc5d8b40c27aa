"""The track page's Dynamics control: as written, build, or a level per section."""

from __future__ import annotations

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


def _render_post(client: Client, track: Track, **fields: str) -> None:
    bpm = track.current_revision.analysis["tempo_bpm"]
    response = client.post(
        reverse("tracks:render-create", kwargs={"pk": track.pk}),
        {"transpose": "0", "tempo": str(bpm), "count_in": "0", **fields},
        **HTMX,
    )
    assert response.status_code == 200, response.content.decode()[:2000]


def test_the_page_offers_dynamics_and_a_level_per_section(client: Client) -> None:
    track = cast(Track, TrackFactory())
    client.force_login(PerformerFactory())
    html = client.get(track.get_absolute_url()).content.decode()
    assert '<label for="id_dynamics_mode">Dynamics</label>' in html
    assert ">Build: quiet verses, full choruses</option>" in html
    assert ">Per section</option>" in html
    assert re.search(r'<label for="id_dynamics_0">A</label>\s*<input type="range" name="dynamics_0"', html)
    assert "js/dynamics.js" in html


def test_per_section_levels_reach_the_render_and_show_on_it(client: Client, enqueued: None) -> None:
    # given a performer on a track page
    track = cast(Track, TrackFactory())
    client.force_login(PerformerFactory())
    # when they ask for section A 5 dB quieter
    _render_post(client, track, dynamics_mode="sections", dynamics_0="-5")
    # then the render has it, and the page shows it and sets the controls back to it
    render = Render.objects.get()
    assert render.settings["dynamics"] == {"A": -5.0}
    page = client.get(f"{track.get_absolute_url()}?render={render.pk}").content.decode()
    assert "dynamics: A -5 dB" in page
    assert re.search(r'<option value="sections" selected>', page)
    assert re.search(r'name="dynamics_0" value="-5.0"', page)


def test_levels_are_ignored_unless_per_section_is_chosen(client: Client, enqueued: None) -> None:
    track = cast(Track, TrackFactory())
    client.force_login(PerformerFactory())
    _render_post(client, track, dynamics_mode="build", dynamics_0="-5")
    assert Render.objects.get().settings["dynamics"] == "build"
    Render.objects.all().delete()
    _render_post(client, track, dynamics_0="-5")
    assert "dynamics" not in Render.objects.get().settings
