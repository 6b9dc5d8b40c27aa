"""Account and profile pages: what a visitor sees, what a form refuses and where it says so."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from performers.models import ChosenKey, Profile, User
from performers.services import profile_update, user_register
from tracks.demo import compose_song
from tracks.engine import transpose_key
from tracks.models import Track
from tracks.services import track_create

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-enough-secret-9"


def _user(username: str = "ella", role: str = "performer") -> User:
    return user_register(username=username, password=PASSWORD, role=role)


@pytest.fixture
def demo_track() -> Track:
    producer = user_register(username="prod", password=PASSWORD, role="producer")
    midi = SimpleUploadedFile("song.mid", compose_song(style="pop", minutes=0.3, parts=4, seed=5))
    return track_create(producer=producer, title="Sunlit Avenue", genre="pop", midi=midi)


def _label_for(html: str, text: str) -> str:
    """The id of the control whose <label> reads exactly ``text``."""
    match = re.search(r'<label for="([^"]+)">\s*' + re.escape(text) + r"\s*</label>", html)
    assert match, f"no label {text!r}"
    return match.group(1)


def test_login_page_has_username_and_password_labels_and_a_log_in_button(client: Client) -> None:
    html = client.get(reverse("login")).content.decode()

    assert _label_for(html, "Username") == "id_username"
    assert _label_for(html, "Password") == "id_password"
    assert re.search(r'<button type="submit">Log in</button>', html)
    assert "csrfmiddlewaretoken" in html


def test_logging_in_with_the_form_signs_the_user_in(client: Client) -> None:
    _user()

    response = client.post(reverse("login"), {"username": "ella", "password": PASSWORD})

    assert response.status_code == 302
    assert response.url == reverse("tracks:home")
    assert "Signed in as ella" in client.get(reverse("tracks:home")).content.decode()


def test_a_wrong_password_is_refused_on_the_page(client: Client) -> None:
    _user()

    response = client.post(reverse("login"), {"username": "ella", "password": "nope"})

    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_signing_up_as_a_performer_logs_in_and_leads_to_the_profile(client: Client) -> None:
    response = client.post(
        reverse("signup"), {"username": "nina", "password": PASSWORD, "email": "", "role": "performer"}
    )

    assert response.status_code == 302
    assert response.url == reverse("profile")
    user = User.objects.get(username="nina")
    assert user.is_performer
    assert not user.is_producer
    assert Profile.objects.filter(user=user).exists()
    assert client.get(reverse("profile")).status_code == 200


def test_signing_up_as_a_producer_leads_to_the_upload_page(client: Client) -> None:
    response = client.post(
        reverse("signup"), {"username": "quincy", "password": PASSWORD, "email": "", "role": "producer"}
    )

    assert response.status_code == 302
    assert response.url == reverse("tracks:upload")
    assert User.objects.get(username="quincy").is_producer


def test_sign_up_errors_are_shown_next_to_their_fields(client: Client) -> None:
    _user("taken")

    response = client.post(
        reverse("signup"), {"username": "taken", "password": "123", "email": "not-an-email", "role": "boss"}
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert User.objects.count() == 1
    # Each message sits in the field block of the control it is about.
    email_block = html.split('for="id_email"', 1)[1].split('class="field')[0]
    assert "Enter a valid email address." in email_block
    role_block = html.split("<legend>I am a</legend>")[1].split("</fieldset>")[0]
    assert "Select a valid choice." in role_block


def test_a_taken_username_is_reported_at_the_username_field(client: Client) -> None:
    _user("taken")

    response = client.post(
        reverse("signup"), {"username": "taken", "password": PASSWORD, "email": "", "role": "performer"}
    )

    username_block = response.content.decode().split('for="id_username"', 1)[1].split('class="field')[0]
    assert "that username is taken" in username_block


def test_the_profile_needs_a_login(client: Client) -> None:
    response = client.get(reverse("profile"))

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_the_profile_offers_notes_with_their_pitch_and_a_way_to_hear_them(client: Client) -> None:
    client.force_login(_user())

    html = client.get(reverse("profile")).content.decode()

    assert _label_for(html, "Lowest comfortable note") == "id_vocal_low"
    assert _label_for(html, "Highest comfortable note") == "id_vocal_high"
    assert '<option value="G3" data-midi="55">G3</option>' in html
    assert 'aria-label="Hear lowest note"' in html
    assert 'aria-label="Hear highest note"' in html


def test_saving_a_vocal_range_genres_and_bio(client: Client) -> None:
    user = _user()
    client.force_login(user)

    response = client.post(
        reverse("profile"),
        {
            "display_name": "Ella",
            "vocal_low": "G3",
            "vocal_high": "C5",
            "genres": ["pop", "jazz"],
            "bio": "Alto.",
        },
    )

    assert response.status_code == 302
    profile = Profile.objects.get(user=user)
    assert (profile.vocal_low, profile.vocal_high) == (55, 72)
    assert sorted(profile.genres.values_list("slug", flat=True)) == ["jazz", "pop"]
    html = client.get(reverse("profile")).content.decode()
    assert re.search(
        r'<option value="G3" (selected data-midi="55"|data-midi="55" selected)>G3</option>', html
    )


def test_a_range_upside_down_is_refused_next_to_the_highest_note(client: Client) -> None:
    user = _user()
    client.force_login(user)

    response = client.post(reverse("profile"), {"vocal_low": "C5", "vocal_high": "G3"})

    assert response.status_code == 200
    high_block = response.content.decode().split('for="id_vocal_high"', 1)[1].split("</fieldset>")[0]
    assert "must be above the lowest" in high_block
    assert Profile.objects.get(user=user).vocal_low is None


def test_profile_text_is_escaped(client: Client) -> None:
    user = _user()
    profile_update(user=user, display_name="<b>Ella</b>", bio="<script>alert(1)</script>")
    client.force_login(user)

    html = client.get(reverse("profile")).content.decode()

    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>Ella</b>" not in html


def test_the_profile_lists_the_keys_chosen_per_track(client: Client, demo_track: Track) -> None:
    user = _user()
    ChosenKey.objects.create(performer=user, track=demo_track, transpose=2)
    client.force_login(user)

    html = client.get(reverse("profile")).content.decode()

    original = demo_track.current_revision.analysis["key"]
    assert demo_track.title in html
    assert reverse("tracks:detail", kwargs={"pk": demo_track.pk}) in html
    assert f"<strong>{transpose_key(original, 2)}</strong>" in html


def test_logging_out_is_a_post_with_csrf(client: Client) -> None:
    client.force_login(_user())
    html = client.get(reverse("tracks:home")).content.decode()
    assert re.search(
        r'<form method="post" action="/logout/">\s*<input type="hidden" name="csrfmiddlewaretoken"', html
    )

    response = client.post(reverse("logout"))

    assert response.status_code == 302
    assert "Log in" in client.get(reverse("tracks:home")).content.decode()
