"""Fixtures for engine tests: generated MIDI files, the shared real-world files, audio helpers.

Engine tests need no database and no Django settings; they only need FluidSynth and a SoundFont.
"""

import io
from collections.abc import Iterator, Sequence
from pathlib import Path

import mido
import numpy as np
import pytest
from scipy.io import wavfile

from tracks.engine import pool

REPO_ROOT = Path(__file__).resolve().parents[3]
MIDI_DIR = REPO_ROOT / "tests" / "data" / "midi"
TIMGM = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")


def midi_bytes(
    notes: Sequence[tuple[float, float, int]],
    *,
    channel: int = 0,
    program: int | None = 0,
    bpm: float = 120.0,
    ticks_per_beat: int = 480,
    time_signature: tuple[int, int] = (4, 4),
    name: str | None = None,
    velocity: int = 100,
) -> bytes:
    """A type-1 file: one track of notes given as (start_beat, length_beats, pitch)."""
    midi = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    conductor = mido.MidiTrack()
    conductor.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    conductor.append(
        mido.MetaMessage("time_signature", numerator=time_signature[0], denominator=time_signature[1], time=0)
    )
    midi.tracks.append(conductor)
    track = mido.MidiTrack()
    if name:
        track.append(mido.MetaMessage("track_name", name=name, time=0))
    if program is not None:
        track.append(mido.Message("program_change", channel=channel, program=program, time=0))
    events = []
    for start, length, pitch in notes:
        events.append((round(start * ticks_per_beat), 1, pitch))
        events.append((round((start + length) * ticks_per_beat), 0, pitch))
    now = 0
    for tick, on, pitch in sorted(events):
        kind = "note_on" if on else "note_off"
        track.append(
            mido.Message(kind, channel=channel, note=pitch, velocity=velocity if on else 0, time=tick - now)
        )
        now = tick
    midi.tracks.append(track)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def read_wav(path: Path) -> tuple[int, np.ndarray]:
    rate, data = wavfile.read(path)
    return rate, data.astype(np.float64) / 32768.0


@pytest.fixture(scope="session")
def soundfont() -> Path:
    if not TIMGM.is_file():
        pytest.skip("TimGM6mb SoundFont is not installed")
    return TIMGM


@pytest.fixture(scope="session", autouse=True)
def _stop_render_workers() -> Iterator[None]:
    yield
    pool.shutdown()
