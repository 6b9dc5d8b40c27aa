"""Variant transforms applied to MIDI events, never to audio: transpose, tempo, count-in, click and
the velocities of section dynamics.

Working on events keeps a 0.8x render exactly 1.25x as long with no stretching artefacts, and
keeps the drums untouched by transposition. The result is a ``Performance``: every event stamped
with its sample frame in the render, ready for the synth scheduler.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

import mido
import numpy as np

from .arrangement import DRUM_CHANNEL, Arrangement
from .smf import STATUS_SYSEX

SAMPLE_RATE = 44_100
CLICK_ACCENT_NOTE = 76  # GM Hi Wood Block: the downbeat
CLICK_BEAT_NOTE = 77  # GM Low Wood Block: the other beats
CLICK_LENGTH_S = 0.05


@dataclass(frozen=True)
class Performance:
    """A transformed arrangement as sample-stamped events (already in playback order)."""

    sample_rate: int
    frame: np.ndarray  # int64
    status: np.ndarray  # uint8
    d1: np.ndarray  # int32 (index into ``sysex`` for sysex events)
    d2: np.ndarray  # int16
    part: np.ndarray  # int32: part index, -1 channel-wide, ``click_part`` for the click
    sysex: list[bytes]
    part_count: int  # parts of the arrangement; the click, if any, is part ``part_count``
    has_click: bool
    end_frame: int  # where the music (count-in included) ends
    count_in_s: float
    tempo: float
    transpose: int
    warnings: list[str] = field(default_factory=list)

    @property
    def click_part(self) -> int:
        return self.part_count


def beat_grid(numerator: int, denominator: int) -> tuple[int, float]:
    """(clicks per bar, quarter notes per click): compound meters click on dotted quarters."""
    if denominator == 8 and numerator % 3 == 0 and numerator > 3:
        return numerator // 3, 1.5
    return numerator, 4.0 / denominator


def perform(
    arrangement: Arrangement,
    *,
    transpose: int = 0,
    tempo: float = 1.0,
    count_in: int = 0,
    click: bool = False,
    sample_rate: int = SAMPLE_RATE,
    velocity_spans: Sequence[tuple[float, float, float]] = (),
) -> Performance:
    """Stamp every event with its frame in the render, transposed and tempo-scaled.

    ``velocity_spans``: (start_s, end_s, factor) spans of the song (seconds at its original tempo): notes
    starting in a span are played with their velocity times ``factor`` (1..127), as the section
    dynamics ask (see :mod:`.dynamics`).
    """
    raw = arrangement.raw
    warnings: list[str] = []
    status = raw.status
    d1 = raw.d1.copy()
    d2 = _scaled_velocities(arrangement, velocity_spans) if velocity_spans else raw.d2
    keep = np.ones(status.size, dtype=bool)
    if transpose:
        kinds = status & 0xF0
        pitched = (status < 0xF0) & ((status & 0x0F) != DRUM_CHANNEL)
        noteish = pitched & ((kinds == 0x80) | (kinds == 0x90) | (kinds == 0xA0))
        d1 = np.where(noteish, d1 + transpose, d1)
        outside = noteish & ((d1 < 0) | (d1 > 127))
        keep &= ~outside
        dropped_on = outside & (kinds == 0x90) & (raw.d2 > 0)
        for part_index in np.unique(arrangement.event_part[dropped_on]).tolist():
            count = int((dropped_on & (arrangement.event_part == part_index)).sum())
            name = arrangement.parts[part_index].name
            warnings.append(
                f"{count} note{'s' if count != 1 else ''} of {name} fell outside the MIDI range "
                f"at {transpose:+d} semitones and {'were' if count != 1 else 'was'} dropped"
            )

    count_in_s = count_in_seconds(arrangement, count_in=count_in, tempo=tempo)
    seconds = arrangement.event_seconds[keep] / tempo + count_in_s
    frames = np.rint(seconds * sample_rate).astype(np.int64)
    part = arrangement.event_part[keep]
    out_status, out_d1, out_d2 = status[keep], d1[keep].astype(np.int32), d2[keep]
    end_frame = round((arrangement.end_s / tempo + count_in_s) * sample_rate)

    has_click = click or count_in > 0
    if has_click:
        click_seconds, accents = _click_times(arrangement, tempo, count_in, click, count_in_s)
        click_frames = np.rint(click_seconds * sample_rate).astype(np.int64)
        off_frames = click_frames + round(CLICK_LENGTH_S * sample_rate)
        notes = np.where(accents, CLICK_ACCENT_NOTE, CLICK_BEAT_NOTE).astype(np.int32)
        velocity = np.where(accents, 127, 96).astype(np.int16)
        count = click_frames.size
        frames = np.concatenate((frames, click_frames, off_frames))
        out_status = np.concatenate(
            (
                out_status,
                np.full(count, 0x90 | DRUM_CHANNEL, np.uint8),
                np.full(count, 0x80 | DRUM_CHANNEL, np.uint8),
            )
        )
        out_d1 = np.concatenate((out_d1, notes, notes))
        out_d2 = np.concatenate((out_d2, velocity, np.zeros(count, np.int16)))
        part = np.concatenate((part, np.full(2 * count, len(arrangement.parts), np.int32)))
        order = np.argsort(frames, kind="stable")
        frames, out_status, out_d1, out_d2, part = (
            frames[order],
            out_status[order],
            out_d1[order],
            out_d2[order],
            part[order],
        )
        if off_frames.size:
            end_frame = max(end_frame, int(off_frames.max()))

    return Performance(
        sample_rate=sample_rate,
        frame=frames,
        status=out_status,
        d1=out_d1,
        d2=out_d2,
        part=part,
        sysex=raw.sysex,
        part_count=len(arrangement.parts),
        has_click=has_click,
        end_frame=end_frame,
        count_in_s=count_in_s,
        tempo=tempo,
        transpose=transpose,
        warnings=warnings,
    )


def count_in_seconds(arrangement: Arrangement, *, count_in: int, tempo: float) -> float:
    """Length of ``count_in`` bars of the song's first meter and tempo, at ``tempo`` (seconds)."""
    numerator, denominator = _first_signature(arrangement)
    first_tempo_s = float(arrangement.tempo_map.tempos[0]) / 1e6
    return count_in * numerator * 4.0 / denominator * first_tempo_s / tempo


