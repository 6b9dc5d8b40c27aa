"""Recovery from faults: a render whose worker died (silent heartbeat) and a queue message the broker
lost are re-queued by the sweeper within a minute; a live render is left alone.

The broker checks run against the real Redis (REDIS_URL), on the tests' own queue.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import DatabaseError
from django.utils import timezone

from backtrack.celery import app
from tests.factories import RenderFactory
from tests.integration.worker import celery_test_queue, purge_test_queue
from tracks import services
from tracks.models import Render, RenderStatus
from tracks.services import renders as render_services
from tracks.services.render_execution import RenderHeartbeat, render_heartbeat

pytestmark = pytest.mark.django_db


def ago(seconds: float) -> Any:
    return timezone.now() - timedelta(seconds=seconds)


@pytest.fixture
def test_queue() -> Iterator[str]:
    """The tests' own queue in the real Redis, empty before and after."""
    try:
        purge_test_queue()
    except Exception as exc:
        pytest.fail(f"Redis is not reachable at {app.conf.broker_url}: {exc}")
    yield celery_test_queue()
    purge_test_queue()


def publish_for_real(render: Render) -> str:
    """Publish the render's task to the broker (no worker consumes the test queue here)."""
    from tracks.tasks import render_run

    task_id = render_run.apply_async(args=(render.pk,), retry=False).id
    assert task_id
    return task_id


# --- a worker that died mid-render (heartbeat) ------------------------------------------------------


def test_a_rendering_render_with_a_silent_heartbeat_is_requeued(enqueued, settings):
    # given: a render whose worker last beat longer ago than the timeout, though it started recently
    settings.RENDER_HEARTBEAT_TIMEOUT_S = 30
    dead = RenderFactory(
        status=RenderStatus.RENDERING, task_id="gone", started_at=ago(40), heartbeat_at=ago(35), attempts=1
    )

    # when
    count = services.render_requeue_stale()

    # then: back in the queue at once, its attempt still counted
    dead.refresh_from_db()
    assert count == 1
    assert enqueued == [dead.pk]
    assert (dead.status, dead.attempts) == (RenderStatus.QUEUED, 1)


def test_a_long_render_with_a_fresh_heartbeat_is_left_alone(enqueued, settings):
    # given: a render running for longer than the hard time limit, but alive
    settings.RENDER_HEARTBEAT_TIMEOUT_S = 30
    started = ago(settings.CELERY_TASK_TIME_LIMIT + 120)
    alive = RenderFactory(
        status=RenderStatus.RENDERING, task_id="busy", started_at=started, heartbeat_at=ago(2), attempts=1
    )

    # when
    count = services.render_requeue_stale()

    # then
    alive.refresh_from_db()
    assert count == 0
    assert enqueued == []
    assert alive.status == RenderStatus.RENDERING


def test_a_new_claim_takes_over_a_render_whose_worker_went_silent(settings):
    # given: the sweeper re-queued it, but the row still says rendering under the dead task
    settings.RENDER_HEARTBEAT_TIMEOUT_S = 30
    render = RenderFactory(
        status=RenderStatus.RENDERING, task_id="dead", started_at=ago(40), heartbeat_at=ago(35), attempts=1
    )

    # when
    claimed = services.render_claim(render_id=render.pk, task_id="new")

    # then: the new task runs it (a second attempt), with a fresh heartbeat
    assert claimed is not None
    assert (claimed.status, claimed.task_id, claimed.attempts) == (RenderStatus.RENDERING, "new", 2)
    assert claimed.heartbeat_at is not None
    assert claimed.heartbeat_at > ago(5)


def test_a_duplicate_message_does_not_take_over_a_render_whose_heartbeat_is_fresh(settings):
    # given: a long render (past the hard limit since it started) that is still beating
    settings.RENDER_HEARTBEAT_TIMEOUT_S = 30
    render = RenderFactory(
        status=RenderStatus.RENDERING,
        task_id="first",
        started_at=ago(settings.CELERY_TASK_TIME_LIMIT + 120),
        heartbeat_at=ago(1),
        attempts=1,
    )

    # when
    claimed = services.render_claim(render_id=render.pk, task_id="second")

    # then
    assert claimed is None
    render.refresh_from_db()
    assert (render.task_id, render.attempts) == ("first", 1)


# --- a queue message the broker lost -----------------------------------------------------------


def test_a_queued_render_whose_message_is_not_in_the_broker_is_requeued(test_queue, settings):
    # given: enqueued half a minute ago, but Redis no longer has the message (it restarted empty)
    settings.RENDER_LOST_GRACE_S = 20
    render = RenderFactory(enqueued_at=ago(30))
    lost_task = publish_for_real(render)
    Render.objects.filter(pk=render.pk).update(task_id=lost_task)
    purge_test_queue()

    # when
    count = services.render_requeue_stale()

    # then: a new message is in the queue and the row points at it
    render.refresh_from_db()
    assert count == 1
    assert render.status == RenderStatus.QUEUED
    assert render.task_id
    assert render.task_id != lost_task
    assert render_services._broker_holds({render.task_id}) == {render.task_id}


