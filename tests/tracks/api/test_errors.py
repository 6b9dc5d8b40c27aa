"""Every error is JSON with a reason; bad input never gives a 500."""

import pytest
from django.test import Client

from tests.factories import PerformerFactory, TrackFactory

pytestmark = pytest.mark.django_db


def test_unknown_objects_are_json_404(api_client):
    for url in ("/api/tracks/999999/", "/api/renders/999999/", "/api/tracks/999999/comments/"):
        response = api_client.get(url)
        assert response.status_code == 404
        assert response["Content-Type"].startswith("application/json")
        assert response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "url", "body", "content_type"),
    [
        ("post", "/api/renders/", "{not json", "application/json"),
        ("post", "/api/renders/", "[1, 2, 3]", "application/json"),
        ("post", "/api/renders/", '{"track": "abc"}', "application/json"),
        ("post", "/api/renders/", '{"track": 1, "mix": [1]}', "application/json"),
        ("post", "/api/renders/", '{"track": 1, "tempo": "NaN"}', "application/json"),
        ("post", "/api/tracks/", "not multipart", "multipart/form-data; boundary=xyz"),
        ("patch", "/api/me/", '{"genres": "pop"}', "application/json"),
        ("patch", "/api/me/", '{"vocal_low": 60}', "application/json"),
        ("post", "/api/auth/register/", "{}", "application/json"),
        ("post", "/api/auth/token/", '{"username": ["a"]}', "application/json"),
    ],
)
def test_malformed_requests_are_4xx_json(method, url, body, content_type):
    # given
    user = PerformerFactory()
    TrackFactory(pk=1)
    client = Client(raise_request_exception=False)
    client.force_login(user)

    # when
    response = getattr(client, method)(url, data=body, content_type=content_type)

    # then
    assert 400 <= response.status_code < 500, response.content
    assert response.json()["detail"]


def test_query_parameters_that_are_not_numbers_are_400(api_client):
    track = TrackFactory()
    assert api_client.get(f"/api/tracks/{track.pk}/key-suggestions/?performer=abc").status_code == 400
    assert api_client.get(f"/api/tracks/{track.pk}/comments/?render=abc").status_code == 400
    assert api_client.get("/api/tracks/?page=abc").status_code == 404


def test_redis_trouble_anywhere_is_a_503_with_a_reason(api_client, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    from tracks import selectors

    def down(**kwargs):
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(selectors, "track_list", down)

    response = api_client.get("/api/tracks/")

    assert response.status_code == 503
    assert "Redis" in response.json()["detail"]
    assert response["Retry-After"] == "30"


def test_ids_that_are_digits_but_not_numbers_are_400(api_client):
    # "²" and "٣" pass str.isdigit(); "²" makes int() fail, so they used to be a 500
    track = TrackFactory()
    for query in ("key-suggestions/?performer=²", "comments/?render=²"):
        response = api_client.get(f"/api/tracks/{track.pk}/{query}")
        assert response.status_code == 400, (query, response.content)
        assert response.json()["detail"]


def test_a_performer_id_too_large_for_the_database_is_404(api_client):
    track = TrackFactory()

    response = api_client.get(f"/api/tracks/{track.pk}/key-suggestions/?performer=99999999999999999999")

    assert response.status_code == 404
    assert response.json()["detail"]


def test_mix_keys_must_be_plain_digits(client_for):
    track = TrackFactory()

    response = client_for(PerformerFactory()).post(
        "/api/renders/", {"track": track.pk, "mix": {"²": {"mute": True}}}, format="json"
    )

    assert response.status_code == 400
    assert "mix" in response.json()["errors"]


def test_notification_ids_too_large_for_the_database_are_400(client_for):
    response = client_for(PerformerFactory()).post(
        "/api/notifications/read/", {"ids": [99999999999999999999]}, format="json"
    )

    assert response.status_code == 400
    assert "ids" in response.json()["errors"]


@pytest.mark.parametrize("query", ["/api/tracks/?q=%00", "/api/tracks/?genre=%00", "renders/?status=%00"])
def test_nul_characters_in_filters_are_400(api_client, query):
    # Postgres cannot compare text with NUL in it: these were a DataError (500) there
    track = TrackFactory()
    url = query if query.startswith("/") else f"/api/tracks/{track.pk}/{query}"

    response = api_client.get(url)

    assert response.status_code == 400
    assert response.json()["detail"]


@pytest.mark.parametrize("url", ["/api/renders/", "/api/auth/register/"])
def test_json_nested_too_deeply_is_400(url):
    # Python's decoder raises RecursionError (not ValueError), which DRF let through as a 500
    client = Client(raise_request_exception=False)
    client.force_login(PerformerFactory())

    response = client.post(url, data="[" * 100_000 + "]" * 100_000, content_type="application/json")

    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]
