"""A vocal range is private unless its performer shares it: the rule (``vocal_range_get``), the
setting on the profile page and through ``/api/me/``."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import Client
from django.urls import reverse

from performers.models import Profile
from performers.selectors import vocal_range_get
from tests.factories import PerformerFactory, ProducerFactory

pytestmark = pytest.mark.django_db


def _singer(*, shares: bool, low: int | None = 55, high: int | None = 72):
    singer = PerformerFactory()
    Profile.objects.filter(user=singer).update(vocal_low=low, vocal_high=high, share_vocal_range=shares)
    return singer


def test_a_private_range_is_seen_by_its_performer_only():
    singer = _singer(shares=False)

    assert vocal_range_get(viewer=singer, performer_id=singer.pk) == (55, 72)
    assert vocal_range_get(viewer=ProducerFactory(), performer_id=singer.pk) is None
    assert vocal_range_get(viewer=AnonymousUser(), performer_id=singer.pk) is None


def test_a_shared_range_is_seen_by_signed_in_users():
    singer = _singer(shares=True)

    assert vocal_range_get(viewer=ProducerFactory(), performer_id=singer.pk) == (55, 72)
    assert vocal_range_get(viewer=AnonymousUser(), performer_id=singer.pk) is None


def test_a_missing_performer_and_a_range_not_set_look_like_a_private_range():
    viewer = ProducerFactory()
    unset = _singer(shares=True, low=None, high=None)

    assert vocal_range_get(viewer=viewer, performer_id=unset.pk) is None
    assert vocal_range_get(viewer=viewer, performer_id=unset.pk + 1000) is None


def test_the_profile_page_offers_sharing_and_saves_it(client: Client):
    singer = _singer(shares=False)
    client.force_login(singer)
    label = "Share my vocal range with producers (so they can suggest keys for me)"

    html = client.get(reverse("profile")).content.decode()
    assert re.search(r'<input type="checkbox" name="share_vocal_range"[^>]* id="id_share_vocal_range"', html)
    assert re.search(r'<label for="id_share_vocal_range">\s*' + re.escape(label) + r"\s*</label>", html)

    response = client.post(
        reverse("profile"),
        {"display_name": "", "vocal_low": "G3", "vocal_high": "C5", "bio": "", "share_vocal_range": "on"},
    )
    assert response.status_code == 302
    assert Profile.objects.get(user=singer).share_vocal_range is True

    client.post(reverse("profile"), {"display_name": "", "vocal_low": "G3", "vocal_high": "C5", "bio": ""})
    assert Profile.objects.get(user=singer).share_vocal_range is False


def test_me_reads_and_changes_sharing(client_for):
    singer = _singer(shares=False)
    client = client_for(singer)

    assert client.get("/api/me/").json()["share_vocal_range"] is False
    changed = client.patch("/api/me/", {"share_vocal_range": True}, format="json")
    assert changed.status_code == 200
    assert changed.json()["share_vocal_range"] is True
    assert Profile.objects.get(user=singer).share_vocal_range is True
    # a PATCH that leaves it out leaves it alone
    assert client.patch("/api/me/", {"bio": "Alto"}, format="json").json()["share_vocal_range"] is True
