from typing import cast

import pytest
from rest_framework.authtoken.models import Token

from performers.models import User
from tests.factories import DEFAULT_PASSWORD, PerformerFactory

pytestmark = pytest.mark.django_db


def test_register_returns_201_with_a_token_that_authenticates(api_client):
    # when
    response = api_client.post(
        "/api/auth/register/",
        {"username": "ada", "password": "a-long-passphrase", "email": "ada@example.com", "role": "performer"},
        format="json",
    )

    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["role"] == "performer"
    assert body["token"] == Token.objects.get(user__username="ada").key
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    assert api_client.get("/api/me/").json()["username"] == "ada"


def test_register_with_a_bad_role_is_400_with_a_reason(api_client):
    response = api_client.post(
        "/api/auth/register/",
        {"username": "ada", "password": "a-long-passphrase", "role": "boss"},
        format="json",
    )
    assert response.status_code == 400
    assert "role" in response.json()["errors"]
    assert "role" in response.json()["detail"]
    assert not User.objects.filter(username="ada").exists()


def test_register_with_a_weak_password_is_400(api_client):
    response = api_client.post(
        "/api/auth/register/", {"username": "ada", "password": "12345", "role": "producer"}, format="json"
    )
    assert response.status_code == 400
    assert "password" in response.json()["errors"]


def test_token_endpoint(api_client):
    # given
    user = cast(User, PerformerFactory(username="bo"))

    # when
    good = api_client.post(
        "/api/auth/token/", {"username": "bo", "password": DEFAULT_PASSWORD}, format="json"
    )
    bad = api_client.post("/api/auth/token/", {"username": "bo", "password": "wrong"}, format="json")

    # then
    assert good.status_code == 200
    assert good.json() == {"token": Token.objects.get(user=user).key}
    assert bad.status_code == 400
    assert bad.json()["detail"] == "wrong username or password"


def test_me_get_shows_notes_as_names(client_for):
    user = PerformerFactory(username="cy")
    user.profile.vocal_low, user.profile.vocal_high = 55, 73
    user.profile.save()

    body = client_for(user).get("/api/me/").json()

    assert body["vocal_low"] == "G3"
    assert body["vocal_high"] == "C#5"
    assert set(body) >= {"id", "username", "role", "display_name", "vocal_low", "vocal_high", "genres", "bio"}


def test_me_patch_updates_the_profile(client_for):
    client = client_for(PerformerFactory())

    response = client.patch(
        "/api/me/",
        {"display_name": "Cy", "vocal_low": "A3", "vocal_high": "E5", "genres": ["pop"], "bio": "hi"},
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["display_name"], body["vocal_low"], body["vocal_high"], body["genres"]) == (
        "Cy",
        "A3",
        "E5",
        ["pop"],
    )


def test_me_patch_with_an_inverted_range_is_400_and_changes_nothing(client_for):
    user = PerformerFactory()
    response = client_for(user).patch("/api/me/", {"vocal_low": "C5", "vocal_high": "C4"}, format="json")
    assert response.status_code == 400
    assert "vocal_high" in response.json()["errors"]
    user.profile.refresh_from_db()
    assert user.profile.vocal_low is None


def test_me_requires_authentication(api_client):
    response = api_client.get("/api/me/")
    assert response.status_code in (401, 403)
    assert "detail" in response.json()


def test_genres_list_is_public(api_client):
    response = api_client.get("/api/genres/")
    assert response.status_code == 200
    assert {"slug": "pop", "name": "Pop"} in response.json()