def _scaled_velocities(arrangement: Arrangement, spans: Sequence[tuple[float, float, float]]) -> np.ndarray:
    """The raw events' data byte 2 with note-on velocities scaled by the span each note starts in."""
    raw = arrangement.raw
    d2 = raw.d2.copy()
    note_on = (raw.status < 0xF0) & ((raw.status & 0xF0) == 0x90) & (raw.d2 > 0)
    seconds = arrangement.event_seconds
    for start, end, factor in spans:
        inside = note_on & (seconds >= start) & (seconds < end)
        d2[inside] = np.clip(np.rint(raw.d2[inside] * factor), 1, 127).astype(d2.dtype)
    return d2


def _first_signature(arrangement: Arrangement) -> tuple[int, int]:
    for tick, numerator, denominator in arrangement.raw.time_signatures:
        if tick == 0 and numerator > 0:
            return numerator, denominator
    return 4, 4


def _click_times(
    arrangement: Arrangement, tempo: float, count_in: int, click: bool, count_in_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Click onsets (render seconds) and downbeat flags: count-in bars, then the song's own meter."""
    numerator, denominator = _first_signature(arrangement)
    per_bar, quarters = beat_grid(numerator, denominator)
    first_tempo_s = float(arrangement.tempo_map.tempos[0]) / 1e6
    beat_s = quarters * first_tempo_s / tempo
    count = count_in * per_bar
    times = [np.arange(count) * beat_s]
    accents = [np.arange(count) % per_bar == 0]
    if click:
        tpb = arrangement.ticks_per_beat
        signatures = [(t, n, d) for t, n, d in arrangement.raw.time_signatures if n > 0]
        if not signatures or signatures[0][0] != 0:
            signatures.insert(0, (0, 4, 4))
        end_tick = arrangement.end_tick
        for index, (start, num, den) in enumerate(signatures):
            stop = signatures[index + 1][0] if index + 1 < len(signatures) else end_tick
            per_bar, quarters = beat_grid(num, den)
            step = quarters * tpb
            beat_ticks = np.arange(start, stop, step) if stop > start else np.empty(0)
            if beat_ticks.size == 0:
                continue
            tick_values = np.rint(beat_ticks).astype(np.int64)
            times.append(arrangement.tempo_map.to_seconds(tick_values) / tempo + count_in_s)
            accents.append(np.arange(tick_values.size) % per_bar == 0)
    return np.concatenate(times), np.concatenate(accents)


def to_midi_file(arrangement: Arrangement, performance: Performance) -> mido.MidiFile:
    """The transformed performance as a type-0 MIDI file (what the benchmark's baseline renders).

    Written at 1 ms per tick with a fixed tempo, so every event keeps the time the engine renders.
    """
    sample_rate = performance.sample_rate
    midi = mido.MidiFile(type=0, ticks_per_beat=500)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500_000, time=0))
    previous = 0
    for frame, status, d1, d2 in zip(
        performance.frame.tolist(),
        performance.status.tolist(),
        performance.d1.tolist(),
        performance.d2.tolist(),
        strict=True,
    ):
        tick = round(frame * 1000 / sample_rate)
        delta, previous = tick - previous, tick
        if status == STATUS_SYSEX:
            message: mido.Message = mido.Message(
                "sysex", data=performance.sysex[d1].rstrip(b"\xf7"), time=delta
            )
        else:
            message = mido.Message.from_bytes(
                [status, d1, d2][: 2 if (status & 0xF0) in (0xC0, 0xD0) else 3], time=delta
            )
        track.append(message)
    end_tick = round(performance.end_frame * 1000 / sample_rate)
    track.append(mido.MetaMessage("end_of_track", time=max(0, end_tick - previous)))
    return midi
