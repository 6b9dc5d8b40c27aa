from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from kombu.exceptions import OperationalError as KombuOperationalError

from backtrack.api.throttles import RenderRequestThrottle
from tests.factories import PerformerFactory, ProducerFactory, RenderFactory, RevisionFactory, TrackFactory
from tracks import services
from tracks.models import Render, RenderStatus

pytestmark = pytest.mark.django_db

RENDER_FIELDS = {
    "id", "status", "error", "progress", "download_url", "key", "tempo_bpm", "duration_s",
    "transpose", "tempo", "mix", "click", "count_in", "revision", "track", "peaks",
}  # fmt: skip


def _done(render: Render, *, audio: bytes = b"ID3\x04fake-mp3-bytes") -> Render:
    name = default_storage.save(
        f"renders/{render.revision_id}/{render.settings_hash}.mp3", ContentFile(audio)
    )
    Render.objects.filter(pk=render.pk).update(
        status=RenderStatus.DONE,
        audio=name,
        audio_size=len(audio),
        key="D major",
        tempo_bpm=96.0,
        duration_s=12.5,
    )
    render.refresh_from_db()
    return render


def test_post_render_by_track_is_202_with_id_and_status(client_for, performer, track, enqueued):
    # when
    response = client_for(performer).post(
        "/api/renders/",
        {
            "track": track.pk,
            "transpose": 2,
            "tempo": 0.8,
            "mix": {"0": {"mute": True}},
            "click": True,
            "count_in": 1,
        },
        format="json",
    )

    # then
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued"
    assert set(body) >= RENDER_FIELDS
    assert (body["transpose"], body["tempo"], body["click"], body["count_in"]) == (2, 0.8, True, 1)
    assert body["mix"] == {"0": {"gain_db": 0.0, "mute": True, "solo": False}}
    assert body["revision"] == track.current_revision.pk
    assert body["download_url"] is None
    render = Render.objects.get(pk=body["id"])
    assert render.requested_by == performer


def test_post_render_by_revision_uses_that_revision(client_for, performer, track, enqueued):
    old = track.current_revision
    RevisionFactory(track=track, number=2)
    response = client_for(performer).post("/api/renders/", {"revision": old.pk}, format="json")
    assert response.status_code == 202
    assert response.json()["revision"] == old.pk


def test_the_same_request_twice_returns_the_same_render_and_no_new_task(
    client_for, performer, track, enqueued, django_capture_on_commit_callbacks
):
    client = client_for(performer)
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post("/api/renders/", {"track": track.pk, "transpose": 3}, format="json")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        second = client.post(
            "/api/renders/", {"track": track.pk, "transpose": 3, "tempo": 1.0}, format="json"
        )

    assert first.status_code == second.status_code == 202
    assert second.json()["id"] == first.json()["id"]
    assert set(second.json()) == set(first.json())
    assert callbacks == []
    assert enqueued == [first.json()["id"]]


def test_the_same_request_for_a_done_render_returns_it_with_a_download_url(
    client_for, performer, track, enqueued
):
    client = client_for(performer)
    render_id = client.post("/api/renders/", {"track": track.pk}, format="json").json()["id"]
    _done(Render.objects.get(pk=render_id))

    again = client.post("/api/renders/", {"track": track.pk}, format="json")

    assert again.status_code == 202
    assert again.json()["id"] == render_id
    assert again.json()["status"] == "done"
    assert again.json()["download_url"].endswith(f"/api/renders/{render_id}/download/")


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"transpose": 13}, "transpose must be between -12 and 12"),
        ({"tempo": 3}, "tempo must be between 0.5 and 1.5"),
        ({"count_in": 5}, "count_in"),
        ({"mix": {"42": {"mute": True}}}, "there is no part 42"),
        ({"mix": {"lead": {"mute": True}}}, "part index"),
        ({"mix": {"0": {"gain_db": "loud"}}}, "valid number"),
        ({"transpose": "up"}, "valid integer"),
    ],
)
def test_bad_render_settings_are_400_with_a_reason(client_for, performer, track, payload, reason):
    response = client_for(performer).post("/api/renders/", {"track": track.pk, **payload}, format="json")
    assert response.status_code == 400, response.content
    assert reason in response.json()["detail"]
    assert Render.objects.count() == 0


def test_a_render_needs_a_revision_or_a_track(client_for, performer):
    response = client_for(performer).post("/api/renders/", {"transpose": 1}, format="json")
    assert response.status_code == 400
    assert "revision or a track" in response.json()["detail"]


def test_a_revision_of_another_track_is_refused(client_for, performer, track):
    other = TrackFactory()
    response = client_for(performer).post(
        "/api/renders/", {"track": track.pk, "revision": other.current_revision.pk}, format="json"
    )
    assert response.status_code == 400


def test_anonymous_render_requests_are_refused(api_client, track):
    assert api_client.post("/api/renders/", {"track": track.pk}, format="json").status_code == 401
    assert Render.objects.count() == 0


def test_render_requests_on_private_tracks_are_404_for_strangers(client_for, private_track, enqueued):
    stranger = client_for(PerformerFactory())
    for payload in ({"track": private_track.pk}, {"revision": private_track.current_revision.pk}):
        assert stranger.post("/api/renders/", payload, format="json").status_code == 404
    assert (
        client_for(private_track.producer)
        .post("/api/renders/", {"track": private_track.pk}, format="json")
        .status_code
        == 202
    )


def test_too_many_active_renders_is_429_with_a_reason(client_for, performer, track, settings, enqueued):
    settings.RENDER_MAX_ACTIVE_PER_USER = 1
    client = client_for(performer)
    assert client.post("/api/renders/", {"track": track.pk, "transpose": 1}, format="json").status_code == 202
    response = client.post("/api/renders/", {"track": track.pk, "transpose": 2}, format="json")
    assert response.status_code == 429
    assert "limit is 1" in response.json()["detail"]


