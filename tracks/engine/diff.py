"""What changed between two revisions of an arrangement, in bars and parts, computed from the notes.

Notes are compared in musical time (bar, position in the bar in quarter notes, length in quarters),
not in seconds, so a revision that only changes the tempo leaves every part "same" and reports
``tempo_changed``. Parts are matched by name, then by (program, drum, channel), then by (program,
drum), so a part that was only renamed is "same" (or "changed"), never "added" plus "removed".
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .analyse import bar_starts, estimate_key

if TYPE_CHECKING:
    from .arrangement import Arrangement, Part

# Onsets compared on a grid of 1/48 quarter note (covers triplets of 32nds), lengths on 1/12 quarter
# (a re-export that nudges note-offs by a tick is not a change), velocities in steps of 8 of 127.
_ONSET_GRID = 48
_LENGTH_GRID = 12
_VELOCITY_STEP = 8

BarContent = dict[int, tuple[tuple[int, int, int, int], ...]]  # 0-based bar -> its notes


@dataclass(frozen=True)
class PartDiff:
    name: str
    status: str  # "added", "removed", "changed" or "same"
    changed_bars: list[list[int]] = field(default_factory=list)  # inclusive 1-based [first, last] ranges
    renamed_from: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "status": self.status, "changed_bars": self.changed_bars}
        if self.renamed_from is not None:
            data["renamed_from"] = self.renamed_from
        return data


@dataclass(frozen=True)
class RevisionDiff:
    tempo_changed: bool
    key_changed: bool
    bars_before: int
    bars_after: int
    parts: list[PartDiff]

    def to_dict(self) -> dict[str, Any]:
        return {
            "tempo_changed": self.tempo_changed,
            "key_changed": self.key_changed,
            "bars_before": self.bars_before,
            "bars_after": self.bars_after,
            "parts": [part.to_dict() for part in self.parts],
        }


def _end_ticks(arrangement: Arrangement) -> np.ndarray:
    """Ticks of each note's end (the inverse of the tempo map at its end in seconds)."""
    tempo_map = arrangement.tempo_map
    seconds = arrangement.notes.end
    index = np.maximum(np.searchsorted(tempo_map.seconds, seconds, side="right") - 1, 0)
    beats = (seconds - tempo_map.seconds[index]) * 1e6 / tempo_map.tempos[index]
    return tempo_map.ticks[index] + np.round(beats * tempo_map.ticks_per_beat).astype(np.int64)


def bar_contents(arrangement: Arrangement) -> tuple[int, dict[int, BarContent]]:
    """The number of bars and, per part index, per 0-based bar, the notes in it as sorted tuples of
    (onset in 1/48 quarters from the bar line, pitch, length in 1/12 quarters, velocity step)."""
    bars = bar_starts(arrangement)
    notes = arrangement.notes
    tpb = arrangement.ticks_per_beat
    starts = notes.start_tick
    if starts is None:  # older callers: recompute ticks from seconds
        starts = np.round(np.interp(notes.start, arrangement.tempo_map.seconds, arrangement.tempo_map.ticks))
    starts = np.asarray(starts, dtype=np.int64)
    bar_index = np.maximum(np.searchsorted(bars, starts, side="right") - 1, 0)
    onset = np.round((starts - bars[bar_index]) * _ONSET_GRID / tpb).astype(np.int64)
    length = np.round((_end_ticks(arrangement) - starts) * _LENGTH_GRID / tpb).astype(np.int64)
    velocity = notes.velocity.astype(np.int64) // _VELOCITY_STEP
    grouped: dict[int, dict[int, list[tuple[int, int, int, int]]]] = defaultdict(lambda: defaultdict(list))
    for part, bar, on, pitch, dur, vel in zip(
        notes.part.tolist(),
        bar_index.tolist(),
        onset.tolist(),
        notes.pitch.tolist(),
        length.tolist(),
        velocity.tolist(),
        strict=True,
    ):
        grouped[part][bar].append((on, pitch, dur, vel))
    contents = {
        part: {bar: tuple(sorted(items)) for bar, items in by_bar.items()} for part, by_bar in grouped.items()
    }
    bar_count = max(len(bars), max((bar + 1 for by_bar in contents.values() for bar in by_bar), default=0))
    return bar_count, contents


