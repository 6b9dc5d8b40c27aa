import errno
import logging
import time

import pytest
from billiard.exceptions import SoftTimeLimitExceeded
from celery.backends.base import DisabledBackend

from backtrack.celery import app
from tests.factories import RenderFactory, TrackFactory
from tracks import services, tasks
from tracks.models import Render, RenderStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued_render(performer):
    track = TrackFactory()
    render, _ = services.render_request(
        user=performer, revision=track.current_revision, settings={"transpose": 1}
    )
    return render


def test_render_run_renders_a_queued_render(queued_render):
    # when
    outcome = tasks.render_run.apply(args=[queued_render.pk]).get()

    # then
    queued_render.refresh_from_db()
    assert outcome == "done"
    assert queued_render.status == RenderStatus.DONE
    assert queued_render.attempts == 1


def test_render_run_skips_a_finished_render(monkeypatch):
    render = RenderFactory(status=RenderStatus.DONE)

    def must_not_run(**kwargs):
        raise AssertionError("rendered twice")

    monkeypatch.setattr(services, "render_execute", must_not_run)
    assert tasks.render_run.apply(args=[render.pk]).get() == "skipped"


def test_render_run_of_a_deleted_render_is_skipped():
    assert tasks.render_run.apply(args=[424242]).get() == "skipped"


def test_a_render_over_the_soft_time_limit_fails_with_a_reason(queued_render, monkeypatch, settings):
    def too_slow(**kwargs):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(services, "render_execute", too_slow)

    assert tasks.render_run.apply(args=[queued_render.pk]).get() == "failed"

    queued_render.refresh_from_db()
    assert queued_render.status == RenderStatus.FAILED
    assert (
        queued_render.error
        == f"the render took longer than {settings.CELERY_TASK_SOFT_TIME_LIMIT} s; giving up"
    )


def test_transient_errors_are_retried_then_succeed(queued_render, monkeypatch):
    # given: storage fails once
    real_execute = services.render_execute
    calls = []

    def flaky(*, render):
        calls.append(render.pk)
        if len(calls) == 1:
            raise services.TransientRenderError("could not read the arrangement from storage: timeout")
        return real_execute(render=render)

    monkeypatch.setattr(services, "render_execute", flaky)

    # when
    tasks.render_run.apply(args=[queued_render.pk])

    # then: the retry did the work and the failed attempt was not counted as an interruption
    queued_render.refresh_from_db()
    assert len(calls) == 2
    assert queued_render.status == RenderStatus.DONE
    assert queued_render.attempts == 1


def test_transient_errors_are_retried_a_bounded_number_of_times(queued_render, monkeypatch):
    calls = []

    def always_down(*, render):
        calls.append(render.pk)
        raise services.TransientRenderError("could not store the rendered audio: bucket unreachable")

    monkeypatch.setattr(services, "render_execute", always_down)

    tasks.render_run.apply(args=[queued_render.pk])

    queued_render.refresh_from_db()
    assert len(calls) == tasks.TRANSIENT_RETRIES + 1
    assert queued_render.status == RenderStatus.FAILED
    assert queued_render.error == "could not store the rendered audio: bucket unreachable"


def test_a_transient_failure_shows_a_plain_reason_and_logs_the_detail(queued_render, monkeypatch, caplog):
    # given: the disk is full, every time
    def disk_full(*, render):
        cause = OSError(errno.ENOSPC, "No space left on device", "/srv/backtrack/media/renders/1/a.mp3")
        raise services.TransientRenderError("could not store the rendered audio") from cause

    monkeypatch.setattr(services, "render_execute", disk_full)

    # when
    with caplog.at_level(logging.WARNING, logger="tracks.tasks"):
        tasks.render_run.apply(args=[queued_render.pk])

    # then: the user reads a reason, the operator finds the path in the log
    queued_render.refresh_from_db()
    assert queued_render.status == RenderStatus.FAILED
    assert queued_render.error == "could not store the rendered audio"
    assert "/srv/backtrack/media/renders/1/a.mp3" in caplog.text


def test_an_unexpected_error_fails_the_render_instead_of_leaving_it_rendering(queued_render, monkeypatch):
    def bug(*, render):
        raise KeyError("oops")

    monkeypatch.setattr(services, "render_execute", bug)

    assert tasks.render_run.apply(args=[queued_render.pk]).get() == "failed"
    queued_render.refresh_from_db()
    assert queued_render.status == RenderStatus.FAILED
    assert "internal error" in queued_render.error


@pytest.mark.django_db(transaction=True)
def test_render_run_keeps_a_heartbeat_while_it_renders(monkeypatch, settings):
    # given: a render that takes a few heartbeats (the heartbeat is independent of progress)
    settings.RENDER_HEARTBEAT_S = 0.05
    render = RenderFactory()

    def slow_render(*, render):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            row = Render.objects.get(pk=render.pk)
            if row.heartbeat_at and row.started_at and row.heartbeat_at > row.started_at:
                Render.objects.filter(pk=render.pk).update(status=RenderStatus.DONE)
                return Render.objects.get(pk=render.pk)
            time.sleep(0.02)
        raise AssertionError("no heartbeat while rendering")

    monkeypatch.setattr(services, "render_execute", slow_render)

    # when
    outcome = tasks.render_run.apply(args=[render.pk]).get()

    # then: the sweeper saw it alive while it ran
    assert outcome == "done"


def test_no_task_stores_a_result():
    # Nothing reads task results; storing them made every publish wait on Redis twice.
    app.loader.import_default_modules()
    ours = [task for name, task in app.tasks.items() if name.startswith("tracks.")]
    assert ours
    assert all(task.ignore_result for task in ours)
    assert isinstance(app.backend, DisabledBackend)


def test_the_stems_task_is_best_effort(monkeypatch):
    from tracks.engine import RenderFailed

    def broken(*, render_id):
        raise RenderFailed("ffmpeg failed")

    monkeypatch.setattr(services, "render_stems_prepare", broken)
    assert tasks.render_stems_prepare.apply(args=[1]).get() is False


def test_periodic_tasks_hand_off_to_services(monkeypatch):
    monkeypatch.setattr(services, "render_requeue_stale", lambda: 3)
    monkeypatch.setattr(services, "render_prune", lambda: {"renders_deleted": 1})
    assert tasks.renders_requeue_stale.apply().get() == 3
    assert tasks.renders_prune.apply().get() == {"renders_deleted": 1}


def test_the_sweep_runs_at_the_configured_interval(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["renders-requeue-stale"]
    assert entry["schedule"] == settings.RENDER_SWEEP_INTERVAL_S


def test_the_beat_schedule_names_registered_tasks(settings):
    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert scheduled == {
        "tracks.tasks.renders_requeue_stale",
        "tracks.tasks.renders_prune",
        "tracks.tasks.notifications_email_digest",
    }
    assert scheduled <= set(app.tasks)
    assert "tracks.tasks.render_run" in app.tasks
