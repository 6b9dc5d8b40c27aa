"""Parallel synthesis takes every core only when no other render on the machine holds one."""

from __future__ import annotations

import fcntl
import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tracks.engine import EngineConfig, pool
from tracks.engine import synth as synth_module
from tracks.engine.errors import RenderFailed
from tracks.engine.synth import StemJob


@pytest.fixture
def slot_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def config(slot_dir: Path) -> EngineConfig:
    """A two-core machine whose renders share the slots in ``slot_dir``."""
    return EngineConfig(threads=2, slot_dir=slot_dir)


def hold_slot(directory: Path, index: int) -> int:
    fd = os.open(directory / f"slot-{index}", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def test_an_idle_machine_gives_a_render_every_core(config: EngineConfig) -> None:
    with pool.cpu_share(config=config) as parallel:
        assert parallel == 2


def test_a_busy_machine_gives_a_render_one_core(slot_dir: Path, config: EngineConfig) -> None:
    # Given another render holding a core
    other = hold_slot(slot_dir, 0)
    try:
        # When a second render asks, it renders serially
        with pool.cpu_share(config=config) as parallel:
            assert parallel == 1
    finally:
        os.close(other)


def test_slots_are_released_when_a_render_ends(slot_dir: Path, config: EngineConfig) -> None:
    with pool.cpu_share(config=config):
        pass
    # Every slot can be taken again by someone else
    fds = [hold_slot(slot_dir, index) for index in range(2)]
    for fd in fds:
        os.close(fd)


def test_two_overlapping_renders_together_hold_at_most_every_core(config: EngineConfig) -> None:
    with pool.cpu_share(config=config) as first, pool.cpu_share(config=config) as second:
        assert (first, second) == (2, 1)


def test_configured_threads_cap_the_share(slot_dir: Path) -> None:
    # Given a configuration of one render thread on an idle machine
    config = EngineConfig(threads=1, slot_dir=slot_dir)
    # When a render asks for its share
    with pool.cpu_share(config=config) as parallel:
        # Then it renders serially
        assert parallel == 1


def test_without_threads_a_render_may_use_the_machines_cores_up_to_four(slot_dir: Path) -> None:
    # Given no configured thread count, on an idle machine
    config = EngineConfig(slot_dir=slot_dir)
    # When a render asks for its share
    with pool.cpu_share(config=config) as parallel:
        # Then it gets every core, at most four
        assert parallel == max(1, min(4, os.cpu_count() or 1))


@pytest.mark.parametrize("threads", [0, -1, True, 2.5])
def test_a_nonsense_thread_count_is_refused(threads: object) -> None:
    with pytest.raises(ValueError, match="threads"):
        EngineConfig(threads=threads)


def _note_job(path: Path) -> StemJob:
    return StemJob(
        out_path=str(path),
        n_frames=4410,
        end_frame=2205,
        frame=np.array([0, 2205]),
        status=np.array([0x90, 0x80]),
        d1=np.array([60, 60]),
        d2=np.array([100, 0]),
        sysex=[],
    )


def test_warm_up_loads_every_render_thread_so_renders_load_nothing(
    tmp_path: Path, soundfont: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given fresh render threads and a count of SoundFont loads
    config = EngineConfig(threads=2, slot_dir=tmp_path)
    pool.shutdown()
    loads: list[str] = []

    class CountingSynth(synth_module.Synth):
        def load(self, soundfont: str) -> None:
            if soundfont != self.soundfont:
                loads.append(soundfont)
            super().load(soundfont)

    monkeypatch.setattr(synth_module, "Synth", CountingSynth)

    # When a worker warms up, it returns at once and the threads load in the background
    pool.warm_up(soundfont, config=config)
    deadline = time.monotonic() + 30
    while len(loads) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(loads) == 2

    # Then serial and parallel renders use those synths and load nothing more
    pool.run_jobs(str(soundfont.resolve()), [_note_job(tmp_path / "a.npy")], parallel=1, config=config)
    pool.run_jobs(
        str(soundfont.resolve()), [_note_job(tmp_path / f"{n}.npy") for n in "bcd"], parallel=2, config=config
    )
    assert len(loads) == 2
    assert np.abs(np.load(tmp_path / "a.npy")).max() > 0.01
    pool.shutdown()


def test_warm_up_with_a_missing_soundfont_leaves_the_error_to_the_render(tmp_path: Path) -> None:
    pool.shutdown()
    pool.warm_up(tmp_path / "missing.sf2", config=EngineConfig(threads=2))  # nothing raised here
    with pytest.raises(RenderFailed, match="SoundFont not found"):
        pool.run_jobs(str(tmp_path / "missing.sf2"), [_note_job(tmp_path / "a.npy")], parallel=1)
    pool.shutdown()


def test_an_interrupted_render_leaves_no_jobs_running_behind_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given six slow serial jobs, and a caller interrupted part-way (as a Celery soft time limit does)
    started: list[str] = []

    class SlowSynth:
        def render(self, job: StemJob) -> Any:
            started.append(job.out_path)
            time.sleep(0.2)

    monkeypatch.setattr(pool, "thread_synth", lambda _soundfont: SlowSynth())

    class SoftTimeLimitError(Exception):
        pass

    def interrupt(_signum: int, _frame: Any) -> None:
        raise SoftTimeLimitError

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(SoftTimeLimitError):
            pool.run_jobs(
                "unused.sf2",
                [_note_job(tmp_path / f"{n}.npy") for n in range(6)],
                parallel=1,
                config=EngineConfig(threads=2),
            )
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

    # Then the job in hand finishes and no further job starts
    time.sleep(1.0)
    assert len(started) <= 2
