"""A render request while Redis is down answers 503 with Retry-After at once, on the API and the page,
and keeps the render queued for the sweeper. Against a real Redis that is stopped, not a mock."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis.connection
from django.urls import reverse
from kombu import pools as kombu_pools

from backtrack.celery import app
from tests.factories import RenderFactory
from tracks import services
from tracks.models import Render, RenderStatus

pytestmark = pytest.mark.django_db(transaction=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThrowawayRedis:
    """A redis-server of our own on a free port, which the test can stop."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.connects: list[float] = []
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    pytest.fail("the throwaway redis-server did not start")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def count_connects(self, monkeypatch: pytest.MonkeyPatch) -> list[float]:
        """Every attempt of redis-py to open a socket to this server (a spy: the real call runs)."""
        attempts: list[float] = []
        real_connect = redis.connection.Connection._connect
        port = self.port

        def spy(conn: Any) -> Any:
            if getattr(conn, "port", None) == port:
                attempts.append(time.monotonic())
            return real_connect(conn)

        monkeypatch.setattr(redis.connection.Connection, "_connect", spy)
        return attempts


def _point_celery_at(broker_url: str, result_backend: str | None) -> None:
    """The Celery app read its settings once; point its broker (and a result backend, if one is
    configured) elsewhere, and forget the pooled connections to the old one."""
    kombu_pools.reset()  # closes every pooled connection and forgets the pools
    app.conf.broker_url = broker_url
    app.conf.result_backend = result_backend  # type: ignore[assignment]
    app._pool = None
    app.amqp._producer_pool = None
    app._backend_cache = None  # the result backend is cached here, or per thread
    app._local.__dict__.pop("backend", None)


@pytest.fixture
def stopped_redis(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[ThrowawayRedis]:
    """Redis was up (the web process holds a pooled connection to it), then it stopped: the broker
    and, if one were configured, the result backend are both on it, as with one REDIS_URL."""
    from tracks.tasks import renders_prune

    original = (app.conf.broker_url, app.conf.result_backend)
    server = ThrowawayRedis()
    settings.CELERY_BROKER_URL = server.url
    _point_celery_at(server.url, server.url if original[1] else None)
    try:
        renders_prune.apply_async(retry=False)  # a connection in the pool, as in a running web process
        server.stop()
        server.connects = server.count_connects(monkeypatch)
        yield server
    finally:
        server.stop()
        _point_celery_at(*original)


def test_the_api_answers_503_with_retry_after_and_keeps_the_render_queued(
    stopped_redis, client_for, performer, track
):
    # when
    response = client_for(performer).post("/api/renders/", {"track": track.pk, "transpose": 2}, format="json")

    # then: 503 with Retry-After and the render's id, after one try to reach Redis (no reconnect
    # loop in the request); the render waits for the sweeper
    assert response.status_code == 503, response.content
    assert len(stopped_redis.connects) == 1
    assert int(response["Retry-After"]) > 0
    body = response.json()
    assert "queue is unavailable" in body["detail"]
    render = Render.objects.get()
    assert body["render"] == render.pk
    assert (render.status, render.enqueued_at) == (RenderStatus.QUEUED, None)


def test_every_request_while_redis_is_down_gets_the_same_answer(stopped_redis, client_for, performer, track):
    client = client_for(performer)
    statuses = [
        client.post("/api/renders/", {"track": track.pk, "transpose": n}, format="json").status_code
        for n in (1, 2, 3)
    ]
    assert statuses == [503, 503, 503]
    assert len(stopped_redis.connects) == 3
    assert set(Render.objects.values_list("status", flat=True)) == {RenderStatus.QUEUED}


def test_the_render_form_says_the_render_is_kept(stopped_redis, client, performer, track):
    # given
    client.force_login(performer)

    # when
    response = client.post(
        reverse("tracks:render-create", kwargs={"pk": track.pk}),
        {"transpose": "2", "tempo": "100", "count_in": "0"},
        HTTP_HX_REQUEST="true",
    )

    # then: the page shows the kept render and says the queue is down
    assert response.status_code == 200
    assert len(stopped_redis.connects) == 1
    assert "the render queue is unavailable right now" in response.content.decode()
    render = Render.objects.get()
    assert (render.status, render.enqueued_at) == (RenderStatus.QUEUED, None)


def test_the_sweeper_waits_quietly_while_redis_is_down(stopped_redis, settings):
    # given: a render that never reached the broker, and one whose message is somewhere in Redis
    settings.RENDER_LOST_GRACE_S = 0
    never_sent = RenderFactory()
    sent = RenderFactory(
        enqueued_at=never_sent.created_at, task_id="somewhere", variant_settings={"transpose": 1}
    )

    # when
    count = services.render_requeue_stale()

    # then: nothing is lost or doubled; the next sweep tries again
    assert count == 0
    assert Render.objects.get(pk=never_sent.pk).enqueued_at is None
    assert Render.objects.get(pk=sent.pk).task_id == "somewhere"
