"""Tick <-> seconds conversion through a MIDI tempo map.

Kept separate because analysis, transform, click generation and the timeline all need the same
exact mapping; a tempo ratio scales the map itself, so every derived time scales exactly.
"""

from dataclasses import dataclass

import numpy as np

DEFAULT_TEMPO = 500_000  # microseconds per beat: 120 bpm, the SMF default


@dataclass(frozen=True)
class TempoMap:
    ticks_per_beat: int
    ticks: np.ndarray  # int64, strictly increasing, first is 0
    tempos: np.ndarray  # float64 microseconds per quarter note in force from ``ticks[i]``
    seconds: np.ndarray  # float64 time of ``ticks[i]``

    @classmethod
    def build(cls, ticks_per_beat: int, changes: list[tuple[int, int]]) -> "TempoMap":
        points: dict[int, int] = {0: DEFAULT_TEMPO}
        for tick, tempo in changes:
            points[tick] = tempo  # several changes on one tick: the last one wins
        ordered = sorted(points.items())
        # Drop changes that repeat the tempo in force: they carry no information.
        ticks = [ordered[0][0]]
        tempos = [ordered[0][1]]
        for tick, tempo in ordered[1:]:
            if tempo != tempos[-1]:
                ticks.append(tick)
                tempos.append(tempo)
        tick_array = np.asarray(ticks, dtype=np.int64)
        tempo_array = np.asarray(tempos, dtype=np.float64)
        spans = np.diff(tick_array) * tempo_array[:-1] / (1e6 * ticks_per_beat)
        seconds = np.concatenate(([0.0], np.cumsum(spans)))
        return cls(ticks_per_beat, tick_array, tempo_array, seconds)

    def to_seconds(self, ticks: np.ndarray | int) -> np.ndarray:
        """Seconds at the given ticks (vectorised)."""
        values = np.asarray(ticks, dtype=np.int64)
        index = np.searchsorted(self.ticks, values, side="right") - 1
        return self.seconds[index] + (values - self.ticks[index]) * self.tempos[index] / (
            1e6 * self.ticks_per_beat
        )

    def second_at(self, tick: int) -> float:
        return float(self.to_seconds(np.asarray([tick]))[0])

    def bpm_at(self, tick: int) -> float:
        index = int(np.searchsorted(self.ticks, tick, side="right") - 1)
        return 60e6 / float(self.tempos[index])
