"""Queues: renders, stems and maintenance tasks go to their own queues, workers pick theirs from
WORKER_QUEUES, and the stems job is low priority because of its queue (it never steps back)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings

from backtrack import queues
from backtrack.celery import app
from tests.factories import RenderFactory
from tests.integration.worker import celery_test_prefix, purge_test_queue
from tracks import services, tasks
from tracks.models import RenderStatus


@pytest.fixture
def broker() -> Iterator[Any]:
    """The tests' own queues in the real Redis, empty before and after; yields a Redis client."""
    purge_test_queue()
    with app.connection_for_write() as conn, conn.default_channel.conn_or_acquire() as client:
        yield client
    purge_test_queue()


def queue(name: str) -> str:
    return queues.queue_name(name, prefix=celery_test_prefix())


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        (tasks.render_run, "renders"),
        (tasks.render_stems_prepare, "stems"),
        (tasks.renders_requeue_stale, "maintenance"),
        (tasks.renders_prune, "maintenance"),
        (tasks.notifications_email_digest, "maintenance"),
    ],
)
def test_each_task_is_routed_to_its_queue(task, expected):
    assert app.amqp.router.route({}, task.name)["queue"].name == queue(expected)


@pytest.mark.django_db
def test_published_tasks_wait_in_their_own_queue_only(broker):
    # when: a render and a stems job are published for real
    render = RenderFactory(status=RenderStatus.QUEUED)
    tasks.render_run.apply_async(args=(render.pk,), retry=False)
    tasks.render_stems_prepare.apply_async(args=(render.pk,), retry=False)

    # then: one message in each of their lists, none copied into the other queues
    assert broker.llen(queue("renders")) == 1
    assert broker.llen(queue("stems")) == 1
    assert broker.llen(queue("maintenance")) == 0


def test_every_periodic_task_goes_to_maintenance():
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert app.amqp.router.route({}, entry["task"])["queue"].name == queue("maintenance")


def test_a_worker_serves_the_queues_named_in_worker_queues():
    assert [q.name for q in queues.worker_queues("renders")] == ["renders"]
    assert [q.name for q in queues.worker_queues(" stems , maintenance,stems")] == ["stems", "maintenance"]
    # by default (the settings' WORKER_QUEUES) all three
    assert sorted(q.name for q in app.conf.task_queues) == sorted(queue(name) for name in queues.QUEUES)


@pytest.mark.parametrize("value", ["render", "", "renders,bogus"])
def test_an_unknown_queue_name_is_refused(value):
    with pytest.raises(ValueError, match="renders, stems, maintenance"):
        queues.worker_queues(value)


def test_a_worker_reads_its_queues_in_sorted_order_so_stems_come_last():
    assert app.conf.broker_transport_options["queue_order_strategy"] == "sorted"
    assert sorted(queues.QUEUES) == ["maintenance", "renders", "stems"]


@pytest.mark.django_db
def test_the_stems_job_builds_stems_even_while_renders_are_queued(track, performer):
    # given: a finished render, and another singer's render still queued
    first, _ = services.render_request(user=performer, revision=track.current_revision, settings={})
    services.render_execute(render=services.render_claim(render_id=first.pk, task_id="a"))
    RenderFactory(status=RenderStatus.QUEUED)

    # when: the stems job runs (its queue, not a retry loop, makes it wait its turn)
    built = tasks.render_stems_prepare.apply(args=[first.pk]).get()

    # then: the stems are built at once
    assert built is True
