"""Parallel synthesis takes every core only when no other render on the machine holds one."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from tracks.engine import pool


@pytest.fixture
def slot_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(pool.SLOT_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(pool, "worker_count", lambda: 2)
    return tmp_path


def hold_slot(directory: Path, index: int) -> int:
    fd = os.open(directory / f"slot-{index}", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def test_an_idle_machine_gives_a_render_every_core(slot_dir: Path) -> None:
    with pool.cpu_share() as parallel:
        assert parallel == 2


def test_a_busy_machine_gives_a_render_one_core(slot_dir: Path) -> None:
    # Given another render holding a core
    other = hold_slot(slot_dir, 0)
    try:
        # When a second render asks, it renders serially
        with pool.cpu_share() as parallel:
            assert parallel == 1
    finally:
        os.close(other)


def test_slots_are_released_when_a_render_ends(slot_dir: Path) -> None:
    with pool.cpu_share():
        pass
    # Every slot can be taken again by someone else
    fds = [hold_slot(slot_dir, index) for index in range(2)]
    for fd in fds:
        os.close(fd)


def test_two_overlapping_renders_together_hold_at_most_every_core(slot_dir: Path) -> None:
    with pool.cpu_share() as first, pool.cpu_share() as second:
        assert (first, second) == (2, 1)


def test_render_threads_setting_caps_the_share(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(pool.SLOT_DIR_ENV, str(tmp_path))
    monkeypatch.setenv(pool.THREADS_ENV, "1")

    with pool.cpu_share() as parallel:
        assert parallel == 1
