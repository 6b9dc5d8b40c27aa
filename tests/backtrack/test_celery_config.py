"""The render queue's delivery settings: what makes a killed or slow render safe."""

from __future__ import annotations

from types import SimpleNamespace

from django.conf import settings

from backtrack.celery import app


def test_celery_app_is_named_backtrack_and_reads_django_settings() -> None:
    assert app.main == "backtrack"
    assert app.conf.broker_url == settings.CELERY_BROKER_URL


def test_render_queue_delivery_settings() -> None:
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
    assert 0 < conf.task_soft_time_limit < conf.task_time_limit
    # Redis re-delivers an unacknowledged task after the visibility timeout: it must outlast any render.
    assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit


def test_the_broker_is_the_configured_redis_and_no_results_are_stored() -> None:
    # Nothing reads task results (a render records its outcome on its row), and a result backend
    # made every publish wait on Redis: none is configured.
    assert app.conf.broker_url.startswith("redis://")
    assert app.conf.result_backend is None
    assert app.conf.task_ignore_result is True


def test_a_worker_process_bounds_its_malloc_arenas(monkeypatch) -> None:
    import backtrack.celery as worker_module

    calls: list[tuple[int, int]] = []

    def mallopt(option: int, value: int) -> int:
        calls.append((option, value))
        return 1

    fake = SimpleNamespace(mallopt=mallopt)
    monkeypatch.setattr(worker_module.ctypes, "CDLL", lambda _name: fake)
    # when a pool process starts
    worker_module._bound_malloc()
    # then glibc keeps two arenas and maps every block over 128 KiB (returned when freed)
    assert calls == [(-8, 2), (-3, 128 * 1024)]