def _ranges(bars: list[int]) -> list[list[int]]:
    """0-based bar indexes -> inclusive 1-based ranges: [16, 17, …, 23] -> [[17, 24]]."""
    ranges: list[list[int]] = []
    for bar in sorted(set(bars)):
        if ranges and bar + 1 == ranges[-1][1] + 1:
            ranges[-1][1] = bar + 1
        else:
            ranges.append([bar + 1, bar + 1])
    return ranges


def match_parts(before: list[Part], after: list[Part]) -> list[tuple[Part | None, Part | None]]:
    """Pairs (before, after) in the order of ``after`` (then the removed parts); None for no partner."""
    pairs: dict[int, int] = {}  # after index -> before index
    free_before = {part.index: part for part in before}

    def take(key_of: Any) -> None:
        candidates: dict[Any, list[Part]] = defaultdict(list)
        for part in free_before.values():
            candidates[key_of(part)].append(part)
        for part in after:
            if part.index in pairs:
                continue
            found = candidates.get(key_of(part))
            if found:
                partner = found.pop(0)
                pairs[part.index] = partner.index
                del free_before[partner.index]

    take(lambda part: part.name.strip().casefold() or f"#unnamed-{part.index}")
    take(lambda part: (part.program, part.is_drum, part.channel))
    take(lambda part: (part.program, part.is_drum))
    by_index = {part.index: part for part in before}
    matched: list[tuple[Part | None, Part | None]] = [
        (by_index[pairs[part.index]] if part.index in pairs else None, part) for part in after
    ]
    matched.extend((part, None) for part in before if part.index in free_before)
    return matched


def _tempo_points(arrangement: Arrangement) -> list[tuple[float, float]]:
    tempo_map = arrangement.tempo_map
    inside = tempo_map.ticks <= arrangement.end_tick
    return [
        (round(float(tick) / tempo_map.ticks_per_beat, 3), round(60e6 / float(tempo), 2))
        for tick, tempo in zip(tempo_map.ticks[inside], tempo_map.tempos[inside], strict=True)
    ]


def _key(arrangement: Arrangement) -> str:
    return str(arrangement.analysis.get("key") or estimate_key(arrangement))


def diff_arrangements(before: Arrangement | None, after: Arrangement) -> RevisionDiff:
    """Per part: added / removed / changed / same, with the bar ranges that changed (1-based,
    inclusive); and whether the tempo (map), the key or the length in bars changed. ``before`` None
    (a first revision): every part is added."""
    bars_after, contents_after = bar_contents(after)
    if before is None:
        parts = [
            PartDiff(part.name, "added", _ranges(list(contents_after.get(part.index, {}))))
            for part in after.parts
        ]
        return RevisionDiff(False, False, 0, bars_after, parts)
    bars_before, contents_before = bar_contents(before)
    result: list[PartDiff] = []
    for old, new in match_parts(before.parts, after.parts):
        if old is None or new is None:
            part, contents, status = (
                (new, contents_after, "added") if old is None else (old, contents_before, "removed")
            )
            if part is not None:
                result.append(PartDiff(part.name, status, _ranges(list(contents.get(part.index, {})))))
            continue
        old_bars = contents_before.get(old.index, {})
        new_bars = contents_after.get(new.index, {})
        changed = [bar for bar in set(old_bars) | set(new_bars) if old_bars.get(bar) != new_bars.get(bar)]
        if (old.program, old.is_drum) != (new.program, new.is_drum):
            changed = list(set(old_bars) | set(new_bars))  # another instrument: every bar it plays sounds new
        renamed = old.name if old.name != new.name else None
        result.append(PartDiff(new.name, "changed" if changed else "same", _ranges(changed), renamed))
    return RevisionDiff(
        tempo_changed=_tempo_points(before) != _tempo_points(after),
        key_changed=_key(before) != _key(after),
        bars_before=bars_before,
        bars_after=bars_after,
        parts=result,
    )
