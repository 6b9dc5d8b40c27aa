"""Control characters never reach a profile or a username: a CR/LF in a display name used to stop
notification emails (it broke the mail headers)."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from performers.models import Profile, User
from performers.services import profile_update, user_register
from tests.factories import PerformerFactory
from tracks.services import comment_post

pytestmark = pytest.mark.django_db


def test_a_display_name_with_a_header_injection_is_stored_on_one_line_and_emails_still_go(
    track, django_capture_on_commit_callbacks
):
    # given: a singer whose display name tries to add a mail header
    singer = PerformerFactory()
    profile_update(user=singer, display_name="Mallory\r\nBcc: x@example.com")
    singer.refresh_from_db()

    # when: they comment on a producer's track, and the producer replies
    with django_capture_on_commit_callbacks(execute=True):
        comment = comment_post(user=singer, track=track, body="Lovely intro")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        comment_post(user=track.producer, track=track, body="Thanks!", parent=comment)

    # then: the name is one clean line, and the email to that singer went out
    stored = Profile.objects.get(user=singer).display_name
    assert stored == "Mallory Bcc: x@example.com"
    assert not any(ch in stored for ch in "\r\n")
    assert [message.to for message in mail.outbox] == [[singer.email]]


def test_the_email_about_that_users_comment_is_sent_too(track, django_capture_on_commit_callbacks):
    singer = PerformerFactory()
    profile_update(user=singer, display_name="Eve\n\x00\u2028Bcc: x")

    with django_capture_on_commit_callbacks(execute=True):
        comment_post(user=singer, track=track, body="Key too high?")

    assert [message.to for message in mail.outbox] == [[track.producer.email]]
    assert "\n" not in mail.outbox[0].subject


def test_a_bio_keeps_its_line_breaks_and_loses_other_control_characters():
    singer = PerformerFactory()

    profile = profile_update(user=singer, bio="Alto.\r\nJazz\x07 and soul.\x1b[31m")

    assert profile.bio == "Alto.\nJazz and soul.[31m"


@pytest.mark.parametrize("username", ["bob\r\nBcc: x", "bob\n", "\tbob", "bo\x00b"])
def test_a_username_with_control_characters_is_refused_with_a_reason(username):
    with pytest.raises(ValidationError) as caught:
        user_register(username=username, password="a-long-passphrase-9", role="performer")

    assert "control characters" in caught.value.message_dict["username"][0]
    assert not User.objects.filter(username__startswith="bo").exists()


def test_the_api_refuses_a_username_with_control_characters_with_400(api_client):
    response = api_client.post(
        "/api/auth/register/",
        {"username": "bob\r\nBcc: x", "password": "a-long-passphrase-9", "role": "performer"},
        format="json",
    )

    assert response.status_code == 400
    assert "control characters" in response.json()["detail"]
