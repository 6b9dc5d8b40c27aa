"""The track page shows the sections as bands and, to signed-in users, the arrangement builder."""

from typing import Any, cast

import pytest
from django.test import Client

from tests.factories import TrackFactory
from tracks import services
from tracks.models import Track

pytestmark = pytest.mark.django_db


@pytest.fixture
def song(producer: Any) -> Track:
    return cast(Track, TrackFactory(producer=producer, revision__minutes=1.0))


def test_the_page_shows_the_sections_and_the_builder(client: Client, performer: Any, song: Track) -> None:
    client.force_login(performer)
    page = client.get(f"/tracks/{song.pk}/").content.decode()
    assert 'id="sections-data"' in page
    assert 'data-section="0"' in page
    assert "Intro" in page
    assert "Chorus 1" in page
    assert "js/sections.js" in page
    assert "Your arrangement" in page
    assert "from the file&#x27;s markers" in page or "from the file's markers" in page


def test_visitors_see_the_sections_but_no_builder(client: Client, song: Track) -> None:
    page = client.get(f"/tracks/{song.pk}/").content.decode()
    assert 'data-section="0"' in page
    assert "Your arrangement" not in page


def test_the_producers_sections_are_shown(client: Client, producer: Any, song: Track) -> None:
    services.revision_sections_update(
        user=producer,
        revision=song.current_revision,
        sections=[{"name": "Count <off>", "start_bar": 1}, {"name": "Body", "start_bar": 5}],
    )
    page = client.get(f"/tracks/{song.pk}/").content.decode()
    assert "Count &lt;off&gt;" in page
    assert "<off>" not in page.split('id="sections-data"')[0].split("sections-heading")[1]
    assert "set by the producer" in page
