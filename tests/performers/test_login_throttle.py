"""Password guessing: every login path (page, admin, API token) is throttled per real client address
and per account, and both sign-up paths per address. X-Forwarded-For from a client changes nothing."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from performers.models import User
from tests.factories import DEFAULT_PASSWORD, PerformerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def small_limits(settings):
    settings.LOGIN_ATTEMPTS_PER_IP = 6
    settings.LOGIN_FAILURES_PER_USERNAME = 3
    settings.SIGNUPS_PER_IP = 2


def _page_login(client: Client, username: str, password: str, address: str = "198.51.100.7", **extra):
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address, **extra
    )


def _admin_login(client: Client, username: str, password: str, address: str = "198.51.100.7"):
    return client.post(
        reverse("admin:login"), {"username": username, "password": password}, REMOTE_ADDR=address
    )


def test_a_guessing_loop_on_one_account_is_stopped_even_from_many_addresses(client):
    # given: an account, and a guesser who moves to a new address for every guess
    PerformerFactory(username="ella")

    # when
    codes = [
        _page_login(client, "ella", f"guess-{n}", address=f"203.0.113.{n}").status_code for n in range(4)
    ]
    right_password = _page_login(client, "ella", DEFAULT_PASSWORD, address="203.0.113.99")

    # then: three wrong guesses, then the account refuses every attempt, the right password too
    assert codes == [200, 200, 200, 429]
    assert right_password.status_code == 429
    html = right_password.content.decode()
    assert re.search(r"Too many attempts; try again in \d+ minutes?\.", html)
    assert 'name="username"' in html  # the login form, re-rendered with the reason
    assert int(right_password["Retry-After"]) > 0
    assert "_auth_user_id" not in client.session


def test_one_address_is_stopped_whatever_account_and_forwarded_for_it_sends(client):
    # when: one client tries many accounts, and claims a new X-Forwarded-For each time
    codes = [
        _page_login(client, f"user{n}", "guess", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}").status_code
        for n in range(7)
    ]

    # then: the limit per address holds (TRUSTED_PROXIES is 0: the header is not believed)
    assert codes == [200] * 6 + [429]


def test_a_correct_login_under_the_limits_still_works(client):
    PerformerFactory(username="ella")
    _page_login(client, "ella", "typo")

    response = _page_login(client, "ella", DEFAULT_PASSWORD)

    assert response.status_code == 302


def test_the_admin_login_shares_the_limiter(client):
    # given: a staff account that a guesser has already hit through the page login
    User.objects.create_user(username="boss", password=DEFAULT_PASSWORD, is_staff=True)
    for n in range(3):
        _page_login(client, "boss", f"guess-{n}", address=f"203.0.113.{n}")

    # when
    response = _admin_login(client, "boss", DEFAULT_PASSWORD, address="203.0.113.50")

    # then
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()
    assert int(response["Retry-After"]) > 0


def test_admin_login_failures_count_per_address(client):
    codes = [_admin_login(client, f"user{n}", "guess").status_code for n in range(7)]
    assert codes == [200] * 6 + [429]


def test_the_api_token_endpoint_stops_a_guessing_loop_with_429_json(api_client):
    PerformerFactory(username="bo")

    def attempt(password: str, n: int):
        return api_client.post(
            "/api/auth/token/",
            {"username": "bo", "password": password},
            format="json",
            REMOTE_ADDR=f"10.0.0.{n}",
        )

    codes = [attempt(f"guess-{n}", n).status_code for n in range(3)]
    refused = attempt(DEFAULT_PASSWORD, 99)

    assert codes == [400, 400, 400]
    assert refused.status_code == 429
    assert refused.json()["detail"].startswith("Too many attempts; try again in")
    assert int(refused["Retry-After"]) > 0
    assert "token" not in refused.json()


def test_the_api_token_endpoint_counts_per_address_whatever_forwarded_for_says(api_client):
    codes = [
        api_client.post(
            "/api/auth/token/",
            {"username": f"user{n}", "password": "guess"},
            format="json",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}",
        ).status_code
        for n in range(7)
    ]
    assert codes == [400] * 6 + [429]


def test_page_sign_ups_are_limited_per_address(client):
    def sign_up(n: int):
        return client.post(
            reverse("signup"),
            {"username": f"new{n}", "password": "a-long-passphrase-9", "role": "performer"},
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}",
        )

    codes = []
    for n in range(3):
        codes.append(sign_up(n).status_code)
        client.logout()

    assert codes == [302, 302, 429]
    refused = sign_up(9)
    assert "Too many attempts; try again in" in refused.content.decode()
    assert not User.objects.filter(username="new9").exists()


def test_api_sign_ups_are_limited_per_address(api_client):
    def register(n: int):
        return api_client.post(
            "/api/auth/register/",
            {"username": f"new{n}", "password": "a-long-passphrase-9", "role": "performer"},
            format="json",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}",
        )

    codes = [register(n).status_code for n in range(3)]

    assert codes == [201, 201, 429]
    assert register(9).json()["detail"].startswith("Too many attempts")
    assert not User.objects.filter(username="new2").exists()
