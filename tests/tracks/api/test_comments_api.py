from typing import cast

import pytest

from tests.factories import CommentFactory, PerformerFactory, ProducerFactory, RenderFactory, TrackFactory
from tracks.models import Comment, Notification

pytestmark = pytest.mark.django_db


def _bar_seconds(track):
    analysis = track.current_revision.analysis
    return int(analysis["time_signature"].split("/")[0]) * 60 / analysis["tempo_bpm"]


def test_post_a_comment_and_list_it(client_for, performer, track):
    client = client_for(performer)

    response = client.post(f"/api/tracks/{track.pk}/comments/", {"body": "<b>Great</b> intro"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["body"] == "<b>Great</b> intro"  # stored as plain text; pages escape it
    assert body["author"]["username"] == performer.username
    assert body["can_edit"]
    assert body["can_resolve"]
    listing = client.get(f"/api/tracks/{track.pk}/comments/").json()
    assert [thread["id"] for thread in listing["results"]] == [body["id"]]
    assert Notification.objects.filter(recipient=track.producer, kind="comment").count() == 1


def test_a_comment_at_a_moment_of_a_render_gives_bar_beat_and_seconds_for_the_viewed_render(
    client_for, performer, track
):
    # given: a render at 0.8x and a comment at the downbeat of bar 5 of it
    bar_s = _bar_seconds(track)
    slow = RenderFactory(revision=track.current_revision, variant_settings={"tempo": 0.8})
    original = RenderFactory(revision=track.current_revision, variant_settings={"count_in": 2})
    client = client_for(performer)

    # when
    created = client.post(
        f"/api/tracks/{track.pk}/comments/",
        {"body": "Too busy here", "render": slow.pk, "at_seconds": 4 * bar_s / 0.8},
        format="json",
    ).json()

    # then: on the render it was made on
    assert created["render"] == slow.pk
    assert created["at"]["bar"] == 5
    assert created["at"]["beat"] == pytest.approx(1.0, abs=1e-3)
    assert created["at_seconds"] == pytest.approx(4 * bar_s / 0.8, abs=0.01)

    # and on another variant (1x with a two-bar count-in), the same bar at its own seconds
    viewed = client.get(f"/api/tracks/{track.pk}/comments/?render={original.pk}").json()["results"][0]
    assert viewed["at"]["bar"] == 5
    assert viewed["at_seconds"] == pytest.approx(6 * bar_s, abs=0.01)


def test_replies_are_nested_under_their_thread(client_for, performer, track):
    client = client_for(performer)
    parent = client.post(f"/api/tracks/{track.pk}/comments/", {"body": "Question"}, format="json").json()
    reply = client_for(track.producer).post(
        f"/api/tracks/{track.pk}/comments/", {"body": "Answer", "parent": parent["id"]}, format="json"
    )
    assert reply.status_code == 201
    threads = client.get(f"/api/tracks/{track.pk}/comments/").json()["results"]
    assert len(threads) == 1
    assert [r["body"] for r in threads[0]["replies"]] == ["Answer"]
    assert Notification.objects.filter(recipient=performer, kind="reply").count() == 1


def test_unknown_or_foreign_ids_are_400(client_for, performer, track):
    other = TrackFactory()
    foreign_comment = CommentFactory(track=other)
    foreign_render = RenderFactory(revision=other.current_revision)
    response = client_for(performer).post(
        f"/api/tracks/{track.pk}/comments/",
        {"body": "x", "parent": foreign_comment.pk, "render": foreign_render.pk, "revision": 99999},
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"parent", "render", "revision"}


def test_an_empty_comment_is_400(client_for, performer, track):
    response = client_for(performer).post(f"/api/tracks/{track.pk}/comments/", {"body": "   "}, format="json")
    assert response.status_code == 400
    assert "body" in response.json()["errors"]


def test_a_negative_moment_is_400(client_for, performer, track):
    response = client_for(performer).post(
        f"/api/tracks/{track.pk}/comments/", {"body": "x", "at_seconds": -1}, format="json"
    )
    assert response.status_code == 400
    assert "at_seconds" in response.json()["errors"]


def test_anonymous_users_read_but_do_not_write(api_client, track):
    CommentFactory(track=track)
    assert api_client.get(f"/api/tracks/{track.pk}/comments/").status_code == 200
    assert (
        api_client.post(f"/api/tracks/{track.pk}/comments/", {"body": "hi"}, format="json").status_code == 401
    )


def test_comments_of_private_tracks_are_404_for_strangers(client_for, private_track):
    comment = CommentFactory(track=private_track, author=private_track.producer)
    stranger = client_for(PerformerFactory())
    assert stranger.get(f"/api/tracks/{private_track.pk}/comments/").status_code == 404
    assert (
        stranger.post(f"/api/tracks/{private_track.pk}/comments/", {"body": "x"}, format="json").status_code
        == 404
    )
    assert stranger.post(f"/api/comments/{comment.pk}/resolve/", {}, format="json").status_code == 404
    assert stranger.patch(f"/api/comments/{comment.pk}/", {"body": "x"}, format="json").status_code == 404
    assert stranger.delete(f"/api/comments/{comment.pk}/").status_code == 404


def test_resolve_and_unresolve_by_the_producer(client_for, track):
    comment = CommentFactory(track=track)
    client = client_for(track.producer)

    resolved = client.post(f"/api/comments/{comment.pk}/resolve/", {}, format="json")
    assert resolved.status_code == 200
    assert resolved.json()["resolved"] is True
    assert client.get(f"/api/tracks/{track.pk}/comments/?resolved=false").json()["count"] == 0

    reopened = client.post(f"/api/comments/{comment.pk}/resolve/", {"resolved": False}, format="json")
    assert reopened.json()["resolved"] is False
    assert client.get(f"/api/tracks/{track.pk}/comments/?resolved=false").json()["count"] == 1


def test_resolve_in_a_revision(client_for, track):
    comment = cast(Comment, CommentFactory(track=track))
    response = client_for(track.producer).post(
        f"/api/comments/{comment.pk}/resolve/", {"revision": track.current_revision.pk}, format="json"
    )
    assert response.json()["resolved_in_revision"] == 1
    assert Notification.objects.get(recipient=comment.author, kind="resolved").text.endswith("in revision 1")


def test_resolve_by_the_author_and_not_by_others(client_for, track):
    comment = CommentFactory(track=track)
    assert (
        client_for(comment.author).post(f"/api/comments/{comment.pk}/resolve/", {}, format="json").status_code
        == 200
    )
    for other in (PerformerFactory(), ProducerFactory()):
        response = client_for(other).post(
            f"/api/comments/{comment.pk}/resolve/", {"resolved": False}, format="json"
        )
        assert response.status_code == 403
        assert "producer or the comment's author" in response.json()["detail"]
    comment.refresh_from_db()
    assert comment.resolved


def test_authors_edit_and_delete_their_own_comments_only(client_for, track):
    comment = CommentFactory(track=track, body="Frist")
    author, producer = client_for(comment.author), client_for(track.producer)

    assert producer.patch(f"/api/comments/{comment.pk}/", {"body": "Mine"}, format="json").status_code == 403
    assert producer.delete(f"/api/comments/{comment.pk}/").status_code == 403
    edited = author.patch(f"/api/comments/{comment.pk}/", {"body": "First"}, format="json")
    assert edited.status_code == 200
    assert edited.json()["body"] == "First"
    assert edited.json()["edited_at"]
    assert author.delete(f"/api/comments/{comment.pk}/").status_code == 204
    assert not Comment.objects.filter(pk=comment.pk).exists()


def test_comment_writes_need_authentication(api_client, track):
    comment = CommentFactory(track=track)
    assert api_client.patch(f"/api/comments/{comment.pk}/", {"body": "x"}, format="json").status_code == 401
    assert api_client.delete(f"/api/comments/{comment.pk}/").status_code == 401
    assert api_client.post(f"/api/comments/{comment.pk}/resolve/", {}, format="json").status_code == 401


@pytest.mark.parametrize("threads", [2, 6])
def test_the_thread_list_costs_the_same_number_of_queries_whatever_its_length(
    api_client, django_assert_num_queries, threads
):
    track = TrackFactory()
    for _ in range(threads):
        parent = CommentFactory(track=track)
        CommentFactory(track=track, parent=parent)
    # track, count, page of threads, replies
    with django_assert_num_queries(4):
        response = api_client.get(f"/api/tracks/{track.pk}/comments/")
    assert response.json()["count"] == threads


def test_notifications_list_and_mark_read(client_for, performer, track):
    parent = CommentFactory(track=track, author=performer)
    client_for(track.producer).post(
        f"/api/tracks/{track.pk}/comments/", {"body": "Thanks!", "parent": parent.pk}, format="json"
    )
    client = client_for(performer)

    listing = client.get("/api/notifications/").json()
    assert [n["kind"] for n in listing["results"]] == ["reply"]
    assert listing["results"][0]["read"] is False

    assert client.post("/api/notifications/read/", {}, format="json").json() == {"marked": 1}
    assert client.get("/api/notifications/?unread=true").json()["count"] == 0


def test_notifications_are_private(api_client, client_for):
    assert api_client.get("/api/notifications/").status_code == 401
    assert client_for(PerformerFactory()).get("/api/notifications/").json()["count"] == 0
