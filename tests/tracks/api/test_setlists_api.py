"""Setlists over the API: building, reordering, limits, visibility, sharing and export requests."""

from typing import cast

import pytest

from tests.factories import PerformerFactory, TrackFactory
from tracks.models import Setlist, SetlistExport, SetlistItem, Track

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_client(client_for, performer):
    return client_for(performer)


def _setlist(client, name="Friday gig"):
    response = client.post("/api/setlists/", {"name": name}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_create_setlist_is_201_with_items_and_a_share_url(owner_client):
    body = _setlist(owner_client)
    assert set(body) >= {"id", "name", "items", "share_url"}
    assert body["name"] == "Friday gig"
    assert body["items"] == []
    assert "/setlists/shared/" in body["share_url"]
    assert [s["id"] for s in owner_client.get("/api/setlists/").json()] == [body["id"]]


def test_a_setlist_without_a_name_is_400(owner_client):
    response = owner_client.post("/api/setlists/", {"name": "  "}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()["detail"]
    assert not Setlist.objects.exists()


def test_someone_else_s_setlist_is_404(owner_client, client_for):
    setlist = _setlist(owner_client)
    stranger = client_for(PerformerFactory())
    assert stranger.get(f"/api/setlists/{setlist['id']}/").status_code == 404
    assert stranger.delete(f"/api/setlists/{setlist['id']}/").status_code == 404
    assert Setlist.objects.filter(pk=setlist["id"]).exists()


def test_items_are_added_in_order_and_reordered_by_position(owner_client):
    setlist = _setlist(owner_client)
    tracks = [TrackFactory(title=title) for title in ("One", "Two", "Three")]
    ids = []
    for track in tracks:
        response = owner_client.post(
            f"/api/setlists/{setlist['id']}/items/",
            {"track": track.pk, "settings": {"transpose": 2, "tempo": 0.9}, "gap_s": 3},
            format="json",
        )
        assert response.status_code == 201, response.content
        ids.append(response.json()["id"])
    # when the third song moves to the top
    moved = owner_client.patch(
        f"/api/setlists/{setlist['id']}/items/{ids[2]}/", {"position": 1}, format="json"
    )
    # then the others shift down
    assert moved.status_code == 200
    body = owner_client.get(f"/api/setlists/{setlist['id']}/").json()
    assert [(item["title"], item["position"]) for item in body["items"]] == [
        ("Three", 1),
        ("One", 2),
        ("Two", 3),
    ]
    assert body["items"][0]["settings"]["transpose"] == 2
    assert body["items"][0]["gap_s"] == 3
    # and removing one renumbers the rest
    assert owner_client.delete(f"/api/setlists/{setlist['id']}/items/{ids[2]}/").status_code == 204
    body = owner_client.get(f"/api/setlists/{setlist['id']}/").json()
    assert [(item["title"], item["position"]) for item in body["items"]] == [("One", 1), ("Two", 2)]


def test_bad_position_is_400(owner_client):
    setlist = _setlist(owner_client)
    item = owner_client.post(
        f"/api/setlists/{setlist['id']}/items/", {"track": TrackFactory().pk}, format="json"
    ).json()
    response = owner_client.patch(
        f"/api/setlists/{setlist['id']}/items/{item['id']}/", {"position": 5}, format="json"
    )
    assert response.status_code == 400
    assert "position must be" in response.json()["detail"]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"settings": {"transpose": 20}}, "transpose must be between"),
        ({"settings": {"format": "stems"}}, "a setlist song is an MP3"),
        ({"gap_s": -1}, "gap_s must be"),
    ],
)
def test_bad_items_are_400_and_nothing_is_added(owner_client, payload, reason):
    setlist = _setlist(owner_client)
    response = owner_client.post(
        f"/api/setlists/{setlist['id']}/items/", {"track": TrackFactory().pk, **payload}, format="json"
    )
    assert response.status_code == 400
    assert reason in response.json()["detail"]
    assert not SetlistItem.objects.exists()


def test_a_track_the_owner_may_not_see_is_refused(owner_client):
    setlist = _setlist(owner_client)
    private = TrackFactory(is_public=False)
    response = owner_client.post(
        f"/api/setlists/{setlist['id']}/items/", {"track": private.pk}, format="json"
    )
    assert response.status_code == 400
    assert "no track" in response.json()["detail"]
    assert not SetlistItem.objects.exists()


