"""Two (or more) long-lived render processes, each with its own FluidSynth and SoundFont.

One FluidSynth synth is single-threaded (its own multi-core option makes a render slower), so the
engine gets parallelism by rendering stems in separate processes. Workers are forked once and kept,
so the SoundFont is loaded once per worker, not once per render. Where processes cannot be started
(a daemonic parent, a single core), jobs run in this process with its own synth.
"""

import multiprocessing
import os
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from .synth import StemJob, StemResult, render_job

_executor: ProcessPoolExecutor | None = None


def worker_count() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _get_executor() -> ProcessPoolExecutor | None:
    global _executor
    if worker_count() < 2 or multiprocessing.current_process().daemon:
        return None
    if _executor is None:
        try:
            _executor = ProcessPoolExecutor(
                max_workers=worker_count(), mp_context=multiprocessing.get_context("fork")
            )
        except (OSError, ValueError, AssertionError):
            return None
    return _executor


def shutdown() -> None:
    """Stop the workers (tests and benchmarks call this to measure or clean up)."""
    global _executor
    if _executor is not None:
        _executor.shutdown(wait=True, cancel_futures=True)
        _executor = None


def run_jobs(
    soundfont: str, jobs: Iterable[StemJob], *, on_done: Callable[[StemResult], None] | None = None
) -> list[StemResult]:
    """Render every job, biggest first, in parallel where possible; results in completion order."""
    ordered = list(jobs)
    executor = _get_executor()
    results: list[StemResult] = []
    if executor is not None and len(ordered) > 1:
        try:
            futures: list[Future[StemResult]] = [
                executor.submit(render_job, soundfont, job) for job in ordered
            ]
            for future in as_completed(futures):
                result = future.result()
                results.append(result)
                if on_done:
                    on_done(result)
            return results
        except BrokenProcessPool:
            shutdown()
            results = []
    for job in ordered:
        result = render_job(soundfont, job)
        results.append(result)
        if on_done:
            on_done(result)
    return results
