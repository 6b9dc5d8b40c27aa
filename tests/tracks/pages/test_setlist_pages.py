"""The setlist builder page: add songs, reorder with buttons (keyboard-usable), total duration, share."""

import re

import pytest

from tests.factories import PerformerFactory, TrackFactory
from tracks.models import Setlist

pytestmark = pytest.mark.django_db


def _titles(html: str) -> list[str]:
    return re.findall(r'<li id="item-\d+">\s*<strong>([^<]+)</strong>', html)


def test_build_and_reorder_a_setlist_on_its_page(client):
    # Given a signed-in performer and two tracks
    client.force_login(PerformerFactory())
    one, two = TrackFactory(title="Alpha"), TrackFactory(title="Beta")
    # When they create a setlist and add both songs
    response = client.post("/setlists/", {"name": "Friday"})
    setlist = Setlist.objects.get()
    assert response["Location"] == f"/setlists/{setlist.pk}/"
    for track in (one, two):
        client.post(f"/setlists/{setlist.pk}/change/", {"action": "add", "track": track.pk, "gap_s": "2"})
    page = client.get(f"/setlists/{setlist.pk}/").content.decode()
    # Then the songs are listed in order with buttons that move them, and the total duration
    assert _titles(page) == ["Alpha", "Beta"]
    assert 'Move down<span class="visually-hidden"> Alpha</span>' in page
    assert re.search(r"Total duration: <strong data-total-duration>\d+:\d\d</strong>", page)
    # When the first song is moved down
    alpha = setlist.items.get(track=one)
    response = client.post(f"/setlists/{setlist.pk}/change/", {"action": "down", "item": alpha.pk})
    # Then it is second, and the page comes back to it
    assert response["Location"].endswith(f"#item-{alpha.pk}")
    assert _titles(client.get(f"/setlists/{setlist.pk}/").content.decode()) == ["Beta", "Alpha"]


def test_someone_else_cannot_change_a_setlist(client):
    owner = PerformerFactory()
    client.force_login(owner)
    client.post("/setlists/", {"name": "Mine"})
    setlist = Setlist.objects.get()
    client.force_login(PerformerFactory())
    response = client.post(f"/setlists/{setlist.pk}/change/", {"action": "revoke"})
    assert response.status_code == 404
    setlist.refresh_from_db()
    assert setlist.share_token