def test_the_render_request_throttle(client_for, performer, track, enqueued, monkeypatch):
    monkeypatch.setattr(RenderRequestThrottle, "THROTTLE_RATES", {"renders": "2/minute"})
    client = client_for(performer)
    codes = [client.post("/api/renders/", {"track": track.pk}, format="json").status_code for _ in range(3)]
    assert codes == [202, 202, 429]


@pytest.mark.django_db(transaction=True)
def test_redis_down_is_503_with_a_reason_and_the_render_is_kept_for_later(client_for, monkeypatch):
    # given: autocommit, as in production, and a broker that refuses connections
    from tracks.tasks import render_run

    performer, track = PerformerFactory(), TrackFactory()
    client = client_for(performer)

    def refuse(*args, **kwargs):
        raise KombuOperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(render_run, "apply_async", refuse)

    # when
    response = client.post("/api/renders/", {"track": track.pk}, format="json")

    # then: 503 with a reason, and the request is not lost
    assert response.status_code == 503
    body = response.json()
    assert "queue is unavailable" in body["detail"]
    kept = Render.objects.get(pk=body["render"])
    assert kept.status == RenderStatus.QUEUED
    assert kept.enqueued_at is None

    # when: Redis is back and the same request comes again after the grace period
    sent: list[int] = []

    class _Result:
        id = "task-after-outage"

    def apply_async(args: tuple[int, ...], **kwargs: Any) -> _Result:
        sent.append(args[0])
        return _Result()

    monkeypatch.setattr(render_run, "apply_async", apply_async)
    Render.objects.filter(pk=kept.pk).update(created_at=kept.created_at - services.ENQUEUE_GRACE * 2)
    again = client.post("/api/renders/", {"track": track.pk}, format="json")

    # then: the same render is enqueued now
    assert again.status_code == 202
    assert again.json()["id"] == kept.pk
    assert sent == [kept.pk]
    kept.refresh_from_db()
    assert kept.enqueued_at is not None
    assert kept.task_id == "task-after-outage"


def test_get_render_and_its_visibility(api_client, client_for, enqueued):
    public = RenderFactory()
    private = RenderFactory(revision=TrackFactory(is_public=False).current_revision)

    body = api_client.get(f"/api/renders/{public.pk}/").json()
    assert set(body) >= RENDER_FIELDS
    assert api_client.get(f"/api/renders/{private.pk}/").status_code == 404
    assert client_for(PerformerFactory()).get(f"/api/renders/{private.pk}/").status_code == 404
    assert client_for(private.revision.track.producer).get(f"/api/renders/{private.pk}/").status_code == 200


def test_download_is_an_mp3_attachment_with_a_safe_name(api_client):
    # given
    track = TrackFactory(title='Harbour "Lights"/Night')
    render = _done(RenderFactory(revision=track.current_revision, variant_settings={"transpose": 2}))

    # when
    response = api_client.get(f"/api/renders/{render.pk}/download/")

    # then
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/mpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert 'filename="Harbour LightsNight (D major, 96 bpm).mp3"' in disposition
    assert b"".join(response.streaming_content) == b"ID3\x04fake-mp3-bytes"


def test_download_of_a_private_render_is_404_for_strangers(api_client, client_for):
    render = _done(RenderFactory(revision=TrackFactory(is_public=False).current_revision))
    assert api_client.get(f"/api/renders/{render.pk}/download/").status_code == 404
    assert client_for(ProducerFactory()).get(f"/api/renders/{render.pk}/download/").status_code == 404
    assert (
        client_for(render.revision.track.producer).get(f"/api/renders/{render.pk}/download/").status_code
        == 200
    )


def test_download_before_the_render_is_done_is_409(api_client):
    render = RenderFactory(status=RenderStatus.RENDERING)
    response = api_client.get(f"/api/renders/{render.pk}/download/")
    assert response.status_code == 409
    assert "not ready" in response.json()["detail"]


def test_download_of_a_vanished_file_is_404_not_500(api_client):
    render = _done(RenderFactory())
    default_storage.delete(render.audio.name)
    response = api_client.get(f"/api/renders/{render.pk}/download/")
    assert response.status_code == 404
    assert "request it again" in response.json()["detail"]


def test_download_marks_the_render_as_used(api_client):
    render = _done(RenderFactory())
    before = render.last_accessed_at
    api_client.get(f"/api/renders/{render.pk}/download/")
    render.refresh_from_db()
    assert render.last_accessed_at > before


def test_track_renders_list(api_client, client_for):
    track = TrackFactory()
    first = RenderFactory(revision=track.current_revision, variant_settings={"transpose": 1})
    second = RenderFactory(revision=track.current_revision, variant_settings={"transpose": 2})
    RenderFactory()
    body = api_client.get(f"/api/tracks/{track.pk}/renders/").json()
    assert [row["id"] for row in body["results"]] == [second.pk, first.pk]
    assert "peaks" not in body["results"][0]
    private = TrackFactory(is_public=False)
    assert client_for(PerformerFactory()).get(f"/api/tracks/{private.pk}/renders/").status_code == 404


def test_a_cache_outage_does_not_block_render_requests(client_for, performer, track, enqueued, monkeypatch):
    # given: the cache that holds throttle counters (Redis in production) is unreachable
    from django.core.cache import cache
    from redis.exceptions import ConnectionError as RedisConnectionError

    def down(*args, **kwargs):
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(cache, "get", down)

    # when
    response = client_for(performer).post("/api/renders/", {"track": track.pk}, format="json")

    # then: the throttle steps aside instead of failing the request
    assert response.status_code == 202
