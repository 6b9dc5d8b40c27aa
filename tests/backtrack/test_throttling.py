"""The one throttling home: the real client address, a counter that survives a cache outage, and
one budget per user for uploads and render requests, whether they come from a page or the API."""

from __future__ import annotations

import logging
import re

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.test import RequestFactory
from django.urls import reverse
from redis.exceptions import ConnectionError as RedisConnectionError

from backtrack.api.throttles import AuthThrottle
from backtrack.throttling import client_address, hit
from tests.factories import PerformerFactory
from tracks.models import Comment, Render, Track

HTMX = {"HTTP_HX_REQUEST": "true"}
REFUSED = re.compile(r"Too many (uploads|render requests); try again in \d+ minutes?\.")


# --- the client's address ----------------------------------------------------------------------


def _request(forwarded: str | None = None):
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", **extra)


def test_without_trusted_proxies_x_forwarded_for_is_ignored(settings):
    settings.TRUSTED_PROXIES = 0
    assert client_address(_request("6.6.6.6")) == "10.0.0.2"
    assert client_address(_request()) == "10.0.0.2"


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (1, "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # the client's claim, then what our proxy saw
        (2, "6.6.6.6, 203.0.113.9, 10.1.1.1", "203.0.113.9"),
        (2, "203.0.113.9", "203.0.113.9"),
        (1, "", "10.0.0.2"),
    ],
)
def test_with_n_trusted_proxies_the_nth_address_from_the_right_is_the_client(
    settings, proxies, forwarded, expected
):
    settings.TRUSTED_PROXIES = proxies
    assert client_address(_request(forwarded)) == expected


def test_drf_counts_the_same_proxies():
    assert django_settings.REST_FRAMEWORK["NUM_PROXIES"] == django_settings.TRUSTED_PROXIES == 0


@pytest.mark.django_db
def test_the_api_auth_throttle_is_not_fooled_by_a_forged_x_forwarded_for(api_client, monkeypatch):
    # given: an auth rate of 3 a minute, and login limits out of the way
    monkeypatch.setattr(AuthThrottle, "THROTTLE_RATES", {"auth": "3/minute"})
    monkeypatch.setattr(django_settings, "LOGIN_ATTEMPTS_PER_IP", 100)
    monkeypatch.setattr(django_settings, "LOGIN_FAILURES_PER_USERNAME", 100)

    # when: each request claims another address
    codes = [
        api_client.post(
            "/api/auth/token/",
            {"username": f"user{n}", "password": "x"},
            format="json",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}",
        ).status_code
        for n in range(4)
    ]

    # then
    assert codes == [400, 400, 400, 429]


# --- the counter ----------------------------------------------------------------------------------


def test_hit_lets_limit_requests_through_then_says_how_long_to_wait():
    answers = [hit("throttle:test:a", limit=2, window_s=60) for _ in range(3)]

    assert answers[:2] == [None, None]
    assert answers[2] is not None
    assert 0 < answers[2] <= 60
    assert hit("throttle:test:b", limit=2, window_s=60) is None  # another key, another count


def test_hit_lets_requests_through_and_logs_when_the_cache_is_down(monkeypatch, caplog):
    def down(*args, **kwargs):
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(cache, "add", down)
    monkeypatch.setattr(cache, "incr", down)

    with caplog.at_level(logging.WARNING, logger="backtrack.throttling"):
        answers = [hit("throttle:test:a", limit=1, window_s=60) for _ in range(3)]

    assert answers == [None, None, None]
    assert "cache is unavailable" in caplog.text


# --- one budget for pages and the API -------------------------------------------------------------


@pytest.fixture
def rates(monkeypatch):
    """Set a write rate for pages and API at once (they read the same REST_FRAMEWORK setting)."""

    def set_rate(scope: str, rate: str) -> None:
        monkeypatch.setitem(django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], scope, rate)

    return set_rate


def _page_upload(client, midi_upload, title: str):
    return client.post(
        reverse("tracks:upload"),
        {"title": title, "genre": "pop", "description": "", "is_public": "on", "midi": midi_upload()},
    )


@pytest.mark.django_db
def test_the_upload_page_and_the_api_share_one_budget(client, client_for, producer, midi_upload, rates):
    rates("uploads", "2/hour")
    client.force_login(producer)

    first = _page_upload(client, midi_upload, "One")
    second = client_for(producer).post(
        "/api/tracks/", {"title": "Two", "genre": "pop", "midi": midi_upload()}, format="multipart"
    )
    third = _page_upload(client, midi_upload, "Three")
    fourth = client_for(producer).post(
        "/api/tracks/", {"title": "Four", "genre": "pop", "midi": midi_upload()}, format="multipart"
    )

    assert (first.status_code, second.status_code, third.status_code, fourth.status_code) == (
        302,
        201,
        429,
        429,
    )
    assert REFUSED.search(third.content.decode())
    assert sorted(Track.objects.values_list("title", flat=True)) == ["One", "Two"]


@pytest.mark.django_db
def test_the_revision_upload_page_is_throttled(client, track, midi_upload, rates):
    rates("uploads", "1/hour")
    client.force_login(track.producer)
    url = reverse("tracks:revision-upload", kwargs={"pk": track.pk})

    first = client.post(url, {"midi": midi_upload(), "notes": "Softer"})
    second = client.post(url, {"midi": midi_upload(), "notes": "Softer still"})

    assert (first.status_code, second.status_code) == (302, 429)
    assert REFUSED.search(second.content.decode())
    assert track.revisions.count() == 2


@pytest.mark.django_db
def test_the_render_form_and_the_api_share_one_budget(client, client_for, performer, track, enqueued, rates):
    rates("renders", "2/hour")
    client.force_login(performer)
    url = reverse("tracks:render-create", kwargs={"pk": track.pk})

    first = client.post(url, {"transpose": "1", "tempo": "100", "count_in": "0"})
    second = client_for(performer).post("/api/renders/", {"track": track.pk, "transpose": 2}, format="json")
    third = client.post(url, {"transpose": "3", "tempo": "100", "count_in": "0"})
    by_htmx = client.post(url, {"transpose": "4", "tempo": "100", "count_in": "0"}, **HTMX)

    assert (first.status_code, second.status_code, third.status_code) == (302, 202, 429)
    assert REFUSED.search(third.content.decode())
    # htmx swaps only 2xx answers: the refusal comes back as the form with its reason
    assert by_htmx.status_code == 200
    assert REFUSED.search(by_htmx.content.decode())
    assert Render.objects.count() == 2


@pytest.mark.django_db
def test_the_comment_limit_is_a_form_error_with_429_not_a_500(client, track, settings):
    settings.COMMENTS_PER_MINUTE = 1
    singer = PerformerFactory()
    client.force_login(singer)
    url = reverse("tracks:comment-create", kwargs={"pk": track.pk})

    first = client.post(url, {"body": "Lovely intro"})
    second = client.post(url, {"body": "And the bridge"})
    by_htmx = client.post(url, {"body": "And the outro"}, **HTMX)

    assert (first.status_code, second.status_code) == (302, 429)
    assert "you have posted 1 comments in the last minute" in second.content.decode()
    assert by_htmx.status_code == 200
    assert "in the last minute" in by_htmx.content.decode()
    assert Comment.objects.count() == 1
