"""Generated songs for demo data, tests and benchmarks: musical, deterministic, no downloads.

The demo needs arrangements that sound like backing tracks (a melody a singer could follow over drums,
bass, keys and friends) and the benchmark needs 3- and 10-minute 8-part files with the features real
files have: a conductor track with tempo, meter, key signature and section markers, GM programs, drums
on channel 10 with fills, sustain pedal on the piano, and pitch bends on the lead.

Everything is drawn from one ``random.Random(seed)``, so a seed always yields the same bytes.

The file is written with mido rather than pretty_midi: pretty_midi writes no marker events (the
sections the analysis reads), no conductor-track name, and ends every track one tick after its last
event instead of at the end of the last bar.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import mido

from tracks.engine.errors import InvalidSettings

TICKS_PER_BEAT = 480
MAX_MINUTES = 20.0
DRUM_CHANNEL = 9  # "channel 10" counted from one

_MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)

# GM drum notes
_KICK, _SIDE_STICK, _SNARE, _CLOSED_HAT, _OPEN_HAT = 36, 37, 38, 42, 46
_LOW_TOM, _MID_TOM, _HIGH_TOM, _CRASH, _RIDE = 45, 47, 50, 49, 51

# Event ordering at equal ticks: note-offs first, so a repeated note is never cut by its own release.
_OFF, _CONTROL, _ON = 0, 1, 2


@dataclass(frozen=True)
class _Style:
    name: str
    beats_per_bar: int
    tempo_range: tuple[int, int]
    tonic: int  # MIDI note of the tonic in the melody octave
    key_signature: str
    melody_range: tuple[int, int]
    melody_name: str
    melody_program: int
    part_order: tuple[str, ...]
    progressions: dict[str, tuple[int, ...]]  # scale degrees (0 = I), one chord per bar
    rhythms: tuple[tuple[tuple[float, float], ...], ...]  # two-bar melody rhythms: (beat, length)


_POP = _Style(
    name="pop",
    beats_per_bar=4,
    tempo_range=(100, 110),
    tonic=62,  # D4
    key_signature="D",
    melody_range=(57, 76),  # A3..E5
    melody_name="Lead melody",
    melody_program=73,  # Flute
    part_order=("melody", "drums", "bass", "piano", "guitar", "strings", "pad", "brass"),
    progressions={
        "Verse": (0, 5, 3, 4),  # I vi IV V
        "Chorus": (3, 0, 4, 5),  # IV I V vi
        "Bridge": (5, 3, 0, 4),  # vi IV I V
    },
    rhythms=(
        ((0, 1), (1, 0.5), (1.5, 0.5), (2, 1), (3, 1), (4, 1.5), (5.5, 0.5), (6, 1.5)),
        ((0.5, 0.5), (1, 0.5), (1.5, 1), (2.5, 0.5), (3, 1), (4, 0.5), (4.5, 0.5), (5, 1), (6, 1.5)),
        ((0, 0.5), (0.5, 0.5), (1, 1), (2, 0.5), (2.5, 0.5), (3, 1), (4, 2), (6, 1)),
        ((0, 2), (2, 1), (3, 1), (4, 1), (5, 1), (6, 1.5)),
    ),
)

_BALLAD = _Style(
    name="ballad",
    beats_per_bar=3,
    tempo_range=(70, 74),
    tonic=58,  # Bb3
    key_signature="Bb",
    melody_range=(58, 74),  # Bb3..D5
    melody_name="Melody",
    melody_program=53,  # Voice Oohs
    part_order=("melody", "piano", "bass", "strings", "drums", "pad"),
    progressions={
        "Verse": (0, 5, 1, 4),  # I vi ii V
        "Chorus": (3, 4, 2, 5),  # IV V iii vi
        "Bridge": (1, 4, 0, 3),  # ii V I IV
    },
    rhythms=(
        ((0, 1), (1, 1), (2, 1), (3, 2)),
        ((0, 2), (2, 1), (3, 1.5), (4.5, 0.5), (5, 0.75)),
        ((0, 1.5), (1.5, 0.5), (2, 1), (3, 2.5)),
        ((0, 1), (1, 0.5), (1.5, 0.5), (2, 1), (3, 2)),
    ),
)

_STYLES = {style.name: style for style in (_POP, _BALLAD)}

# name, GM program, volume, pan for each accompaniment part
_PARTS: dict[str, tuple[str, int, int, int]] = {
    "drums": ("Drums", 0, 100, 64),
    "bass": ("Bass", 33, 100, 64),
    "piano": ("Piano", 0, 92, 56),
    "guitar": ("Guitar", 25, 80, 84),
    "strings": ("Strings", 48, 78, 44),
    "pad": ("Pad", 89, 64, 64),
    "brass": ("Brass", 61, 76, 72),
}


@dataclass(frozen=True)
class _Section:
    name: str  # "Intro", "Verse", "Chorus", "Bridge", "Outro"
    first_bar: int
    bars: int
    occurrence: int


@dataclass
class _Part:
    name: str
    channel: int
    program: int
    volume: int
    pan: int
    events: list[tuple[int, int, int, int, int]] = field(default_factory=list)  # tick, order, kind, a, b

    def note(self, tick: int, length: int, pitch: int, velocity: int) -> None:
        velocity = max(1, min(127, velocity))
        self.events.append((tick, _ON, 0x90, pitch, velocity))
        self.events.append((tick + max(1, length), _OFF, 0x80, pitch, 0))

    def control(self, tick: int, number: int, value: int) -> None:
        self.events.append((tick, _CONTROL, 0xB0, number, value))

    def bend(self, tick: int, value: int) -> None:
        self.events.append((tick, _CONTROL, 0xE0, value, 0))


class _Song:
    """Shared musical facts (form, harmony, timing) the part writers read."""

    def __init__(self, style: _Style, minutes: float, rng: random.Random) -> None:
        self.style = style
        self.rng = rng
        self.bpm = rng.randint(*style.tempo_range)
        self.bar_ticks = style.beats_per_bar * TICKS_PER_BEAT
        bar_seconds = style.beats_per_bar * 60.0 / self.bpm
        self.bars = max(2, round(minutes * 60.0 / bar_seconds))
        self.end_tick = self.bars * self.bar_ticks
        self.sections = self._form()
        self.tonic_pc = style.tonic % 12

    def _form(self) -> list[_Section]:
        sections: list[_Section] = []
        edge = 4 if self.bars >= 20 else 0
        counts: dict[str, int] = {}

        def add(name: str, bars: int) -> None:
            counts[name] = counts.get(name, 0) + 1
            first = sections[-1].first_bar + sections[-1].bars if sections else 0
            sections.append(_Section(name, first, bars, counts[name]))

        if edge:
            add("Intro", edge)
        cycle = ("Verse", "Chorus", "Verse", "Chorus", "Bridge", "Chorus", "Chorus")
        remaining = self.bars - 2 * edge
        index = 0
        while remaining > 0:
            bars = min(8, remaining)
            add(cycle[index % len(cycle)], bars)
            remaining -= bars
            index += 1
        if edge:
            add("Outro", edge)
        return sections

    def tick(self, bar: int, beat: float) -> int:
        return bar * self.bar_ticks + round(beat * TICKS_PER_BEAT)

    def degree(self, section: _Section, bar: int) -> int:
        """Scale degree of the chord in ``bar``; the last bar of the song is always the tonic."""
        if bar == self.bars - 1:
            return 0
        progression_name = {"Intro": "Verse", "Outro": "Chorus"}.get(section.name, section.name)
        progression = self.style.progressions[progression_name]
        return progression[(bar - section.first_bar) % len(progression)]

    def chord(self, degree: int) -> tuple[int, int, int]:
        """Pitch classes of the diatonic triad on ``degree``."""
        return tuple(  # type: ignore[return-value]
            (self.tonic_pc + _MAJOR_SCALE[(degree + step) % 7]) % 12 for step in (0, 2, 4)
        )

    def bars_of(self) -> list[tuple[_Section, int]]:
        return [(section, section.first_bar + i) for section in self.sections for i in range(section.bars)]

    def velocity(self, base: int, spread: int = 6) -> int:
        return base + self.rng.randint(-spread, spread)


def _voicing(pcs: tuple[int, ...], low: int, high: int) -> list[int]:
    """Every note of the chord between ``low`` and ``high``."""
    return [pitch for pitch in range(low, high + 1) if pitch % 12 in pcs]


def _close_voicing(pcs: tuple[int, int, int], around: int) -> list[int]:
    """Root-position-ish triad close to ``around``, so chord changes move by small steps."""
    notes = _voicing(pcs, around - 6, around + 7)
    return notes[:4]


def _write_melody(song: _Song, part: _Part) -> None:
    style, rng = song.style, song.rng
    low, high = style.melody_range
    scale = [p for p in range(low, high + 1) if (p - song.tonic_pc) % 12 in _MAJOR_SCALE]
    phrase_beats = 2 * style.beats_per_bar
    # One tune per section type, reused at each occurrence (as a song repeats its verse and chorus).
    tunes: dict[str, list[tuple[float, float, int]]] = {}
    centre = {"Verse": 64, "Chorus": 69, "Bridge": 67}
    if style.name == "ballad":
        centre = {"Verse": 63, "Chorus": 67, "Bridge": 65}

    def compose_tune(section: _Section) -> list[tuple[float, float, int]]:
        rhythm_a, rhythm_b = rng.sample(style.rhythms, 2)
        plan = (rhythm_a, rhythm_a, rhythm_b, rhythm_a)
        target = centre[section.name]
        position = min(range(len(scale)), key=lambda i: abs(scale[i] - target))
        notes: list[tuple[float, float, int]] = []
        for phrase, rhythm in enumerate(plan):
            for beat, length in rhythm:
                absolute = phrase * phrase_beats + beat
                bar = section.first_bar + int(absolute // style.beats_per_bar)
                pcs = song.chord(song.degree(section, bar))
                strong = (
                    (absolute % style.beats_per_bar) in (0, 2) if style.beats_per_bar == 4 else beat % 3 == 0
                )
                if strong:
                    # Land on the chord tone nearest to where the line is, drifting back to the centre.
                    pull = 1 if scale[position] < target - 3 else -1 if scale[position] > target + 4 else 0
                    choices = [i for i, p in enumerate(scale) if p % 12 in pcs]
                    position = min(choices, key=lambda i: abs(i - position - pull) + rng.random() * 0.9)
                else:
                    position += rng.choice((-1, -1, 1, 1, 2, -2))
                position = max(0, min(len(scale) - 1, position))
                notes.append((absolute, length, scale[position]))
        # End on the tonic nearest to the last note, so each section resolves.
        tonics = [i for i, p in enumerate(scale) if p % 12 == song.tonic_pc]
        last_beat, last_length, last_pitch = notes[-1]
        notes[-1] = (last_beat, last_length, scale[min(tonics, key=lambda i: abs(scale[i] - last_pitch))])
        return notes

    for section in song.sections:
        if section.name in ("Intro", "Outro"):
            continue
        if section.name not in tunes:
            tunes[section.name] = compose_tune(section)
        section_beats = section.bars * style.beats_per_bar
        for index, (beat, length, pitch) in enumerate(tunes[section.name]):
            if beat >= section_beats:
                break
            start = song.tick(section.first_bar, beat)
            ticks = round(min(length, section_beats - beat) * TICKS_PER_BEAT * 0.92)
            part.note(start, ticks, pitch, song.velocity(92 if section.name == "Chorus" else 84))
            if index == 0 and section.name == "Chorus":
                # A scoop into the first chorus note: bend up from below to centre.
                for step, value in enumerate((-2048, -1200, -500, 0)):
                    part.bend(start + step * 30, value)
            elif index == len(tunes[section.name]) - 1 and section.occurrence % 2 == 1:
                # A gentle fall-off at the end of the phrase, then back to centre before the next note.
                for step, value in enumerate((-300, -900, -1600)):
                    part.bend(start + ticks // 2 + step * 40, value)
                part.bend(start + ticks + 1, 0)


def _write_drums(song: _Song, part: _Part) -> None:
    beats = song.style.beats_per_bar
    for section, bar in song.bars_of():
        last_of_section = bar == section.first_bar + section.bars - 1
        if bar == song.bars - 1:
            part.note(song.tick(bar, 0), TICKS_PER_BEAT, _CRASH, song.velocity(108))
            part.note(song.tick(bar, 0), TICKS_PER_BEAT, _KICK, song.velocity(110))
            continue
        if bar == section.first_bar and section.name != "Intro":
            part.note(song.tick(bar, 0), TICKS_PER_BEAT * 2, _CRASH, song.velocity(100))
        if song.style.name == "ballad":
            part.note(song.tick(bar, 0), 120, _KICK, song.velocity(72))
            part.note(song.tick(bar, 2), 120, _SIDE_STICK, song.velocity(58))
            for beat in range(beats):
                part.note(song.tick(bar, beat), 120, _RIDE, song.velocity(50 if beat else 60))
            if last_of_section:
                for step, tom in enumerate((_HIGH_TOM, _MID_TOM, _LOW_TOM)):
                    part.note(song.tick(bar, 1.5 + step * 0.5), 120, tom, song.velocity(64))
            continue
        loud = section.name in ("Chorus", "Bridge")
        kicks: tuple[float, ...] = (0.0, 1.5, 2.0, 2.5) if loud else (0.0, 2.0, 2.5)
        fill = last_of_section and section.bars >= 4
        for kick in kicks:
            if not (fill and kick >= 3):
                part.note(song.tick(bar, kick), 120, _KICK, song.velocity(104))
        for backbeat in (1, 3):
            if not (fill and backbeat >= 3):
                part.note(song.tick(bar, backbeat), 120, _SNARE, song.velocity(100))
        for eighth in range(8):
            at = eighth / 2
            if fill and at >= 3:
                break
            open_hat = eighth == 7 and (bar - section.first_bar) % 4 == 3
            hat_velocity = song.velocity(80 if eighth % 2 == 0 else 62)
            part.note(song.tick(bar, at), 110, _OPEN_HAT if open_hat else _CLOSED_HAT, hat_velocity)
        if fill:
            toms = (_SNARE, _SNARE, _HIGH_TOM, _HIGH_TOM, _MID_TOM, _MID_TOM, _LOW_TOM, _LOW_TOM)
            for step, drum in enumerate(toms):
                part.note(song.tick(bar, 3 + step / 8), 60, drum, song.velocity(92 + step * 3))


def _root(song: _Song, degree: int, low: int) -> int:
    pc = (song.tonic_pc + _MAJOR_SCALE[degree]) % 12
    return low + (pc - low) % 12


def _write_bass(song: _Song, part: _Part) -> None:
    beats = song.style.beats_per_bar
    for section, bar in song.bars_of():
        root = _root(song, song.degree(section, bar), 33)  # A1..G#2
        if bar == song.bars - 1:
            part.note(song.tick(bar, 0), song.bar_ticks - 10, root, song.velocity(96))
        elif song.style.name == "ballad":
            part.note(song.tick(bar, 0), 2 * TICKS_PER_BEAT - 20, root, song.velocity(84))
            part.note(song.tick(bar, 2), TICKS_PER_BEAT - 20, root + 7, song.velocity(76))
        elif section.name in ("Chorus", "Bridge"):
            for eighth in range(2 * beats):
                pitch = root + 12 if eighth in (3, 7) else root
                part.note(
                    song.tick(bar, eighth / 2), 200, pitch, song.velocity(98 if eighth % 2 == 0 else 86)
                )
        else:
            for beat, length, interval in ((0, 1.5, 0), (1.5, 0.5, 0), (2, 1, 7), (3, 1, 0)):
                part.note(
                    song.tick(bar, beat),
                    round(length * TICKS_PER_BEAT) - 20,
                    root + interval,
                    song.velocity(94),
                )


def _write_piano(song: _Song, part: _Part) -> None:
    beats = song.style.beats_per_bar
    for section, bar in song.bars_of():
        degree = song.degree(section, bar)
        notes = _close_voicing(song.chord(degree), 62)
        start = song.tick(bar, 0)
        # Pedal changes with the chord: up on the downbeat, down just after, so harmonies don't smear.
        part.control(start, 64, 0)
        part.control(start + 12, 64, 127)
        if bar == song.bars - 1:
            for pitch in [_root(song, degree, 36), *notes]:
                part.note(start, song.bar_ticks - 20, pitch, song.velocity(80))
        elif song.style.name == "ballad":
            arpeggio = [_root(song, degree, 36), _root(song, degree, 36) + 7, *notes[:3], notes[1]]
            for step, pitch in enumerate(arpeggio):
                part.note(song.tick(bar, step / 2), TICKS_PER_BEAT, pitch, song.velocity(70 if step else 80))
        else:
            for beat in range(beats):
                for pitch in notes:
                    part.note(
                        song.tick(bar, beat),
                        TICKS_PER_BEAT - 40,
                        pitch,
                        song.velocity(78 if beat % 2 else 86),
                    )
    part.control(song.end_tick, 64, 0)


def _write_guitar(song: _Song, part: _Part) -> None:
    strums = ((0, 1), (1, 0.5), (1.5, 1), (2.5, 0.5), (3, 1))  # down, down-up, up, down
    for section, bar in song.bars_of():
        if section.name == "Intro":
            continue
        notes = _voicing(song.chord(song.degree(section, bar)), 52, 67)[:5]
        if bar == song.bars - 1:
            strums_here: tuple[tuple[float, float], ...] = ((0, float(song.style.beats_per_bar) - 0.1),)
        else:
            strums_here = strums
        for index, (beat, length) in enumerate(strums_here):
            upstroke = beat % 1 != 0
            order = list(reversed(notes)) if upstroke else notes
            start = song.tick(bar, beat)
            for string, pitch in enumerate(order):
                # Strings sound one after another, as a strum does, 8 ticks (about 10 ms) apart.
                part.note(
                    start + 8 * string,
                    round(length * TICKS_PER_BEAT) - 8 * string - 10,
                    pitch,
                    song.velocity(70 if upstroke else 84 if index == 0 else 78),
                )


def _write_sustained(
    song: _Song, part: _Part, *, low: int, high: int, velocity: int, skip: tuple[str, ...]
) -> None:
    for section, bar in song.bars_of():
        if section.name in skip:
            continue
        notes = _voicing(song.chord(song.degree(section, bar)), low, high)
        for pitch in notes:
            part.note(song.tick(bar, 0), song.bar_ticks - 10, pitch, song.velocity(velocity, 4))


def _write_strings(song: _Song, part: _Part) -> None:
    skip = ("Intro",) if song.style.name == "ballad" else ("Intro", "Verse")
    _write_sustained(song, part, low=55, high=74, velocity=72, skip=skip)


def _write_pad(song: _Song, part: _Part) -> None:
    _write_sustained(song, part, low=50, high=64, velocity=58, skip=())


def _write_brass(song: _Song, part: _Part) -> None:
    for section, bar in song.bars_of():
        if section.name != "Chorus" and bar != song.bars - 1:
            continue
        notes = _close_voicing(song.chord(song.degree(section, bar)), 64)[:3]
        hits = ((0, 0.5), (1.5, 0.5)) if bar != song.bars - 1 else ((0, 2.0),)
        for beat, length in hits:
            for pitch in notes:
                part.note(song.tick(bar, beat), round(length * TICKS_PER_BEAT) - 30, pitch, song.velocity(90))


_WRITERS: dict[str, Callable[[_Song, _Part], None]] = {
    "melody": _write_melody,
    "drums": _write_drums,
    "bass": _write_bass,
    "piano": _write_piano,
    "guitar": _write_guitar,
    "strings": _write_strings,
    "pad": _write_pad,
    "brass": _write_brass,
}


def _track(part: _Part, end_tick: int) -> mido.MidiTrack:
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name=part.name, time=0))
    track.append(mido.Message("program_change", channel=part.channel, program=part.program, time=0))
    track.append(mido.Message("control_change", channel=part.channel, control=7, value=part.volume, time=0))
    track.append(mido.Message("control_change", channel=part.channel, control=10, value=part.pan, time=0))
    track.append(mido.Message("control_change", channel=part.channel, control=91, value=40, time=0))
    now = 0
    channel = part.channel
    for tick, _order, kind, a, b in sorted(part.events):
        tick = min(tick, end_tick)
        delta, now = tick - now, tick
        if kind == 0x90:
            track.append(mido.Message("note_on", channel=channel, note=a, velocity=b, time=delta))
        elif kind == 0x80:
            track.append(mido.Message("note_off", channel=channel, note=a, velocity=0, time=delta))
        elif kind == 0xB0:
            track.append(mido.Message("control_change", channel=channel, control=a, value=b, time=delta))
        else:
            track.append(mido.Message("pitchwheel", channel=channel, pitch=a, time=delta))
    track.append(mido.MetaMessage("end_of_track", time=end_tick - now))
    return track


def _conductor(song: _Song) -> mido.MidiTrack:
    style = song.style
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name=f"Backtrack demo ({style.name})", time=0))
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(song.bpm), time=0))
    track.append(mido.MetaMessage("time_signature", numerator=style.beats_per_bar, denominator=4, time=0))
    track.append(mido.MetaMessage("key_signature", key=style.key_signature, time=0))
    now = 0
    for section in song.sections:
        tick = section.first_bar * song.bar_ticks
        label = section.name if section.name in ("Intro", "Outro") else f"{section.name} {section.occurrence}"
        track.append(mido.MetaMessage("marker", text=label, time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=song.end_tick - now))
    return track


def compose_song(*, style: str = "pop", minutes: float = 3.0, parts: int = 8, seed: int = 0) -> bytes:
    """A Standard MIDI File (type 1, 480 ticks per beat) of a generated song, as bytes.

    ``style`` "pop" (4/4, 100-110 bpm, D major, up to 8 parts with "Lead melody") or "ballad" (3/4,
    about 72 bpm, Bb major, up to 6 parts with "Melody"); ``parts`` counts the instrument tracks,
    melody first, then drums (pop) or piano (ballad). The same arguments always give the same bytes.
    """
    chosen = _STYLES.get(style)
    if chosen is None:
        raise InvalidSettings(f"style must be one of {', '.join(sorted(_STYLES))}, not {style!r}")
    if not 0 < minutes <= MAX_MINUTES:
        raise InvalidSettings(f"minutes must be more than 0 and at most {MAX_MINUTES:g}, got {minutes}")
    if not 2 <= parts <= len(chosen.part_order):
        raise InvalidSettings(f"a {style} song has 2 to {len(chosen.part_order)} parts, not {parts}")
    song = _Song(chosen, minutes, random.Random(seed))  # noqa: S311 (music, not secrets)
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.append(_conductor(song))
    free_channels = iter(c for c in range(16) if c != DRUM_CHANNEL)
    for key in chosen.part_order[:parts]:
        if key == "melody":
            name, program, volume, pan = chosen.melody_name, chosen.melody_program, 110, 64
        else:
            name, program, volume, pan = _PARTS[key]
        channel = DRUM_CHANNEL if key == "drums" else next(free_channels)
        part = _Part(name=name, channel=channel, program=program, volume=volume, pan=pan)
        _WRITERS[key](song, part)
        midi.tracks.append(_track(part, song.end_tick))
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()
