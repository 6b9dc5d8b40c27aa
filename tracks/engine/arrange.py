"""Arranged songs: sections and bar ranges in any order, joined seamlessly, as a new Arrangement.

The arranged timeline is built on the MIDI events before any other transform, so transposition,
tempo, mix, count-in and click apply to the result exactly as to a song as written: the arranged
song is an :class:`~tracks.engine.arrangement.Arrangement` with the same parts, whose events are the
items' events laid end to end (in ticks, so the length is exact: the sum of the items' lengths).

Each jump (an item that does not continue where the one before it stopped) is made seamless:

- the state in force where the jumped-to item starts is chased: bank and program, every controller
  the file uses (volume, pan, expression, sustain pedal, ...), the RPN/NRPN values (pitch-bend range,
  tuning), pitch bend, channel pressure, tempo and meter;
- notes sounding across the cut are ended at the cut with a note-off (the instrument's own release
  follows, so nothing clicks or hangs), and a sustain pedal down at the cut is lifted there;
- notes held into the start of the jumped-to item (a pad tied over the bar line) sound from the join.
"""

import re
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .arrangement import Arrangement, _pair_notes
from .errors import InvalidSettings
from .sections import BarGrid, bar_grid, find_sections
from .smf import RawMidi
from .tempo import DEFAULT_TEMPO, TempoMap
from .timeline import Timeline

MAX_ITEMS = 64
MAX_REPEATS = 8
MAX_ARRANGED_S = 20 * 60
_ITEM = re.compile(r"^(?P<body>.*?)(?:\s*[x\u00d7]\s*(?P<repeats>\d+))?$", re.IGNORECASE)
_RANGE = re.compile(r"^(?P<first>\d+)\s*-\s*(?P<last>\d+)$")
_SUSTAIN = 64
_DATA_ENTRY = (6, 38)
_PARAMETER_SELECT = (98, 99, 100, 101)
_NOT_CHASED = {6, 38, 96, 97, *_PARAMETER_SELECT, *range(120, 128)}
_CC_DEFAULTS = {7: 100, 10: 64, 11: 127}


@dataclass(frozen=True)
class ItemSpec:
    """One arrangement item as written: a section name or a bar range, and its repeats."""

    name: str | None
    first_bar: int
    last_bar: int
    repeats: int

    @property
    def text(self) -> str:
        body = self.name if self.name is not None else f"{self.first_bar}-{self.last_bar}"
        return body if self.repeats == 1 else f"{body} x{self.repeats}"


@dataclass(frozen=True)
class ArrangedItem:
    """An item resolved against a song: bars ``first_bar``..``last_bar`` (1-based, inclusive)."""

    label: str
    first_bar: int
    last_bar: int
    repeats: int


def parse_arrangement(items: object) -> list[ItemSpec]:
    """Check the form of an arrangement (no song needed); raises InvalidSettings with the reason."""
    if items is None:
        return []
    if isinstance(items, str):
        items = [part for part in items.split(",") if part.strip()]
    if not isinstance(items, list | tuple):
        raise InvalidSettings("arrangement must be a list of section names or bar ranges")
    if len(items) > MAX_ITEMS:
        raise InvalidSettings(f"arrangement has {len(items)} items; the limit is {MAX_ITEMS}")
    specs = []
    for position, item in enumerate(items, start=1):
        if isinstance(item, ItemSpec):
            specs.append(item)
            continue
        if not isinstance(item, str) or not item.strip():
            raise InvalidSettings(
                f"arrangement item {position} must be a section name or a bar range like 17-24"
            )
        text = " ".join(item.split())
        if len(text) > 100:
            raise InvalidSettings(f"arrangement item {position} is too long")
        match = _ITEM.match(text)
        body = match.group("body").strip() if match else text
        repeats = int(match.group("repeats")) if match and match.group("repeats") else 1
        if not body:
            raise InvalidSettings(f"arrangement item {position} ({text!r}) names no section")
        if not 1 <= repeats <= MAX_REPEATS:
            raise InvalidSettings(
                f"arrangement item {text!r} repeats {repeats} times; repeats must be 1 to {MAX_REPEATS}"
            )
        bars = _RANGE.match(body)
        if bars:
            first, last = int(bars.group("first")), int(bars.group("last"))
            if first < 1:
                raise InvalidSettings(f"bar range {body} starts before bar 1")
            if last < first:
                raise InvalidSettings(f"bar range {body} is reversed (write {last}-{first})")
            specs.append(ItemSpec(None, first, last, repeats))
        else:
            specs.append(ItemSpec(body, 0, 0, repeats))
    return specs


