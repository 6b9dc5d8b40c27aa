"""Parallel synthesis: a few long-lived render threads, each with its own FluidSynth and SoundFont.

One FluidSynth synth is single-threaded (its own multi-core option makes a render slower), so the
engine gets parallelism by rendering part groups or stems with separate synths. Threads, not
processes: the synth's work happens inside ``fluid_synth_write_float``, a ctypes call that releases
the GIL, so threads scale like processes, and they also work inside Celery's prefork children,
which are daemonic and may not start processes of their own. Each thread keeps its synth, so a
SoundFont is loaded once per thread, not once per render.

Parallelism is only worth it on an idle machine: a group render runs reverb and chorus once per
group, so splitting costs about a third more CPU. ``cpu_share`` therefore takes every core only
when no other render on this machine holds one (a lock file per core), and one core otherwise,
so two busy workers render side by side instead of fighting over the cores.
"""

import contextlib
import fcntl
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path

from .synth import StemJob, StemResult, thread_synth

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()
SLOT_DIR_ENV = "BACKTRACK_RENDER_SLOTS_DIR"
THREADS_ENV = "RENDER_THREADS"


def worker_count() -> int:
    """How many synths one render may run at once: the machine's cores (at most four).

    RENDER_THREADS overrides it; 1 makes every render serial, which gives the most renders per
    minute on a machine whose workers are always busy, at the cost of a slower single render.
    """
    configured = os.environ.get(THREADS_ENV, "").strip()
    if configured.isdigit() and int(configured) > 0:
        return min(int(configured), 16)
    return max(1, min(4, os.cpu_count() or 1))


def _get_executor() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=worker_count(), thread_name_prefix="fluidsynth")
        return _executor


def shutdown() -> None:
    """Stop the render threads (tests and benchmarks call this to measure or clean up)."""
    global _executor
    with _executor_lock:
        if _executor is not None:
            _executor.shutdown(wait=True, cancel_futures=True)
            _executor = None


def warm_up(soundfont: str | os.PathLike[str]) -> None:
    """Load the SoundFont into every render thread's synth in the background, and return at once.

    A worker calls this when it starts, so its first render does not wait for the SoundFont (about
    half a second per synth for FluidR3). A failure is not reported here: the first render meets it
    again and fails with its reason.
    """
    count = worker_count()
    executor = _get_executor()
    everyone_loaded = threading.Barrier(count)

    def load() -> None:
        try:
            thread_synth(soundfont)
        finally:
            # Hold this thread until every load has started, so each lands on a thread of its own.
            with contextlib.suppress(threading.BrokenBarrierError):
                everyone_loaded.wait(timeout=120)

    for _ in range(count):
        executor.submit(load)


def _slot_dir() -> Path:
    directory = Path(os.environ.get(SLOT_DIR_ENV) or Path(tempfile.gettempdir()) / "backtrack-render-slots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@contextlib.contextmanager
def cpu_share() -> Iterator[int]:
    """How many synths this render may run: every core when the machine renders nothing else, else 1.

    The slots are advisory file locks, released by the kernel if the process dies.
    """
    total = worker_count()
    held: list[int] = []
    try:
        directory = _slot_dir()
        for index in range(total):
            fd = os.open(directory / f"slot-{index}", os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            held.append(fd)
        if len(held) < total:
            # Somebody else is rendering: keep one core's slot (if any) and render serially.
            for fd in held[1:]:
                os.close(fd)
            held = held[:1]
            yield 1
        else:
            yield total
    finally:
        for fd in held:
            os.close(fd)  # closing the descriptor releases its lock


def run_jobs(
    soundfont: str,
    jobs: Iterable[StemJob],
    *,
    parallel: int | None = None,
    on_done: Callable[[StemResult], None] | None = None,
) -> list[StemResult]:
    """Render every job, biggest first, on up to ``parallel`` synths; results in completion order."""
    ordered = list(jobs)
    width = max(1, min(parallel or 1, worker_count(), len(ordered)))
    results: list[StemResult] = []
    # Even a serial render runs on a render thread, so it finds the synths ``warm_up`` loaded.
    executor = _get_executor()
    pending = list(ordered)
    lock = threading.Lock()

    def worker() -> list[StemResult]:
        # Each of ``width`` workers takes the next job, so at most ``width`` synths run at once
        # even though the shared executor may have more threads.
        done: list[StemResult] = []
        while True:
            with lock:
                if not pending:
                    return done
                job = pending.pop(0)
            result = thread_synth(soundfont).render(job)
            if on_done:
                with lock:
                    on_done(result)
            done.append(result)

    futures: list[Future[list[StemResult]]] = [executor.submit(worker) for _ in range(width)]
    try:
        for future in as_completed(futures):
            results.extend(future.result())
    except BaseException:
        # A failed job or an interrupted caller (a Celery soft time limit): the render threads
        # finish the job in hand and take no more, so the next render does not queue behind these.
        with lock:
            pending.clear()
        raise
    return results
