"""The Celery app `backtrack`: configured from Django settings (CELERY_ prefix), tasks autodiscovered."""

import ctypes
import logging
import os
import threading

from celery import Celery
from celery.signals import worker_process_init, worker_ready, worker_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backtrack.settings")

app = Celery("backtrack")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)


# glibc's malloc (mallopt(3)): the maximum number of arenas, and a fixed mmap threshold.
_M_ARENA_MAX, _M_MMAP_THRESHOLD = -8, -3
_RENDER_MALLOC_ARENAS = 2
_RENDER_MMAP_THRESHOLD = 128 * 1024


def _bound_malloc() -> None:
    """Keep a render process's heap from holding on to memory it has freed.

    By default glibc gives each thread that allocates an arena of its own (up to eight per core) and
    raises its mmap threshold whenever a large block is freed, so the audio buffers and SoundFont
    samples of one render stay in the heap after it. Measured with FluidR3 (bench/worker_memory.py):
    a render process peaked at 258 MB by default, at 221 MB with two arenas and blocks over 128 KiB
    always mapped (and so returned when freed). Elsewhere than glibc this does nothing.
    """
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt(_M_ARENA_MAX, _RENDER_MALLOC_ARENAS)
    mallopt(_M_MMAP_THRESHOLD, _RENDER_MMAP_THRESHOLD)


@worker_process_init.connect
def _warm_up_render_threads(**_kwargs: object) -> None:
    """Each worker process loads the SoundFont into its render threads as it starts (in the
    background), so the first render it takes does not wait for the SoundFont to load."""
    from django.conf import settings

    _bound_malloc()

    from tracks.engine import pool
    from tracks.engine_config import engine_config

    pool.warm_up(settings.SOUNDFONT_PATH, config=engine_config())


_cache_pruner: threading.Event | None = None


@worker_ready.connect
def _start_cache_pruner(**_kwargs: object) -> None:
    """Every worker prunes its own RENDER_CACHE_DIR (stems and scratch) on a timer of its own.

    A timer in each worker rather than a task: a task lands on one machine (a queue has one taker),
    and a broadcast over Redis is fire-and-forget pub/sub that a busy or reconnecting worker misses,
    and needs beat. The timer runs in the worker's main process, beside the pool, so it prunes even
    while every pool process renders (it never deletes the stems of revisions with active renders).
    """
    global _cache_pruner
    from django.conf import settings

    interval = float(settings.RENDER_CACHE_PRUNE_INTERVAL_S)
    if interval <= 0 or _cache_pruner is not None:
        return
    stopped = _cache_pruner = threading.Event()

    def prune_forever() -> None:
        from django.db import connection

        from tracks.services.pruning import render_cache_prune

        while not stopped.wait(interval):
            try:
                report = render_cache_prune()
                if report["stems_deleted"]:
                    logger.info("render cache pruned: %s", report)
            except Exception:
                logger.warning("could not prune the render cache", exc_info=True)
            finally:
                connection.close()

    threading.Thread(target=prune_forever, name="render-cache-pruner", daemon=True).start()


@worker_shutdown.connect
def _stop_cache_pruner(**_kwargs: object) -> None:
    if _cache_pruner is not None:
        _cache_pruner.set()