def resolve_arrangement(
    specs: list[ItemSpec], sections: list[dict[str, Any]], bars: int
) -> list[ArrangedItem]:
    """Items as bar ranges of this song; raises InvalidSettings for unknown names or bad ranges."""
    by_name: dict[str, dict[str, Any]] = {}
    for section in sections:
        by_name.setdefault(str(section["name"]).casefold(), section)
    resolved = []
    for spec in specs:
        if spec.name is not None:
            found = by_name.get(spec.name.casefold())
            if found is None:
                known = ", ".join(dict.fromkeys(str(s["name"]) for s in sections)) or "none"
                raise InvalidSettings(f"unknown section {spec.name!r}; this song's sections are: {known}")
            resolved.append(
                ArrangedItem(str(found["name"]), int(found["start_bar"]), int(found["end_bar"]), spec.repeats)
            )
            continue
        if spec.last_bar > bars:
            raise InvalidSettings(
                f"bar range {spec.first_bar}-{spec.last_bar} is outside the song (bars 1 to {bars})"
            )
        resolved.append(
            ArrangedItem(f"{spec.first_bar}-{spec.last_bar}", spec.first_bar, spec.last_bar, spec.repeats)
        )
    return resolved


def song_sections(arrangement: Arrangement, grid: BarGrid | None = None) -> list[dict[str, Any]]:
    """The sections an arrangement's items name: the analysis' (possibly corrected by the producer)."""
    sections = arrangement.analysis.get("sections")
    if sections:
        return list(sections)
    return find_sections(arrangement, grid)


def arranged_seconds(items: list[ArrangedItem], grid: BarGrid) -> float:
    """Length of the arranged song in seconds at the original tempo."""
    return float(
        sum(
            (grid.end_s[item.last_bar - 1] - grid.start_s[item.first_bar - 1]) * item.repeats
            for item in items
        )
    )


def plan_arrangement(
    arrangement: Arrangement,
    items: object,
    *,
    tempo: float = 1.0,
    sections: list[dict[str, Any]] | None = None,
) -> list[ArrangedItem]:
    """Resolve and check ``items`` against the song (names, ranges, the 20-minute limit)."""
    specs = parse_arrangement(items)
    grid = bar_grid(arrangement)
    resolved = resolve_arrangement(
        specs, sections if sections is not None else song_sections(arrangement, grid), grid.count
    )
    seconds = arranged_seconds(resolved, grid) / (tempo if tempo > 0 else 1.0)
    if seconds > MAX_ARRANGED_S:
        raise InvalidSettings(
            f"the arranged song would last {seconds / 60:.1f} minutes at this tempo; "
            f"the limit is {MAX_ARRANGED_S // 60} minutes"
        )
    return resolved


def arrange(
    arrangement: Arrangement,
    items: object,
    *,
    tempo: float = 1.0,
    sections: list[dict[str, Any]] | None = None,
) -> Arrangement:
    """The arranged song as an Arrangement (the song itself when ``items`` is empty)."""
    specs = parse_arrangement(items)
    if not specs:
        return arrangement
    resolved = plan_arrangement(arrangement, specs, tempo=tempo, sections=sections)
    grid = bar_grid(arrangement)
    segments = _segments(resolved, grid)
    return _build(arrangement, segments, grid)


def _segments(items: list[ArrangedItem], grid: BarGrid) -> list[tuple[int, int]]:
    """Tick ranges [start, stop) played in order; an item continuing the one before joins it."""
    segments: list[tuple[int, int]] = []
    for item in items:
        start = int(grid.start_tick[item.first_bar - 1])
        stop = int(grid.end_tick[item.last_bar - 1])
        for _ in range(item.repeats):
            if segments and segments[-1][1] == start:
                segments[-1] = (segments[-1][0], stop)
            else:
                segments.append((start, stop))
    return segments


