"""GET /metrics: queue depth, renders by status and render durations in the Prometheus text format;
open to loopback, staff and the token holder only."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from django.conf import settings
from django.test import Client
from django.utils import timezone

from backtrack import metrics
from tests.factories import RenderFactory, UserFactory
from tests.integration.worker import purge_test_queue
from tracks.models import RenderStatus

pytestmark = pytest.mark.django_db

OUTSIDER = "203.0.113.7"


@pytest.fixture(autouse=True)
def fresh_counters() -> Iterator[None]:
    """The tests' own counters and queues in the real Redis, empty before and after."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(f"{settings.METRICS_REDIS_KEY}:renders")
    purge_test_queue()
    yield
    client.delete(f"{settings.METRICS_REDIS_KEY}:renders")
    purge_test_queue()


def samples(text: str) -> dict[str, float]:
    """``{'name{labels}': value}`` for every sample line."""
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def scrape(client: Client, **extra: Any) -> Any:
    return client.get("/metrics", **extra)


def test_a_loopback_scrape_shows_queues_renders_by_status_and_the_duration_histogram():
    # given: renders in several states, and one render message waiting in the renders queue
    RenderFactory.create_batch(2, status=RenderStatus.DONE)
    RenderFactory(status=RenderStatus.FAILED)
    waiting = RenderFactory(status=RenderStatus.QUEUED)
    from tracks.tasks import render_run

    render_run.apply_async(args=(waiting.pk,), retry=False)

    # when
    response = scrape(Client(REMOTE_ADDR="127.0.0.1"))

    # then
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    body = response.content.decode()
    found = samples(body)
    assert found['backtrack_queue_depth{queue="renders"}'] == 1
    assert found['backtrack_queue_depth{queue="stems"}'] == 0
    assert found['backtrack_queue_depth{queue="maintenance"}'] == 0
    assert found['backtrack_renders_total{status="done"}'] == 2
    assert found['backtrack_renders_total{status="failed"}'] == 1
    assert found['backtrack_renders_total{status="queued"}'] == 1
    assert found['backtrack_renders_total{status="rendering"}'] == 0
    assert "# TYPE backtrack_render_seconds histogram" in body
    assert found['backtrack_render_seconds_bucket{le="+Inf"}'] == 0


def test_finished_renders_fill_the_histogram_and_failures_are_counted():
    # given: workers recorded a 7 s render, a 50 s render and a failure
    start = timezone.now()
    metrics.render_observe(status="done", started_at=start, finished_at=start + timedelta(seconds=7))
    metrics.render_observe(status="done", started_at=start, finished_at=start + timedelta(seconds=50))
    metrics.render_observe(status="failed", started_at=start, finished_at=start)

    # when
    found = samples(scrape(Client(REMOTE_ADDR="127.0.0.1")).content.decode())

    # then: cumulative buckets, a sum and a count, the failure apart
    assert found['backtrack_render_seconds_bucket{le="5"}'] == 0
    assert found['backtrack_render_seconds_bucket{le="10"}'] == 1
    assert found['backtrack_render_seconds_bucket{le="30"}'] == 1
    assert found['backtrack_render_seconds_bucket{le="60"}'] == 2
    assert found['backtrack_render_seconds_bucket{le="+Inf"}'] == 2
    assert found["backtrack_render_seconds_count"] == 2
    assert found["backtrack_render_seconds_sum"] == pytest.approx(57.0)
    assert found["backtrack_render_failures_total"] == 1


def test_the_render_task_counts_what_it_finished(monkeypatch):
    # given: a queued render whose execution finishes it in 12 s
    from tracks import services, tasks

    render = RenderFactory(status=RenderStatus.QUEUED)

    def finish(*, render):
        now = timezone.now()
        type(render).objects.filter(pk=render.pk).update(
            status=RenderStatus.DONE, started_at=now - timedelta(seconds=12), finished_at=now
        )
        render.refresh_from_db()
        return render

    monkeypatch.setattr(services, "render_execute", finish)

    # when
    tasks.render_run.apply(args=[render.pk])

    # then
    found = samples(scrape(Client(REMOTE_ADDR="127.0.0.1")).content.decode())
    assert found["backtrack_render_seconds_count"] == 1
    assert found['backtrack_render_seconds_bucket{le="10"}'] == 0
    assert found['backtrack_render_seconds_bucket{le="20"}'] == 1


def test_an_outsider_is_refused():
    response = scrape(Client(REMOTE_ADDR=OUTSIDER))
    assert response.status_code == 403
    assert "backtrack_" not in response.content.decode()


def test_a_loopback_address_behind_a_proxy_is_not_trusted():
    response = scrape(Client(REMOTE_ADDR="127.0.0.1"), HTTP_X_FORWARDED_FOR=OUTSIDER)
    assert response.status_code == 403


def test_staff_may_scrape_from_anywhere():
    client = Client(REMOTE_ADDR=OUTSIDER)
    client.force_login(UserFactory(is_staff=True))
    assert scrape(client).status_code == 200


def test_a_signed_in_non_staff_user_is_refused():
    client = Client(REMOTE_ADDR=OUTSIDER)
    client.force_login(UserFactory())
    assert scrape(client).status_code == 403


def test_the_token_opens_it_and_a_wrong_token_does_not(settings):
    settings.METRICS_TOKEN = "s3cret-token"
    client = Client(REMOTE_ADDR=OUTSIDER)
    assert scrape(client, HTTP_AUTHORIZATION="Bearer s3cret-token").status_code == 200
    assert scrape(client, HTTP_AUTHORIZATION="Bearer guess").status_code == 403


def test_renders_total_is_one_cheap_query(django_assert_max_num_queries):
    RenderFactory.create_batch(3, status=RenderStatus.DONE)
    with django_assert_max_num_queries(1):
        body = metrics.metrics_text()
    assert re.search(r'^backtrack_renders_total\{status="done"\} 3$', body, re.M)
