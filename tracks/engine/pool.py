"""Parallel synthesis: a few long-lived render threads, each with its own FluidSynth (sharing one SoundFont).

One FluidSynth synth is single-threaded (its own multi-core option makes a render slower), so the
engine gets parallelism by rendering part groups or stems with separate synths. Threads, not
processes: the synth's work happens inside ``fluid_synth_write_float``, a ctypes call that releases
the GIL, so threads scale like processes, and they also work inside Celery's prefork children,
which are daemonic and may not start processes of their own. Each thread keeps its synth, and the
synths of a process share one loaded copy of each SoundFont (``synth._SharedSoundFonts``), whose
samples are read only while a render plays their presets: measured with FluidR3, an engine process's
peak RSS went from 447 MB (a copy per thread) to 299 MB (one shared copy) to 196 MB (only the
samples in use) with two render threads.

Parallelism is only worth it on an idle machine: a group render runs reverb and chorus once per
group, so splitting costs about a third more CPU. ``cpu_share`` therefore takes every core only
when no other render on this machine holds one (a lock file per core), and one core otherwise,
so two busy workers render side by side instead of fighting over the cores.
"""

import contextlib
import fcntl
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed

from .config import DEFAULT_CONFIG, EngineConfig
from .synth import StemJob, StemResult, thread_synth

_executor: ThreadPoolExecutor | None = None
_executor_threads = 0
_executor_lock = threading.Lock()


def _get_executor(threads: int) -> ThreadPoolExecutor:
    """The render threads, at least ``threads`` of them.

    One executor serves every render of the process, so the synths its threads keep (and the
    SoundFonts they loaded) are reused. A process normally uses one configuration; should a caller
    ask for more threads than exist, a wider executor replaces the old one, whose threads finish
    what they hold and exit.
    """
    global _executor, _executor_threads
    with _executor_lock:
        if _executor is None or _executor_threads < threads:
            if _executor is not None:
                _executor.shutdown(wait=False)
            _executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fluidsynth")
            _executor_threads = threads
        return _executor


def shutdown() -> None:
    """Stop the render threads (tests and benchmarks call this to measure or clean up)."""
    global _executor, _executor_threads
    with _executor_lock:
        if _executor is not None:
            _executor.shutdown(wait=True, cancel_futures=True)
            _executor = None
            _executor_threads = 0


def warm_up(soundfont: str | os.PathLike[str], *, config: EngineConfig = DEFAULT_CONFIG) -> None:
    """Load the SoundFont into every render thread's synth in the background, and return at once.

    A worker calls this when it starts, so its first render does not wait for the SoundFont (about
    half a second per synth for FluidR3). A failure is not reported here: the first render meets it
    again and fails with its reason.
    """
    count = config.render_threads
    executor = _get_executor(count)
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


@contextlib.contextmanager
def cpu_share(*, config: EngineConfig = DEFAULT_CONFIG) -> Iterator[int]:
    """How many synths this render may run: every core when the machine renders nothing else, else 1.

    "Every core" is ``config.render_threads``; the slots are advisory file locks in
    ``config.render_slot_dir``, released by the kernel if the process dies.
    """
    total = config.render_threads
    held: list[int] = []
    try:
        directory = config.render_slot_dir
        directory.mkdir(parents=True, exist_ok=True)
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
    config: EngineConfig = DEFAULT_CONFIG,
) -> list[StemResult]:
    """Render every job, biggest first, on up to ``parallel`` synths; results in completion order.

    ``parallel`` comes from :func:`cpu_share`, so it never exceeds the configured threads.
    """
    ordered = list(jobs)
    width = max(1, min(parallel or 1, len(ordered)))
    results: list[StemResult] = []
    # Even a serial render runs on a render thread, so it finds the synths ``warm_up`` loaded.
    executor = _get_executor(max(width, config.render_threads))
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