def test_a_queued_render_whose_message_waits_in_the_broker_is_left_alone(test_queue, settings):
    # given: enqueued half a minute ago and still waiting in the queue (workers are busy)
    settings.RENDER_LOST_GRACE_S = 20
    render = RenderFactory()
    task_id = publish_for_real(render)
    Render.objects.filter(pk=render.pk).update(task_id=task_id, enqueued_at=ago(30))

    # when
    count = services.render_requeue_stale()

    # then
    render.refresh_from_db()
    assert count == 0
    assert render.task_id == task_id


def test_a_queued_render_whose_message_a_worker_holds_unacked_is_left_alone(test_queue, settings):
    # given: a worker took the message (it is in Redis' unacked hash) but has not claimed the row yet
    settings.RENDER_LOST_GRACE_S = 20
    render = RenderFactory()
    task_id = publish_for_real(render)
    Render.objects.filter(pk=render.pk).update(task_id=task_id, enqueued_at=ago(30))
    with app.connection_for_read() as conn:
        channel = conn.default_channel
        taken = channel.basic_get(test_queue, no_ack=False)
        assert taken is not None
        try:
            # when
            count = services.render_requeue_stale()
        finally:
            channel.basic_ack(taken.delivery_tag)

    # then
    render.refresh_from_db()
    assert count == 0
    assert render.task_id == task_id


def test_a_message_enqueued_within_the_grace_is_not_looked_for(test_queue, settings, enqueued):
    # given: just enqueued (the message may be on its way); nothing in the broker
    settings.RENDER_LOST_GRACE_S = 20
    RenderFactory(enqueued_at=ago(5), task_id=str(uuid.uuid4()))

    # when / then
    assert services.render_requeue_stale() == 0
    assert enqueued == []


def test_a_render_never_enqueued_is_sent_after_the_grace(enqueued, settings):
    # given: Redis was down at request time, half a minute ago
    settings.RENDER_LOST_GRACE_S = 20
    render = RenderFactory(created_at=ago(30))

    # when / then
    assert services.render_requeue_stale() == 1
    assert enqueued == [render.pk]


def test_one_sweep_handles_a_bounded_number_of_renders(enqueued, settings, monkeypatch):
    # given
    settings.RENDER_LOST_GRACE_S = 20
    monkeypatch.setattr(render_services, "SWEEP_BATCH", 2)
    renders = [RenderFactory(created_at=ago(60 - i), variant_settings={"transpose": i}) for i in range(3)]

    # when / then: the two oldest now, the third at the next sweep
    assert services.render_requeue_stale() == 2
    assert enqueued == [renders[0].pk, renders[1].pk]
    assert services.render_requeue_stale() == 1


# --- the heartbeat ------------------------------------------------------------------------------


def wait_for(condition: Any, *, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not come true")
        time.sleep(0.02)


@pytest.mark.django_db(transaction=True)
def test_a_running_render_beats_until_it_ends(settings):
    # given: a claimed render and a short heartbeat
    settings.RENDER_HEARTBEAT_S = 0.05
    render = services.render_claim(render_id=RenderFactory().pk, task_id="t")
    assert render is not None
    claimed_at = render.heartbeat_at
    assert claimed_at is not None

    # when: it runs for a few beats
    with render_heartbeat(render=render) as heartbeat:
        wait_for(lambda: (Render.objects.get(pk=render.pk).heartbeat_at or claimed_at) > claimed_at)
        wait_for(lambda: heartbeat.beats >= 3)

    # then: the heartbeat is on the row and stops with the render
    assert not heartbeat.is_alive()
    beats = heartbeat.beats
    time.sleep(0.2)
    assert heartbeat.beats == beats


@pytest.mark.django_db(transaction=True)
def test_a_heartbeat_that_cannot_write_never_fails_the_render(settings, monkeypatch):
    # given: the database refuses the heartbeat's writes
    settings.RENDER_HEARTBEAT_S = 0.05
    tried = threading.Event()

    def refuse(self: RenderHeartbeat) -> None:
        tried.set()
        raise DatabaseError("database is locked")

    monkeypatch.setattr(RenderHeartbeat, "beat", refuse)
    render = services.render_claim(render_id=RenderFactory().pk, task_id="t")
    assert render is not None

    # when
    with render_heartbeat(render=render) as heartbeat:
        wait_for(tried.is_set)
        outcome = "rendered"

    # then: the render went on, and the heartbeat stopped with it
    assert outcome == "rendered"
    assert not heartbeat.is_alive()


@pytest.mark.django_db(transaction=True)
def test_a_heartbeat_does_not_touch_a_render_another_claim_took_over(settings):
    # given: this worker's claim was taken over (it was silent too long, then woke up)
    settings.RENDER_HEARTBEAT_S = 0.05
    render = services.render_claim(render_id=RenderFactory().pk, task_id="old")
    assert render is not None
    Render.objects.filter(pk=render.pk).update(task_id="new", heartbeat_at=ago(100))

    # when
    with render_heartbeat(render=render) as heartbeat:
        wait_for(lambda: heartbeat.beats >= 2)

    # then: the new owner's silence is not hidden by the old worker
    assert Render.objects.get(pk=render.pk).heartbeat_at < ago(90)
