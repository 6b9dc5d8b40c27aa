"""Small songs with named sections for the sections and arrangement tests."""

import io
from collections.abc import Sequence

import mido

TPB = 480
BAR = 4 * TPB  # 4/4
ORGAN = 16


def song_bytes(
    *,
    markers: Sequence[tuple[int, str]] = (),
    cue_points: Sequence[tuple[int, str]] = (),
    meters: Sequence[tuple[int, int, int]] = ((0, 4, 4),),
    bpm: float = 120.0,
    parts: Sequence[Sequence[tuple[int, int, int]]] = (),
    controls: Sequence[tuple[int, int, int, int]] = (),
    programs: Sequence[int] = (),
) -> bytes:
    """A type-1 file: a conductor track (tempo, meters, markers, cue points as (tick, ...)), then one
    track per part: ``parts[n]`` is [(start_tick, end_tick, pitch)] on channel n, ``controls`` are
    (tick, channel, controller, value)."""
    midi = mido.MidiFile(type=1, ticks_per_beat=TPB)
    conductor: list[tuple[int, mido.MetaMessage]] = [
        (0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))
    ]
    conductor += [
        (tick, mido.MetaMessage("time_signature", numerator=num, denominator=den))
        for tick, num, den in meters
    ]
    conductor += [(tick, mido.MetaMessage("marker", text=text)) for tick, text in markers]
    conductor += [(tick, mido.MetaMessage("cue_marker", text=text)) for tick, text in cue_points]
    midi.tracks.append(_track(conductor))
    for channel, notes in enumerate(parts):
        program = programs[channel] if channel < len(programs) else ORGAN
        events: list[tuple[int, mido.Message]] = [
            (0, mido.Message("program_change", channel=channel, program=program))
        ]
        events += [
            (tick, mido.Message("control_change", channel=channel, control=number, value=value))
            for tick, ch, number, value in controls
            if ch == channel
        ]
        for start, end, pitch in notes:
            events.append((start, mido.Message("note_on", channel=channel, note=pitch, velocity=100)))
            events.append((end, mido.Message("note_off", channel=channel, note=pitch, velocity=0)))
        midi.tracks.append(_track(events))
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def _track(events: list[tuple[int, mido.Message | mido.MetaMessage]]) -> mido.MidiTrack:
    track = mido.MidiTrack()
    now = 0
    order = {"note_off": 0, "program_change": 1, "control_change": 2}
    for tick, message in sorted(events, key=lambda item: (item[0], order.get(item[1].type, 3))):
        track.append(message.copy(time=tick - now))
        now = tick
    return track


FLUTE = 73


def four_sections(*, pad: bool = True) -> bytes:
    """Intro (bars 1-2, A4), Verse (3-4, C5), Chorus (5-6, E5), Outro (7-8, G5) on a flute; the
    Verse turns the flute down (CC7 40 at bar 3, after 127 at bar 1); a pad (an organ on C3, channel
    1) starts in bar 4 and is held to the end of bar 6, over the Verse/Chorus bar line."""
    pitches = (69, 72, 76, 79)
    melody = [(n * 2 * BAR, (n * 2 + 2) * BAR - 10, pitch) for n, pitch in enumerate(pitches)]
    pad_notes = [(3 * BAR, 6 * BAR - 10, 48)]
    return song_bytes(
        markers=[(0, "Intro"), (2 * BAR, "Verse"), (4 * BAR, "Chorus"), (6 * BAR, "Outro")],
        parts=[melody, pad_notes] if pad else [melody],
        controls=[(0, 0, 7, 127), (2 * BAR, 0, 7, 40), (0, 1, 7, 110)],
        programs=[FLUTE, ORGAN],
    )
