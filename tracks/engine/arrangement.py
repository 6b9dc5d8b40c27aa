"""The Arrangement: a validated MIDI file as flat arrays plus its parts and tempo map.

Every later step (analysis, transform, synthesis) reads these arrays instead of re-parsing, and the
``midi`` attribute gives a mido view for callers who want one (built on first use, because mido is
slow and the engine itself never needs it).
"""

import hashlib
import io
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import mido
import numpy as np

from .errors import InvalidArrangement
from .gm import program_name, program_role
from .smf import RawMidi, bar_lines, shift_earlier
from .tempo import TempoMap

DRUM_CHANNEL = 9
SUSTAIN_CC = 64
# A note released while the sustain pedal is down keeps sounding until the pedal comes up, but at
# most this long: a pedal left down (or lifted a minute later by stray trailing data) must not make
# the song end long after its sound has died away.
MAX_PEDAL_HOLD_S = 4.0
# A note that is never released (no note-off) sounds at least this long.
DANGLING_NOTE_S = 1.0
# More silence than this before the first note is not music: the empty bars before the bar of the
# first note are cut (that bar stays, so a pickup keeps its place before the downbeat).
MAX_LEAD_SILENCE_S = 2.0


@dataclass(frozen=True)
class Part:
    """One instrument line: the notes of one channel in one track."""

    index: int
    track: int
    channel: int
    name: str
    program: int
    is_drum: bool
    notes: int
    low: int
    high: int
    named_in_file: bool = False

    @property
    def instrument(self) -> str:
        return program_name(self.program, is_drum=self.is_drum)

    @property
    def family_role(self) -> str:
        return program_role(self.program, is_drum=self.is_drum)


@dataclass(frozen=True)
class Notes:
    """Every sounding note, paired on/off, as arrays (seconds at the original tempo)."""

    part: np.ndarray
    pitch: np.ndarray
    velocity: np.ndarray
    start: np.ndarray
    end: np.ndarray
    start_tick: np.ndarray | None = None  # int64 ticks of ``start`` (None: not computed)


@dataclass
class Arrangement:
    data: bytes
    raw: RawMidi
    tempo_map: TempoMap
    parts: list[Part]
    notes: Notes
    event_part: np.ndarray  # per raw event: owning part index, -1 for channel-wide and sysex events
    event_seconds: np.ndarray
    end_tick: int
    end_s: float
    analysis: dict[str, Any] = field(default_factory=dict)
    # Whole empty bars cut before the music (``raw`` and everything after it start after them);
    # ``data`` stays the file as uploaded.
    lead_trim_bars: int = 0
    lead_trim_ticks: int = 0

    @cached_property
    def sha256(self) -> str:
        """Identifies the song the engine plays: the file, and the lead it cut if any."""
        digest = hashlib.sha256(self.data)
        if self.lead_trim_ticks:
            digest.update(f"\0lead-trim:{self.lead_trim_ticks}".encode())
        return digest.hexdigest()

    @cached_property
    def midi(self) -> mido.MidiFile:
        """The file as uploaded (before any lead trim)."""
        try:
            return mido.MidiFile(file=io.BytesIO(self.data), clip=True)
        except Exception as exc:  # mido raises many types; callers only need the reason
            raise InvalidArrangement(f"the MIDI file cannot be read ({exc})") from exc

    @property
    def ticks_per_beat(self) -> int:
        return self.raw.ticks_per_beat


def lead_trim(raw: RawMidi, *, at_most: int | None = None) -> tuple[int, int]:
    """(bars, ticks) of empty bars to cut before the music: none when the first note starts within
    MAX_LEAD_SILENCE_S, else every bar before the bar of the first note.

    ``at_most`` caps the bars (a trim recorded when the song was first analysed; 0 for songs
    analysed before trimming existed, whose stored bars and seconds count from the file's tick 0).
    """
    if at_most is not None and at_most <= 0:
        return 0, 0
    note_on = (raw.status < 0xF0) & ((raw.status & 0xF0) == 0x90) & (raw.d2 > 0)
    if not note_on.any():
        return 0, 0
    first = int(raw.tick[note_on].min())
    if at_most is None:
        tempo_map = TempoMap.build(raw.ticks_per_beat, raw.tempos)
        if tempo_map.second_at(first) <= MAX_LEAD_SILENCE_S:
            return 0, 0
    lines = bar_lines(raw.ticks_per_beat, raw.time_signatures, first + 1)
    bars = int(np.searchsorted(lines, first, side="right")) - 1
    if at_most is not None:
        bars = min(bars, at_most)
    return bars, int(lines[bars])