@dataclass
class _Chase:
    """Per-channel state lookups: what is in force just before a tick."""

    controllers: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, int]]  # (ch, cc) -> ticks, values, track
    programs: dict[int, tuple[np.ndarray, np.ndarray, int]]
    bends: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, int]]  # ticks, lsb, msb
    pressure: dict[int, tuple[np.ndarray, np.ndarray, int]]
    parameters: dict[tuple[int, int, int, int], list[tuple[int, int, int]]]  # (ch, kind, msb, lsb) -> data
    parameter_track: dict[int, int]


def _chase_tables(arrangement: Arrangement) -> _Chase:
    raw = arrangement.raw
    status = raw.status.astype(np.int64)
    kinds = status & 0xF0
    channels = status & 0x0F
    channel_event = status < 0xF0
    controllers: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, int]] = {}
    cc = channel_event & (kinds == 0xB0)
    for channel in np.unique(channels[cc]).tolist():
        mine = cc & (channels == channel)
        for number in np.unique(raw.d1[mine]).tolist():
            if number in _NOT_CHASED:
                continue
            at = mine & (raw.d1 == number)
            controllers[(channel, number)] = (raw.tick[at], raw.d2[at], int(raw.track[at][0]))
    programs = {}
    pc = channel_event & (kinds == 0xC0)
    for channel in np.unique(channels[pc]).tolist():
        at = pc & (channels == channel)
        programs[channel] = (raw.tick[at], raw.d1[at], int(raw.track[at][0]))
    bends = {}
    pb = channel_event & (kinds == 0xE0)
    for channel in np.unique(channels[pb]).tolist():
        at = pb & (channels == channel)
        bends[channel] = (raw.tick[at], raw.d1[at], raw.d2[at], int(raw.track[at][0]))
    pressure = {}
    cp = channel_event & (kinds == 0xD0)
    for channel in np.unique(channels[cp]).tolist():
        at = cp & (channels == channel)
        pressure[channel] = (raw.tick[at], raw.d1[at], int(raw.track[at][0]))
    # RPN/NRPN: data entry belongs to the parameter selected when it is sent.
    parameters: dict[tuple[int, int, int, int], list[tuple[int, int, int]]] = {}
    parameter_track: dict[int, int] = {}
    select = cc & np.isin(raw.d1, (*_PARAMETER_SELECT, *_DATA_ENTRY))
    selected: dict[int, list[int]] = {}  # channel -> [kind (0 rpn, 1 nrpn), msb, lsb]
    for tick, channel, number, value, track in zip(
        raw.tick[select].tolist(),
        channels[select].tolist(),
        raw.d1[select].tolist(),
        raw.d2[select].tolist(),
        raw.track[select].tolist(),
        strict=True,
    ):
        state = selected.setdefault(channel, [0, 127, 127])
        parameter_track.setdefault(channel, track)
        if number in (101, 100):
            state[0] = 0
            state[1 if number == 101 else 2] = value
        elif number in (99, 98):
            state[0] = 1
            state[1 if number == 99 else 2] = value
        elif state[1] != 127 or state[2] != 127:
            parameters.setdefault((channel, state[0], state[1], state[2]), []).append((tick, number, value))
    return _Chase(controllers, programs, bends, pressure, parameters, parameter_track)


def _last_before(ticks: np.ndarray, tick: int) -> int:
    return int(np.searchsorted(ticks, tick, side="left")) - 1


