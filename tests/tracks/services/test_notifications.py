"""Notification emails come in batches per recipient; control characters never stop them."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from tests.factories import PerformerFactory, TrackFactory
from tracks import services
from tracks.models import Notification

pytestmark = pytest.mark.django_db


def _comment(*, user, track, body, capture):
    with capture(execute=True):
        return services.comment_post(user=user, track=track, body=body)


def test_a_burst_of_comments_sends_one_email_then_one_digest(
    track, settings, django_capture_on_commit_callbacks
):
    # given: five singers comment on the producer's track within a minute
    settings.NOTIFICATION_EMAIL_INTERVAL_S = 600
    singers = PerformerFactory.create_batch(5)

    # when
    for number, singer in enumerate(singers, start=1):
        _comment(user=singer, track=track, body=f"note {number}", capture=django_capture_on_commit_callbacks)

    # then: every notification is in the app, but only the first went out by email so far
    assert Notification.objects.filter(recipient=track.producer).count() == 5
    assert len(mail.outbox) == 1
    assert "note 1" in mail.outbox[0].body
    assert Notification.objects.filter(recipient=track.producer, email_pending=True).count() == 4

    # when: the digest runs before the interval has passed, nothing more is sent
    assert services.notification_emails_digest() == 0
    assert len(mail.outbox) == 1

    # when: the interval has passed
    Notification.objects.filter(recipient=track.producer).exclude(emailed_at=None).update(
        emailed_at=timezone.now() - timedelta(seconds=601)
    )
    assert services.notification_emails_digest() == 1

    # then: one digest with the four waiting notifications
    assert len(mail.outbox) == 2
    digest = mail.outbox[1]
    assert digest.to == [track.producer.email]
    assert digest.subject == "Backtrack: 4 new notifications"
    for number in (2, 3, 4, 5):
        assert f"note {number}" in digest.body
    assert not Notification.objects.filter(email_pending=True).exists()


def test_a_notification_after_the_interval_is_emailed_at_once(
    track, performer, settings, django_capture_on_commit_callbacks
):
    # given: the producer was emailed long ago
    settings.NOTIFICATION_EMAIL_INTERVAL_S = 60
    _comment(user=performer, track=track, body="first", capture=django_capture_on_commit_callbacks)
    Notification.objects.update(emailed_at=timezone.now() - timedelta(minutes=5))

    # when
    _comment(user=performer, track=track, body="second", capture=django_capture_on_commit_callbacks)

    # then
    assert [message.subject.endswith("“second”") for message in mail.outbox] == [False, True]


def test_a_user_without_an_address_gets_no_email_and_nothing_waits(track, django_capture_on_commit_callbacks):
    singer = PerformerFactory(email="")
    other_track = TrackFactory(producer__email="")

    _comment(user=singer, track=other_track, body="hello", capture=django_capture_on_commit_callbacks)

    assert Notification.objects.filter(recipient=other_track.producer).count() == 1
    assert not Notification.objects.filter(email_pending=True).exists()
    assert mail.outbox == []


def test_a_title_with_line_breaks_is_stored_clean_and_emails_still_go_out(
    producer, performer, midi_upload, django_capture_on_commit_callbacks
):
    # given: a title and a comment carrying header-injection attempts
    track = services.track_create(
        producer=producer, title="Song\r\nBcc: victim@example.com", genre="pop", midi=midi_upload()
    )

    # when
    _comment(
        user=performer,
        track=track,
        body="line one\r\nline two\x00\x07",
        capture=django_capture_on_commit_callbacks,
    )

    # then
    assert track.title == "Song Bcc: victim@example.com"
    assert len(mail.outbox) == 1
    assert "\n" not in mail.outbox[0].subject
    assert mail.outbox[0].to == [producer.email]
    assert mail.outbox[0].bcc == []
    comment = track.comments.get()
    assert comment.body == "line one\nline two"