def build_arrangement(data: bytes, raw: RawMidi, *, lead_trim_bars: int | None = None) -> Arrangement:
    """Pair notes, find the parts and the end of the music.

    Leading empty bars are cut first (see ``lead_trim``), so the tempo map, bars, sections, click,
    count-in and render all describe one song. ``lead_trim_bars`` replays the trim recorded in a
    stored analysis (``analysis["lead_trim_bars"]``, missing: 0); None decides from the music.
    """
    trim_bars, trim_ticks = lead_trim(raw, at_most=lead_trim_bars)
    raw = shift_earlier(raw, trim_ticks)
    tempo_map = TempoMap.build(raw.ticks_per_beat, raw.tempos)
    status = raw.status
    kinds = status & 0xF0
    channels = status & 0x0F
    is_channel = status < 0xF0
    note_on = (kinds == 0x90) & (raw.d2 > 0)
    if not note_on.any():
        raise InvalidArrangement("the file has no notes")

    # A part is a (track, channel) pair that plays notes; numbered in order of first appearance.
    pair_key = raw.track.astype(np.int64) * 16 + channels
    keys_with_notes, first_index = np.unique(pair_key[note_on], return_index=True)
    first_positions = np.flatnonzero(note_on)[first_index]
    ordered = keys_with_notes[np.argsort(first_positions, kind="stable")]
    part_of_key = {int(key): index for index, key in enumerate(ordered)}

    note_like = is_channel & ((kinds == 0x80) | (kinds == 0x90) | (kinds == 0xA0))
    lookup = np.full(64 * 16, -1, dtype=np.int32)
    for key, index in part_of_key.items():
        lookup[key] = index
    event_part = np.where(note_like, lookup[pair_key], -1).astype(np.int32)

    event_seconds = tempo_map.to_seconds(raw.tick)
    notes = _pair_notes(raw, kinds, channels, event_part, event_seconds)
    # The song ends where its sound ends: the last note-off, held on by a sustain pedal that is down
    # at that moment; controller, pedal or program data after that is not music.
    part_channels = (ordered % 16).astype(np.int64)
    end_s = _sound_end(notes, part_channels[notes.part], raw, kinds, channels, event_seconds)
    end_tick = _tick_at(tempo_map, end_s)
    end_s = float(tempo_map.second_at(end_tick))

    channel_use = np.bincount(part_channels, minlength=16)
    parts = _distinct_names(
        [
            _describe_part(
                raw, index, int(key), notes, kinds, channels, note_on, bool(channel_use[int(key) % 16] > 1)
            )
            for index, key in enumerate(ordered)
        ]
    )
    return Arrangement(
        data=data,
        raw=raw,
        tempo_map=tempo_map,
        parts=parts,
        notes=notes,
        event_part=event_part,
        event_seconds=event_seconds,
        end_tick=end_tick,
        end_s=end_s,
        lead_trim_bars=trim_bars,
        lead_trim_ticks=trim_ticks,
    )


def _pair_notes(
    raw: RawMidi, kinds: np.ndarray, channels: np.ndarray, event_part: np.ndarray, seconds: np.ndarray
) -> Notes:
    positions = np.flatnonzero((kinds == 0x80) | (kinds == 0x90))
    open_notes: dict[tuple[int, int], list[int]] = {}
    starts: list[int] = []
    ends: list[int] = []
    # Notes never released sound until the last note event of the file (not until stray trailing
    # controller data), and at least DANGLING_NOTE_S.
    end_time = float(seconds[positions[-1]]) if positions.size else 0.0
    velocities = raw.d2
    pitches = raw.d1
    kind_list = kinds[positions].tolist()
    key_list = (event_part[positions] * 128 + pitches[positions]).tolist()
    vel_list = velocities[positions].tolist()
    for position, kind, key, velocity in zip(positions.tolist(), kind_list, key_list, vel_list, strict=True):
        if kind == 0x90 and velocity:
            open_notes.setdefault(key, []).append(position)
        else:
            stack = open_notes.get(key)
            if stack:
                starts.append(stack.pop(0))
                ends.append(position)
    start_index = np.asarray(starts, dtype=np.int64)
    end_seconds = seconds[np.asarray(ends, dtype=np.int64)] if ends else np.empty(0)
    # Notes never released sound until the end of the music.
    dangling = [position for stack in open_notes.values() for position in stack]
    if dangling:
        dangling_index = np.asarray(dangling, dtype=np.int64)
        start_index = np.concatenate((start_index, dangling_index))
        end_seconds = np.concatenate(
            (end_seconds, np.maximum(end_time, seconds[dangling_index] + DANGLING_NOTE_S))
        )
    order = np.argsort(start_index, kind="stable")
    start_index = start_index[order]
    return Notes(
        part=event_part[start_index],
        pitch=pitches[start_index].astype(np.int16),
        velocity=velocities[start_index].astype(np.int16),
        start=seconds[start_index],
        end=end_seconds[order],
        start_tick=raw.tick[start_index],
    )