def _chase_events(chase: _Chase, tick: int) -> list[tuple[int, int, int, int]]:
    """(track, status, d1, d2) restoring the state in force just before ``tick``."""
    events: list[tuple[int, int, int, int]] = []
    for channel, (ticks, values, track) in sorted(chase.programs.items()):
        index = max(_last_before(ticks, tick), 0)  # before its first change: the instrument it gets
        for bank in (0, 32):
            entry = chase.controllers.get((channel, bank))
            if entry is not None:
                at = _last_before(entry[0], tick)
                events.append((entry[2], 0xB0 | channel, bank, int(entry[1][at]) if at >= 0 else 0))
        events.append((track, 0xC0 | channel, int(values[index]), 0))
    for (channel, number), (ticks, values, track) in sorted(chase.controllers.items()):
        if number in (0, 32) and channel in chase.programs:
            continue
        at = _last_before(ticks, tick)
        value = int(values[at]) if at >= 0 else _CC_DEFAULTS.get(number, 0)
        events.append((track, 0xB0 | channel, number, value))
    for (channel, kind, msb, lsb), data in sorted(chase.parameters.items()):
        sent = [entry for entry in data if entry[0] < tick]
        if not sent:
            continue
        track = chase.parameter_track[channel]
        events.append((track, 0xB0 | channel, 101 if kind == 0 else 99, msb))
        events.append((track, 0xB0 | channel, 100 if kind == 0 else 98, lsb))
        for number in _DATA_ENTRY:
            entries = [value for _, n, value in sent if n == number]
            if entries:
                events.append((track, 0xB0 | channel, number, entries[-1]))
    for channel in sorted({key[0] for key in chase.parameters}):
        # Deselect afterwards (the null parameter), so no later data entry lands on a chased one.
        track = chase.parameter_track[channel]
        events.append((track, 0xB0 | channel, 101, 127))
        events.append((track, 0xB0 | channel, 100, 127))
    for channel, (ticks, bend_lsb, bend_msb, track) in sorted(chase.bends.items()):
        at = _last_before(ticks, tick)
        events.append(
            (track, 0xE0 | channel, int(bend_lsb[at]) if at >= 0 else 0, int(bend_msb[at]) if at >= 0 else 64)
        )
    for channel, (ticks, values, track) in sorted(chase.pressure.items()):
        at = _last_before(ticks, tick)
        events.append((track, 0xD0 | channel, int(values[at]) if at >= 0 else 0, 0))
    return events


def _note_table(arrangement: Arrangement) -> dict[str, np.ndarray]:
    """Every note as tick ranges with the indices of its on and off events (-1: never released)."""
    raw = arrangement.raw
    status = raw.status
    kinds = status & 0xF0
    is_note = (status < 0xF0) & ((kinds == 0x80) | (kinds == 0x90))
    positions = np.flatnonzero(is_note)
    keys = (raw.track[positions].astype(np.int64) * 16 + (status[positions] & 0x0F)) * 128 + raw.d1[positions]
    open_notes: dict[int, list[int]] = {}
    ons: list[int] = []
    offs: list[int] = []
    for position, key, kind, velocity in zip(
        positions.tolist(), keys.tolist(), kinds[positions].tolist(), raw.d2[positions].tolist(), strict=True
    ):
        if kind == 0x90 and velocity:
            open_notes.setdefault(key, []).append(position)
        else:
            stack = open_notes.get(key)
            if stack:
                ons.append(stack.pop(0))
                offs.append(position)
    for stack in open_notes.values():
        for position in stack:
            ons.append(position)
            offs.append(-1)
    on = np.asarray(ons, dtype=np.int64)
    off = np.asarray(offs, dtype=np.int64)
    on_tick = raw.tick[on]
    off_tick = np.where(
        off >= 0, raw.tick[np.maximum(off, 0)], max(arrangement.end_tick, int(raw.tick.max()))
    )
    return {"on": on, "off": off, "on_tick": on_tick, "off_tick": np.maximum(off_tick, on_tick)}


def _in_force(changes: list[tuple[int, Any]], tick: int, default: tuple[Any, ...] | None) -> list[Any]:
    """The change in force at ``tick`` (the last at or before it; else the file's default)."""
    before = [change for change in changes if change[0] <= tick]
    if before:
        return before[-1:]
    return [(0, *default)] if default is not None else []


