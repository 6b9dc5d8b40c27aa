"""Render threads share one loaded SoundFont per process instead of loading a copy each."""

import threading
from pathlib import Path

import pytest

from tracks.engine import synth

FLUIDR3 = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")


def _rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def _in_thread(function) -> None:
    thread = threading.Thread(target=function)
    thread.start()
    thread.join()


def test_a_second_synth_does_not_load_the_soundfont_again() -> None:
    if not FLUIDR3.is_file():
        pytest.skip("fluid-soundfont-gm is not installed")
    # given one synth with FluidR3 (about 150 MB of samples)
    first = synth.Synth(str(FLUIDR3))
    before = _rss_mb()
    # when two more render threads make their synths with it
    made: list[synth.Synth] = []
    for _ in range(2):
        _in_thread(lambda: made.append(synth.Synth(str(FLUIDR3))))
    # then the process grew by far less than one more copy of the samples
    assert _rss_mb() - before < 40
    assert all(one._sfont == first._sfont for one in made)


def test_switching_sound_sets_unloads_the_one_nobody_uses(soundfont: Path) -> None:
    if not FLUIDR3.is_file():
        pytest.skip("fluid-soundfont-gm is not installed")
    shared = synth._SharedSoundFonts()
    # given a SoundFont taken and given back
    shared.acquire(str(soundfont))
    shared.release(str(soundfont))
    # when another is needed
    shared.acquire(str(FLUIDR3))
    # then only the one in use stays loaded
    assert list(shared._fonts) == [str(FLUIDR3)]
    shared.release(str(FLUIDR3))
    assert list(shared._fonts) == [str(FLUIDR3)]  # the last one is kept for the next render
