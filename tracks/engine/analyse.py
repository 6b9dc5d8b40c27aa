"""What a producer and a singer want to know about an arrangement, as a JSON-able dict.

The dict is stored on the revision and drives key suggestions and the timeline, so it carries the
melody's pitch histogram and the tempo/meter maps, not only the headline numbers.
"""

import re
from typing import TYPE_CHECKING, Any

import numpy as np

from .notes import key_name, note_name

if TYPE_CHECKING:
    from .arrangement import Arrangement

# Krumhansl-Kessler key profiles (probe-tone ratings), tonic first.
_MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
_MELODY_NAME = re.compile(r"melod|vocal|lead|guide|voice|vox|sing", re.IGNORECASE)
_MONOPHONIC_SHARE = 0.8
_LEGATO_S = 0.05  # overlaps shorter than this are legato playing, not chords


def analyse(arrangement: "Arrangement") -> dict[str, Any]:
    """The analysis dict described in the engine contract."""
    tempo_map = arrangement.tempo_map
    raw = arrangement.raw
    end_s = arrangement.end_s
    inside = tempo_map.ticks <= arrangement.end_tick
    change_seconds = tempo_map.seconds[inside]
    change_bpm = 60e6 / tempo_map.tempos[inside]
    spans = np.diff(np.append(change_seconds, max(end_s, float(change_seconds[-1]))))
    main_bpm = _longest_lasting(change_bpm, spans)

    signatures = [(tick, num, den) for tick, num, den in raw.time_signatures if tick <= arrangement.end_tick]
    first_signature = next(((num, den) for tick, num, den in signatures if tick == 0), (4, 4))
    key, key_source = _key(arrangement)
    melody = _melody_part(arrangement)

    parts = []
    for part in arrangement.parts:
        parts.append(
            {
                "index": part.index,
                "name": part.name,
                "channel": part.channel,
                "program": part.program,
                "instrument": part.instrument,
                "is_drum": part.is_drum,
                "role": "lead" if part.index == melody else part.family_role,
                "notes": part.notes,
                "low": note_name(part.low),
                "high": note_name(part.high),
            }
        )
    return {
        "duration_s": round(end_s, 2),
        "tempo_bpm": round(main_bpm, 2),
        "tempo_changes": bool(len(np.unique(np.round(change_bpm, 3))) > 1),
        "key": key,
        "key_source": key_source,
        "time_signature": f"{first_signature[0]}/{first_signature[1]}",
        "ticks_per_beat": raw.ticks_per_beat,
        "parts": parts,
        "melody_part": melody,
        "melody_histogram": _melody_histogram(arrangement, melody),
        "timeline": {
            "tempos": [
                [round(float(s), 4), round(float(b), 4)]
                for s, b in zip(change_seconds, change_bpm, strict=True)
            ],
            "time_signatures": [
                [round(tempo_map.second_at(tick), 4), num, den] for tick, num, den in signatures
            ]
            or [[0.0, 4, 4]],
            "end_s": round(end_s, 4),
        },
    }


def _longest_lasting(values: np.ndarray, spans: np.ndarray) -> float:
    totals: dict[float, float] = {}
    for value, span in zip(np.round(values, 2).tolist(), spans.tolist(), strict=True):
        totals[value] = totals.get(value, 0.0) + span
    return max(totals.items(), key=lambda item: item[1])[0]


def _key(arrangement: "Arrangement") -> tuple[str, str]:
    signatures = arrangement.raw.key_signatures
    if signatures:
        _, sharps, minor = signatures[0]
        major_tonic = (sharps * 7) % 12
        return (
            (key_name((major_tonic + 9) % 12, "minor"), "signature")
            if minor
            else (
                key_name(major_tonic, "major"),
                "signature",
            )
        )
    return estimate_key(arrangement), "estimated"


def estimate_key(arrangement: "Arrangement") -> str:
    """Krumhansl-Schmuckler: correlate the duration-weighted pitch-class histogram with 24 profiles."""
    notes = arrangement.notes
    pitched = np.array([not part.is_drum for part in arrangement.parts], dtype=bool)
    mask = pitched[notes.part]
    weights = np.bincount(
        notes.pitch[mask] % 12, weights=(notes.end - notes.start)[mask] + 1e-3, minlength=12
    )
    if not weights.any():
        return key_name(0, "major")
    best = (-2.0, 0, "major")
    for mode, profile in (("major", _MAJOR_PROFILE), ("minor", _MINOR_PROFILE)):
        for tonic in range(12):
            score = float(np.corrcoef(weights, np.roll(profile, tonic))[0, 1])
            if score > best[0]:
                best = (score, tonic, mode)
    return key_name(best[1], best[2])


def monophonic_share(starts: np.ndarray, ends: np.ndarray) -> float:
    """Share of notes that start while no other note of the same part is still sounding."""
    if starts.size < 2:
        return 1.0
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    running_end = np.maximum.accumulate(ends)[:-1]
    overlapping = starts[1:] < running_end - _LEGATO_S
    return 1.0 - float(overlapping.sum()) / starts.size


def _melody_part(arrangement: "Arrangement") -> int | None:
    pitched = [part for part in arrangement.parts if not part.is_drum]
    for part in pitched:
        if part.named_in_file and _MELODY_NAME.search(part.name):
            return part.index
    notes = arrangement.notes
    best: tuple[float, int] | None = None
    for part in pitched:
        mine = notes.part == part.index
        if part.notes < 8 or monophonic_share(notes.start[mine], notes.end[mine]) < _MONOPHONIC_SHARE:
            continue
        centre = float(np.median(notes.pitch[mine]))
        if best is None or centre > best[0]:
            best = (centre, part.index)
    return None if best is None else best[1]


def _melody_histogram(arrangement: "Arrangement", melody: int | None) -> list[list[float]]:
    if melody is None:
        return []
    notes = arrangement.notes
    mine = notes.part == melody
    pitches = notes.pitch[mine].astype(np.int64)
    durations = (notes.end - notes.start)[mine]
    counts = np.bincount(pitches, minlength=128)
    seconds = np.bincount(pitches, weights=durations, minlength=128)
    return [[int(p), int(counts[p]), round(float(seconds[p]), 3)] for p in np.flatnonzero(counts)]