def _sound_end(
    notes: Notes,
    note_channels: np.ndarray,
    raw: RawMidi,
    kinds: np.ndarray,
    channels: np.ndarray,
    seconds: np.ndarray,
) -> float:
    """Seconds where the last note stops sounding: its note-off, or the sustain pedal's release
    when the pedal is down at that note-off (at most MAX_PEDAL_HOLD_S later)."""
    if not notes.end.size:
        return 0.0
    end = float(notes.end.max())
    pedal = (kinds == 0xB0) & (raw.d1 == SUSTAIN_CC)
    if not pedal.any():
        return end
    for channel in np.unique(channels[pedal]).tolist():
        mine = pedal & (channels == channel)
        times = seconds[mine]
        down = raw.d2[mine] >= 64
        note_ends = notes.end[note_channels == channel]
        if not note_ends.size:
            continue
        # Only note-offs that could end the song matter: those within the pedal hold of the end.
        late = note_ends[note_ends >= end - MAX_PEDAL_HOLD_S]
        index = np.searchsorted(times, late, side="right") - 1
        held = (index >= 0) & down[np.maximum(index, 0)]
        for note_end, at in zip(late[held].tolist(), index[held].tolist(), strict=True):
            ups = np.flatnonzero(~down[at + 1 :])
            release = float(times[at + 1 + ups[0]]) if ups.size else note_end + MAX_PEDAL_HOLD_S
            end = max(end, min(release, note_end + MAX_PEDAL_HOLD_S))
    return end


def _tick_at(tempo_map: TempoMap, seconds: float) -> int:
    """The first tick at or after ``seconds`` (the inverse of ``TempoMap.to_seconds``)."""
    index = max(0, int(np.searchsorted(tempo_map.seconds, seconds, side="right")) - 1)
    beats = (seconds - float(tempo_map.seconds[index])) * 1e6 / float(tempo_map.tempos[index])
    return int(tempo_map.ticks[index]) + max(0, int(np.ceil(beats * tempo_map.ticks_per_beat - 1e-6)))


def _describe_part(
    raw: RawMidi,
    index: int,
    key: int,
    notes: Notes,
    kinds: np.ndarray,
    channels: np.ndarray,
    note_on: np.ndarray,
    shared_channel: bool = False,
) -> Part:
    track, channel = divmod(key, 16)
    is_drum = channel == DRUM_CHANNEL
    mine = notes.part == index
    pitches = notes.pitch[mine]
    first_note = int(np.flatnonzero(note_on & (raw.track == track) & (channels == channel))[0])
    # The part's instrument is its own track's program change on its channel. Only when the track
    # has none and no other part plays on that channel is a program change from another track (a
    # conductor track setting up the channels) taken as this part's.
    on_channel = (kinds == 0xC0) & (channels == channel)
    programs = np.flatnonzero(on_channel & (raw.track == track))
    if not programs.size and not shared_channel:
        programs = np.flatnonzero(on_channel)
    before = programs[programs <= first_note]
    program = 0
    if before.size:
        program = int(raw.d1[before[-1]])
    elif programs.size:
        program = int(raw.d1[programs[0]])
    track_parts = len({int(c) for c in np.unique(channels[note_on & (raw.track == track)])})
    name = ""
    if track_parts == 1:
        name = raw.track_names.get(track, "") or raw.instrument_names.get(track, "")
    named_in_file = bool(name)
    if not name:
        name = program_name(program, is_drum=is_drum)
    return Part(
        index=index,
        track=track,
        channel=channel,
        name=name,
        program=program,
        is_drum=is_drum,
        notes=int(pitches.size),
        low=int(pitches.min()),
        high=int(pitches.max()),
        named_in_file=named_in_file,
    )


def _distinct_names(parts: list[Part]) -> list[Part]:
    """Parts sharing a name (a song title in every track, two guitars) get told apart."""
    counts: dict[str, int] = {}
    for part in parts:
        counts[part.name] = counts.get(part.name, 0) + 1
    parts = [
        replace(part, name=f"{part.name} ({part.instrument})")
        if counts[part.name] > 1 and part.name != part.instrument
        else part
        for part in parts
    ]
    totals: dict[str, int] = {}
    for part in parts:
        totals[part.name] = totals.get(part.name, 0) + 1
    seen: dict[str, int] = {}
    named = []
    for part in parts:
        if totals[part.name] == 1:
            named.append(part)
            continue
        seen[part.name] = seen.get(part.name, 0) + 1
        named.append(replace(part, name=f"{part.name} {seen[part.name]}"))
    return named