def test_more_than_40_songs_is_refused(owner_client):
    setlist = _setlist(owner_client)
    track = TrackFactory()
    SetlistItem.objects.bulk_create(
        SetlistItem(setlist_id=setlist["id"], track=track, title=track.title, position=n)
        for n in range(1, 41)
    )
    response = owner_client.post(f"/api/setlists/{setlist['id']}/items/", {"track": track.pk}, format="json")
    assert response.status_code == 400
    assert "at most 40 songs" in response.json()["detail"]
    assert SetlistItem.objects.count() == 40


def test_more_than_4_hours_is_refused(owner_client):
    setlist = _setlist(owner_client)
    long_track = cast(Track, TrackFactory())
    revision = long_track.current_revision
    revision.analysis = {**revision.analysis, "duration_s": 3 * 3600}
    revision.save(update_fields=["analysis"])
    first = owner_client.post(
        f"/api/setlists/{setlist['id']}/items/", {"track": long_track.pk}, format="json"
    )
    assert first.status_code == 201
    # when the same 3-hour song is added again, the total would pass 4 hours
    second = owner_client.post(
        f"/api/setlists/{setlist['id']}/items/", {"track": long_track.pk}, format="json"
    )
    assert second.status_code == 400
    assert "at most 4 hours" in second.json()["detail"]
    assert SetlistItem.objects.count() == 1


def test_a_track_made_private_shows_as_unavailable(owner_client):
    setlist = _setlist(owner_client)
    track = TrackFactory()
    owner_client.post(f"/api/setlists/{setlist['id']}/items/", {"track": track.pk}, format="json")
    track.is_public = False
    track.save(update_fields=["is_public"])
    item = owner_client.get(f"/api/setlists/{setlist['id']}/").json()["items"][0]
    assert item["available"] is False
    # and a deleted one too, still named
    track.delete()
    item = owner_client.get(f"/api/setlists/{setlist['id']}/").json()["items"][0]
    assert (item["available"], item["track"], item["title"]) == (False, None, track.title)


def test_share_link_works_without_login_until_revoked(owner_client, client):
    setlist = _setlist(owner_client)
    track = TrackFactory(title="Harbour Lights")
    owner_client.post(f"/api/setlists/{setlist['id']}/items/", {"track": track.pk}, format="json")
    old_url = setlist["share_url"]
    # the shared page is read-only and needs no login
    page = client.get(old_url)
    assert page.status_code == 200
    assert "Harbour Lights" in page.content.decode()
    assert "Move up" not in page.content.decode()
    # when it is revoked, the old link answers 404
    assert owner_client.delete(f"/api/setlists/{setlist['id']}/share/").status_code == 204
    assert client.get(old_url).status_code == 404
    assert owner_client.get(f"/api/setlists/{setlist['id']}/").json()["share_url"] is None
    # and a new link works while the old one stays dead
    new_url = owner_client.post(f"/api/setlists/{setlist['id']}/share/").json()["share_url"]
    assert new_url != old_url
    assert client.get(new_url).status_code == 200
    assert client.get(old_url).status_code == 404


def test_export_request_is_202_with_progress(owner_client):
    setlist = _setlist(owner_client)
    owner_client.post(f"/api/setlists/{setlist['id']}/items/", {"track": TrackFactory().pk}, format="json")
    response = owner_client.post(f"/api/setlists/{setlist['id']}/export/", {"format": "zip"}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["status"], body["progress"]) == ("queued", "0 of 1 songs")
    detail = owner_client.get(f"/api/setlist-exports/{body['id']}/").json()
    assert set(detail) >= {"status", "progress", "error", "download_url"}
    assert detail["download_url"] is None


@pytest.mark.parametrize(("payload", "reason"), [({"format": "tar"}, "format must be one of")])
def test_bad_export_requests_are_400(owner_client, payload, reason):
    setlist = _setlist(owner_client)
    owner_client.post(f"/api/setlists/{setlist['id']}/items/", {"track": TrackFactory().pk}, format="json")
    response = owner_client.post(f"/api/setlists/{setlist['id']}/export/", payload, format="json")
    assert response.status_code == 400
    assert reason in response.json()["detail"]
    assert not SetlistExport.objects.exists()


def test_an_empty_setlist_cannot_be_exported(owner_client):
    setlist = _setlist(owner_client)
    response = owner_client.post(f"/api/setlists/{setlist['id']}/export/", {"format": "zip"}, format="json")
    assert response.status_code == 400
    assert "no song" in response.json()["detail"]
