"""Bars and beats <-> seconds in a render, for comments pinned to a moment of the music.

A comment written against one render (say 0.8x with a two-bar count-in) must point at the same bar
in every other render, so positions are stored musically (bar, beat) and converted with the song's
own tempo and meter maps, the tempo ratio and the count-in.
"""

import bisect
import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class _Segment:
    start_s: float  # original-tempo seconds where this tempo starts
    start_q: float  # quarter notes from the start of the song
    bpm: float


@dataclass(frozen=True)
class _Meter:
    start_q: float
    first_bar: int
    numerator: int
    denominator: int

    @property
    def bar_quarters(self) -> float:
        return self.numerator * 4.0 / self.denominator

    @property
    def beat_quarters(self) -> float:
        return 4.0 / self.denominator


class Timeline:
    def __init__(self, tempos: list[tuple[float, float]], meters: list[tuple[float, int, int]]) -> None:
        tempos = sorted(tempos) or [(0.0, 120.0)]
        if tempos[0][0] > 0:
            tempos.insert(0, (0.0, tempos[0][1]))
        segments: list[_Segment] = []
        quarters = 0.0
        for index, (start, bpm) in enumerate(tempos):
            if index:
                previous = segments[-1]
                quarters = previous.start_q + (start - previous.start_s) * previous.bpm / 60.0
            segments.append(_Segment(start, quarters, bpm))
        self._segments = segments
        self._segment_starts = [segment.start_s for segment in segments]
        self._segment_quarters = [segment.start_q for segment in segments]

        meters = sorted(meters) or [(0.0, 4, 4)]
        if meters[0][0] > 0:
            meters.insert(0, (0.0, 4, 4))
        built: list[_Meter] = []
        for start_s, numerator, denominator in meters:
            start_q = self._quarters_at(start_s)
            if built:
                last = built[-1]
                bars = math.ceil((start_q - last.start_q) / last.bar_quarters - 1e-9)
                first_bar = last.first_bar + max(bars, 0)
            else:
                first_bar = 1
            if built and abs(built[-1].start_q - start_q) < 1e-9:
                built[-1] = _Meter(start_q, built[-1].first_bar, numerator, denominator)
            else:
                built.append(_Meter(start_q, first_bar, numerator, denominator))
        self._meters = built

    @classmethod
    def from_analysis(cls, analysis: dict[str, Any]) -> "Timeline":
        timeline = analysis.get("timeline") or {}
        tempos = [
            (float(s), float(bpm))
            for s, bpm in timeline.get("tempos") or [[0.0, analysis.get("tempo_bpm", 120.0)]]
        ]
        meters = [(float(s), int(n), int(d)) for s, n, d in timeline.get("time_signatures") or [[0.0, 4, 4]]]
        return cls(tempos, meters)

    def _quarters_at(self, seconds: float) -> float:
        index = max(0, bisect.bisect_right(self._segment_starts, seconds) - 1)
        segment = self._segments[index]
        return segment.start_q + (seconds - segment.start_s) * segment.bpm / 60.0

    def _seconds_at_quarters(self, quarters: float) -> float:
        index = max(0, bisect.bisect_right(self._segment_quarters, quarters) - 1)
        segment = self._segments[index]
        return segment.start_s + (quarters - segment.start_q) * 60.0 / segment.bpm

    def _count_in_s(self, count_in_bars: int, tempo_ratio: float) -> float:
        first = self._meters[0]
        return count_in_bars * first.bar_quarters * 60.0 / self._segments[0].bpm / tempo_ratio

    def position_at(
        self, seconds: float, *, tempo_ratio: float = 1.0, count_in_bars: int = 0
    ) -> tuple[int, float]:
        """(bar, beat) at ``seconds`` of a render; bar 1 beat 1.0 is the song's first downbeat."""
        original = (seconds - self._count_in_s(count_in_bars, tempo_ratio)) * tempo_ratio
        if original < 0:
            first = self._meters[0]
            quarters = original * self._segments[0].bpm / 60.0
            bars = math.floor(quarters / first.bar_quarters)
            beat = (quarters - bars * first.bar_quarters) / first.beat_quarters + 1.0
            return 1 + bars, round(beat, 6)
        quarters = self._quarters_at(original)
        meter = self._meters[
            max(0, bisect.bisect_right([m.start_q for m in self._meters], quarters + 1e-9) - 1)
        ]
        offset = quarters - meter.start_q
        bars = math.floor(offset / meter.bar_quarters + 1e-9)
        beat = (offset - bars * meter.bar_quarters) / meter.beat_quarters + 1.0
        return meter.first_bar + bars, round(beat, 6)

    def seconds_at(self, bar: int, beat: float, *, tempo_ratio: float = 1.0, count_in_bars: int = 0) -> float:
        """Render seconds of (bar, beat): the exact inverse of ``position_at``."""
        count_in = self._count_in_s(count_in_bars, tempo_ratio)
        if bar < 1:
            first = self._meters[0]
            quarters = (bar - 1) * first.bar_quarters + (beat - 1.0) * first.beat_quarters
            return count_in + quarters * 60.0 / self._segments[0].bpm / tempo_ratio
        meter = self._meters[0]
        for candidate in self._meters:
            if candidate.first_bar <= bar:
                meter = candidate
        quarters = (
            meter.start_q + (bar - meter.first_bar) * meter.bar_quarters + (beat - 1.0) * meter.beat_quarters
        )
        return count_in + self._seconds_at_quarters(quarters) / tempo_ratio