def _build(arrangement: Arrangement, segments: list[tuple[int, int]], grid: BarGrid) -> Arrangement:
    raw = arrangement.raw
    status = raw.status
    kinds = status & 0xF0
    is_note = (status < 0xF0) & ((kinds == 0x80) | (kinds == 0x90))
    other = np.flatnonzero(~is_note)
    other_tick = raw.tick[other]
    notes = _note_table(arrangement)
    note_channel = (status[notes["on"]] & 0x0F).astype(np.int64)
    drum = note_channel == 9
    chase = _chase_tables(arrangement)
    pedal = chase.controllers

    # Columns of the output: tick, segment, class (0 chase / 1 file order / 2 cut), order, track,
    # status, d1, d2.
    columns: list[list[np.ndarray]] = [[] for _ in range(8)]

    def add(
        tick: np.ndarray,
        segment: int,
        klass: int,
        order: np.ndarray,
        track: np.ndarray,
        out_status: np.ndarray,
        d1: np.ndarray,
        d2: np.ndarray,
    ) -> None:
        size = tick.size
        for column, values in zip(
            columns,
            (tick, np.full(size, segment), np.full(size, klass), order, track, out_status, d1, d2),
            strict=True,
        ):
            column.append(np.asarray(values, dtype=np.int64))

    tempos: list[tuple[int, int]] = []
    meters: list[tuple[int, int, int]] = []
    key_signatures: list[tuple[int, int, int]] = []
    markers: list[tuple[int, str]] = []
    offset = 0
    previous_stop: int | None = None
    for number, (start, stop) in enumerate(segments):
        jumped = previous_stop != start if previous_stop is not None else start != 0
        if jumped:
            chased = _chase_events(chase, start)
            if chased:
                table = np.asarray(chased, dtype=np.int64)
                add(
                    np.full(len(chased), offset),
                    number,
                    0,
                    np.arange(len(chased)),
                    table[:, 0],
                    table[:, 1],
                    table[:, 2],
                    table[:, 3],
                )
        # Everything but notes, in file order.
        inside = other[(other_tick >= start) & (other_tick < stop)]
        add(
            raw.tick[inside] - start + offset,
            number,
            1,
            inside,
            raw.track[inside],
            status[inside],
            raw.d1[inside],
            raw.d2[inside],
        )
        # Notes: those starting inside, and (but drum hits) those held into the start.
        starts_inside = (notes["on_tick"] >= start) & (notes["on_tick"] < stop)
        held_in = (notes["on_tick"] < start) & (notes["off_tick"] > start) & ~drum
        chosen = np.flatnonzero(starts_inside | held_in)
        on_index = notes["on"][chosen]
        on_tick = np.maximum(notes["on_tick"][chosen], start)
        held = notes["on_tick"][chosen] < start
        add(
            on_tick - start + offset,
            number,
            0,
            np.where(held, 1_000_000 + on_index, on_index),
            raw.track[on_index],
            status[on_index],
            raw.d1[on_index],
            raw.d2[on_index],
        )
        # Held notes restart after the chase (class 0, ordered after it); the rest keep file order.
        columns[2][-1] = np.where(held, 0, 1)
        off_index = notes["off"][chosen]
        off_tick = notes["off_tick"][chosen]
        cut = (off_tick > stop) | (off_index < 0)
        add(
            np.minimum(off_tick, stop) - start + offset,
            number,
            1,
            np.where(cut, on_index, off_index),
            raw.track[on_index],
            0x80 | note_channel[chosen],
            raw.d1[on_index],
            np.zeros(chosen.size),
        )
        columns[2][-1] = np.where(cut, 2, 1)
        # A sustain pedal down at the cut is lifted there, so no note of this item hangs on.
        lifts = []
        for (channel, controller), (ticks, values, track) in pedal.items():
            if controller != _SUSTAIN:
                continue
            at = _last_before(ticks, stop)
            if (
                at >= 0
                and values[at] >= 64
                and (number + 1 == len(segments) or segments[number + 1][0] != stop)
            ):
                lifts.append((track, 0xB0 | channel, _SUSTAIN, 0))
        if lifts:
            table = np.asarray(lifts, dtype=np.int64)
            add(
                np.full(len(lifts), stop - start + offset),
                number,
                2,
                np.arange(len(lifts)) + 2_000_000_000,
                table[:, 0],
                table[:, 1],
                table[:, 2],
                table[:, 3],
            )
        # Tempo, meter, key and markers: the one in force at the start, then those inside.
        for source, target, default in (
            (raw.tempos, tempos, (DEFAULT_TEMPO,)),
            (raw.time_signatures, meters, (4, 4)),
            (raw.key_signatures, key_signatures, None),
        ):
            changes: list[Any] = list(source)
            if jumped or number == 0:
                for change in _in_force(changes, start, default):
                    target.append((offset, *change[1:]))
            target.extend((tick - start + offset, *rest) for tick, *rest in changes if start < tick < stop)
        markers.extend((tick - start + offset, text) for tick, text in raw.markers if start <= tick < stop)
        offset += stop - start
        previous_stop = stop

    out_tick, segment, klass, order, out_track, out_status, d1, d2 = (
        np.concatenate(column) for column in columns
    )
    sort = np.lexsort((order, klass, segment, out_tick))
    new_raw = replace(
        raw,
        tick=out_tick[sort],
        track=out_track[sort].astype(np.int16),
        status=out_status[sort].astype(np.uint8),
        d1=d1[sort].astype(np.int32),
        d2=d2[sort].astype(np.int16),
        tempos=tempos,
        time_signatures=meters,
        key_signatures=key_signatures,
        markers=markers,
        cue_points=[],
        end_tick=offset,
        note_count=int(((out_status & 0xF0) == 0x90).sum()),
    )
    return _rebuild(arrangement, new_raw, offset)


