"""A flood of comments is refused with a reason, on every path, before anything is stored."""

import pytest

from tests.factories import TrackFactory
from tracks import services
from tracks.models import Comment, Notification

pytestmark = pytest.mark.django_db


def test_comments_past_the_per_minute_limit_are_refused(track, performer, settings):
    # given
    settings.COMMENTS_PER_MINUTE = 3
    for number in range(3):
        services.comment_post(user=performer, track=track, body=f"comment {number}")

    # when / then
    with pytest.raises(services.CommentLimitReached, match="3 comments in the last minute") as refused:
        services.comment_post(user=performer, track=track, body="one too many")
    assert refused.value.retry_after_s == 60
    assert Comment.objects.filter(author=performer).count() == 3
    assert Notification.objects.filter(recipient=track.producer).count() == 3


def test_the_hourly_limit_counts_comments_on_every_track(performer, settings):
    settings.COMMENTS_PER_MINUTE = 100
    settings.COMMENTS_PER_HOUR = 4
    tracks = TrackFactory.create_batch(2)
    for number in range(4):
        services.comment_post(user=performer, track=tracks[number % 2], body=f"comment {number}")

    with pytest.raises(services.CommentLimitReached, match="in the last hour"):
        services.comment_post(user=performer, track=tracks[0], body="more")


def test_the_api_answers_429_with_retry_after(track, performer, settings, client_for):
    settings.COMMENTS_PER_MINUTE = 2
    client = client_for(performer)
    for number in range(2):
        assert (
            client.post(
                f"/api/tracks/{track.pk}/comments/", {"body": f"c{number}"}, format="json"
            ).status_code
            == 201
        )

    response = client.post(f"/api/tracks/{track.pk}/comments/", {"body": "flood"}, format="json")

    assert response.status_code == 429
    assert response["Retry-After"] == "60"
    assert "2 comments in the last minute" in response.json()["detail"]
    assert Comment.objects.count() == 2