def _rebuild(arrangement: Arrangement, raw: "RawMidi", end_tick: int) -> Arrangement:
    """An Arrangement over ``raw`` with the original's parts (so part indices keep their meaning)."""
    tempo_map = TempoMap.build(raw.ticks_per_beat, raw.tempos)
    status = raw.status
    kinds = status & 0xF0
    channels = status & 0x0F
    is_channel = status < 0xF0
    lookup = np.full(64 * 16, -1, dtype=np.int32)
    for part in arrangement.parts:
        lookup[part.track * 16 + part.channel] = part.index
    pair_key = raw.track.astype(np.int64) * 16 + channels
    note_like = is_channel & ((kinds == 0x80) | (kinds == 0x90) | (kinds == 0xA0))
    event_part = np.where(note_like, lookup[pair_key], -1).astype(np.int32)
    event_seconds = tempo_map.to_seconds(raw.tick)
    notes = _pair_notes(raw, kinds, channels, event_part, event_seconds)
    return Arrangement(
        data=arrangement.data,
        raw=raw,
        tempo_map=tempo_map,
        parts=arrangement.parts,
        notes=notes,
        event_part=event_part,
        event_seconds=event_seconds,
        end_tick=end_tick,
        end_s=tempo_map.second_at(end_tick),
        analysis=dict(arrangement.analysis),
        lead_trim_bars=arrangement.lead_trim_bars,
        lead_trim_ticks=arrangement.lead_trim_ticks,
    )


def arranged_song(arrangement: Arrangement, items: object, *, tempo: float = 1.0) -> Arrangement:
    """What a render with the ``arrangement`` setting plays: the song arranged once (an already
    arranged song is returned as it is). Its analysis names the arranged sections, in order and in
    bars of the arranged song, and keeps the original's under ``original_sections``."""
    specs = parse_arrangement(items)
    if not specs or arrangement.analysis.get("arranged"):
        return arrangement
    resolved = plan_arrangement(arrangement, specs, tempo=tempo)
    grid = bar_grid(arrangement)
    result = _build(arrangement, _segments(resolved, grid), grid)
    sections: list[dict[str, Any]] = []
    bar = 1
    seconds = 0.0
    for item in resolved:
        length_s = float(grid.end_s[item.last_bar - 1] - grid.start_s[item.first_bar - 1])
        for _ in range(item.repeats):
            bars = item.last_bar - item.first_bar + 1
            sections.append(
                {
                    "index": len(sections),
                    "name": item.label,
                    "start_bar": bar,
                    "end_bar": bar + bars - 1,
                    "start_s": round(seconds, 3),
                    "end_s": round(seconds + length_s, 3),
                    "source": "arrangement",
                    "original_start_bar": item.first_bar,
                }
            )
            bar += bars
            seconds += length_s
    result.analysis.update(
        arranged=[spec.text for spec in specs],
        original_sections=arrangement.analysis.get("sections", []),
        sections=sections,
        bars=bar - 1,
        duration_s=round(result.end_s, 2),
    )
    return result


class ArrangedTimeline:
    """Seconds of an arranged render <-> bars of the original song (for comments pinned to a bar).

    Built from the song's :class:`~tracks.engine.timeline.Timeline` and the resolved items; a bar that
    plays several times in the arrangement has several render times.
    """

    def __init__(self, timeline: Timeline, items: list[ArrangedItem]) -> None:
        self.timeline = timeline
        self.pieces: list[tuple[float, float, float, ArrangedItem]] = []  # offset, start, stop (original s)
        offset = 0.0
        for item in items:
            start = timeline.seconds_at(item.first_bar, 1.0)
            stop = timeline.seconds_at(item.last_bar + 1, 1.0)
            for _ in range(item.repeats):
                self.pieces.append((offset, start, stop, item))
                offset += stop - start
        self.length_s = offset

    def count_in_s(self, count_in_bars: int, tempo_ratio: float) -> float:
        """The count-in plays bars of the first item's first bar."""
        if not self.pieces or not count_in_bars:
            return 0.0
        first = self.pieces[0][3].first_bar
        bar_s = self.timeline.seconds_at(first + 1, 1.0) - self.timeline.seconds_at(first, 1.0)
        return count_in_bars * bar_s / tempo_ratio

    def seconds_at(
        self, bar: int, beat: float, *, tempo_ratio: float = 1.0, count_in_bars: int = 0
    ) -> list[float]:
        """Every render time where the original (bar, beat) plays, in order (empty: it is cut)."""
        original = self.timeline.seconds_at(bar, beat)
        count_in = self.count_in_s(count_in_bars, tempo_ratio)
        return [
            count_in + (offset + original - start) / tempo_ratio
            for offset, start, stop, item in self.pieces
            if item.first_bar <= bar <= item.last_bar and start - 1e-9 <= original < stop
        ]

    def position_at(
        self, seconds: float, *, tempo_ratio: float = 1.0, count_in_bars: int = 0
    ) -> tuple[int, float]:
        """The original (bar, beat) playing at ``seconds`` of the arranged render."""
        arranged = (seconds - self.count_in_s(count_in_bars, tempo_ratio)) * tempo_ratio
        if not self.pieces:
            return self.timeline.position_at(arranged)
        chosen = self.pieces[0]
        for piece in self.pieces:
            if piece[0] <= arranged + 1e-9:
                chosen = piece
        offset, start, stop, _item = chosen
        original = start + min(arranged - offset, stop - start - 1e-6)
        return self.timeline.position_at(original)


def arranged_timeline(
    analysis: dict[str, Any], items: object, *, sections: list[dict[str, Any]] | None = None
) -> ArrangedTimeline:
    """The ArrangedTimeline of a song known by its analysis (and the producer's sections, if any)."""
    specs = parse_arrangement(items)
    bars = int(analysis.get("bars") or 0)
    resolved = resolve_arrangement(
        specs, sections if sections is not None else analysis.get("sections", []), bars
    )
    return ArrangedTimeline(Timeline.from_analysis(analysis), resolved)


def check_arrangement(
    analysis: dict[str, Any],
    items: object,
    *,
    tempo: float = 1.0,
    sections: list[dict[str, Any]] | None = None,
) -> None:
    """Refuse (InvalidSettings) an arrangement the song cannot give, from its analysis alone:
    unknown names, bar ranges outside the song, more than 20 minutes at ``tempo``."""
    timeline = arranged_timeline(analysis, items, sections=sections)
    seconds = timeline.length_s / (tempo if tempo > 0 else 1.0)
    if seconds > MAX_ARRANGED_S:
        raise InvalidSettings(
            f"the arranged song would last {seconds / 60:.1f} minutes at this tempo; "
            f"the limit is {MAX_ARRANGED_S // 60} minutes"
        )
