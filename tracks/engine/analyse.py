"""What a producer and a singer want to know about an arrangement, as a JSON-able dict.

The dict is stored on the revision and drives key suggestions and the timeline, so it carries the
melody's pitch histogram and the tempo/meter maps, not only the headline numbers.
"""

import re
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from .notes import key_name, note_name
from .sections import bar_grid, find_sections
from .smf import bar_lines

if TYPE_CHECKING:
    from .arrangement import Arrangement

# Key profiles, tonic first: Albrecht & Shanahan (2013, pitch-class durations in major- and
# minor-mode classical pieces) and Aarden (2003, Essen folk songs). A key's score is the mean of the
# two Pearson correlations with the song's duration-weighted pitch-class histogram. Measured on
# labelled pop and folk songs (bench/analysis.py) this beats Krumhansl-Kessler (which errs a fifth
# too high) and Temperley/Kostka-Payne (which favours the relative major of minor songs).
_PROFILES = (
    (
        (0.238, 0.006, 0.111, 0.006, 0.137, 0.094, 0.016, 0.214, 0.009, 0.080, 0.008, 0.081),
        (0.220, 0.006, 0.104, 0.123, 0.019, 0.103, 0.012, 0.214, 0.062, 0.022, 0.061, 0.052),
    ),
    (
        (
            17.7661,
            0.145624,
            14.9265,
            0.160186,
            19.8049,
            11.3587,
            0.291248,
            22.062,
            0.145624,
            8.15494,
            0.232998,
            4.95122,
        ),
        (
            18.2648,
            0.737619,
            14.0499,
            16.8599,
            0.702494,
            14.4362,
            0.702494,
            18.6161,
            4.56621,
            1.93186,
            7.37619,
            1.75623,
        ),
    ),
)


def _profile_matrix() -> np.ndarray:
    """(profiles, 24, 12) z-scored rows: keys 0-11 major on C..B, 12-23 minor on C..B."""
    out = np.empty((len(_PROFILES), 24, 12))
    for which, (major, minor) in enumerate(_PROFILES):
        for mode, profile in enumerate((major, minor)):
            values = np.asarray(profile, dtype=np.float64)
            values = (values - values.mean()) / values.std()
            for tonic in range(12):
                out[which, mode * 12 + tonic] = np.roll(values, tonic)
    return out


_KEY_MATRIX = _profile_matrix()
_MELODY_NAME = re.compile(r"melod|vocal|lead|guide|voice|vox|sing|solo|tune|theme", re.IGNORECASE)
_ACCOMPANIMENT_NAME = re.compile(
    r"bass|drum|perc|chord|pad|comp\b|accomp|rhythm|harmon|backing|strings|arp", re.IGNORECASE
)
_MONOPHONIC_SHARE = 0.8
_LEGATO_S = 0.05  # overlaps shorter than this are legato playing, not chords
_CHORD_S = 0.03  # notes of one part starting this close together are one chord (or double stop)
# A key signature is kept when the notes fit its scale almost as well as the best key does (the
# difference of key scores, which are mean correlations in -1..1). A C major / A minor signature
# is what many programs write when nobody chose a key, so it must fit the notes more closely.
_SIGNATURE_TOLERANCE = 0.5
_PLACEHOLDER_TOLERANCE = 0.05
# Windowed key finding for modulations: windows of 8 bars every 4 bars; another scale must win
# at least 3 windows in a row (16 bars) by this margin (measured: 0.1 flags a fifth of
# single-key pop songs, 0.3 about 3 %) over the main key to count as a key change.
_WINDOW_BARS = 8
_HOP_BARS = 4
_MIN_WINDOWS = 3
_MODULATION_MARGIN = 0.3


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
    pitched = np.array([not part.is_drum for part in arrangement.parts], dtype=bool)
    key_info = find_key(arrangement, pitched)
    key = key_info.key
    melody, melody_confidence, top_line = _melody_part(arrangement)

    note_keys = _keys_in_force(arrangement, key_info.changes)
    parts = []
    for part in arrangement.parts:
        names = _range_names(
            arrangement, np.flatnonzero(arrangement.notes.part == part.index), note_keys, key_info.changes
        )
        parts.append(
            {
                "index": part.index,
                "name": part.name,
                "track": part.track,
                "channel": part.channel,
                "program": part.program,
                "instrument": part.instrument,
                "is_drum": part.is_drum,
                "role": "lead" if part.index == melody else part.family_role,
                "notes": part.notes,
                "low": note_name(part.low) if part.is_drum else names["low"],
                "high": note_name(part.high) if part.is_drum else names["high"],
            }
        )
    notes = arrangement.notes
    start_s = float(notes.start.min()) if notes.start.size else 0.0
    grid = bar_grid(arrangement)
    return {
        "duration_s": round(end_s, 2),
        "start_s": round(start_s, 3),
        "tempo_bpm": round(main_bpm, 2),
        "tempo_changes": bool(len(np.unique(np.round(change_bpm, 3))) > 1),
        "key": key,
        "key_source": key_info.source,
        "key_confidence": key_info.confidence,
        "keys": key_info.changes,
        "time_signature": f"{first_signature[0]}/{first_signature[1]}",
        "ticks_per_beat": raw.ticks_per_beat,
        "parts": parts,
        "melody_part": melody,
        "melody_confidence": melody_confidence,
        "melody_top_line": top_line,
        "melody_histogram": _melody_histogram(arrangement, melody, top_line),
        "melody_range": _melody_range(arrangement, melody, top_line, key_info.changes, note_keys),
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
        "bars": grid.count,
        "sections": find_sections(arrangement, grid),
        "lead_trim_bars": arrangement.lead_trim_bars,
    }


def _longest_lasting(values: np.ndarray, spans: np.ndarray) -> float:
    totals: dict[float, float] = {}
    for value, span in zip(np.round(values, 2).tolist(), spans.tolist(), strict=True):
        totals[value] = totals.get(value, 0.0) + span
    return max(totals.items(), key=lambda item: item[1])[0]


# --- key ------------------------------------------------------------------------------------


def _key_label(index: int) -> str:
    return key_name(index % 12, "major" if index < 12 else "minor")


def _relative(index: int) -> int:
    """The relative minor of a major key and the other way round (same scale, other tonic)."""
    return 12 + (index + 9) % 12 if index < 12 else (index - 12 + 3) % 12


def _same_scale(first: int, second: int) -> bool:
    return first == second or _relative(first) == second


def key_scores(histograms: np.ndarray) -> np.ndarray:
    """Scores of the 24 keys (0-11 major, 12-23 minor) for each row of a (n, 12) histogram."""
    histograms = np.atleast_2d(np.asarray(histograms, dtype=np.float64))
    centred = histograms - histograms.mean(axis=1, keepdims=True)
    spread = centred.std(axis=1, keepdims=True)
    z = np.divide(centred, spread, out=np.zeros_like(centred), where=spread > 0)
    return np.einsum("nk,pmk->nm", z, _KEY_MATRIX) / (12 * len(_PROFILES))


class KeyFinding(NamedTuple):
    key: str
    source: str  # "signature" | "signature+notes" | "notes" | "default" (no pitched notes)
    confidence: float
    changes: list[dict[str, Any]]


def find_key(arrangement: "Arrangement", pitched: np.ndarray | None = None) -> KeyFinding:
    """The main key, where it came from, how sure, and the key changes ``[{key, start_bar}]``.

    The notes decide; a key signature is evidence: kept when the notes fit its scale (a C major
    signature, which many programs write whatever the key, only when they fit it closely), and
    its major/minor flag kept unless it is that placeholder.
    """
    notes = arrangement.notes
    if pitched is None:
        pitched = np.array([not part.is_drum for part in arrangement.parts], dtype=bool)
    mask = pitched[notes.part] if notes.part.size else np.zeros(0, dtype=bool)
    weights = (notes.end - notes.start)[mask] + 1e-3
    classes = notes.pitch[mask] % 12
    histogram = np.bincount(classes, weights=weights, minlength=12)
    if not histogram.any():
        return KeyFinding(
            key_name(0, "major"), "default", 0.0, [{"key": key_name(0, "major"), "start_bar": 1}]
        )
    scores = key_scores(histogram)[0]
    ranked = np.argsort(-scores)
    best = int(ranked[0])
    margin = float(scores[best] - scores[ranked[1]])
    # Confidence from the notes: how well the best key fits and how clearly it beats the runner-up.
    fit = float(np.clip(scores[best] / 0.8, 0.0, 1.0))
    note_confidence = fit * (0.5 + 0.5 * min(1.0, margin / 0.15))

    main, source, confidence = best, "notes", note_confidence
    signature = _signature_key(arrangement)
    if signature is not None:
        sig_index, placeholder = signature
        pair = (sig_index, _relative(sig_index))
        fits = max(scores[pair[0]], scores[pair[1]])
        tolerance = _PLACEHOLDER_TOLERANCE if placeholder else _SIGNATURE_TOLERANCE
        if scores[best] - fits <= tolerance:
            if placeholder:
                # The scale is confirmed but the flag of a placeholder says nothing about the mode.
                main = pair[0] if scores[pair[0]] >= scores[pair[1]] else pair[1]
                source = "signature" if main == sig_index else "signature+notes"
            else:
                main, source = sig_index, "signature"
            agree = 1.0 if main == best else 0.8
            confidence = max(note_confidence, agree * (0.9 if placeholder else 0.97))
    changes = _key_changes(arrangement, mask, main)
    return KeyFinding(_key_label(main), source, round(float(confidence), 2), changes)


def _signature_key(arrangement: "Arrangement") -> tuple[int, bool] | None:
    """The key signature in force at the first note as a key index, and whether it is C major at
    tick 0 (the placeholder many programs write); None without a signature."""
    signatures = arrangement.raw.key_signatures
    if not signatures:
        return None
    starts = arrangement.notes.start_tick
    first_tick = int(starts.min()) if starts is not None and starts.size else 0
    _, sharps, minor = signatures[0]
    for tick, candidate_sharps, candidate_minor in signatures:
        if tick <= first_tick:
            sharps, minor = candidate_sharps, candidate_minor
    major_tonic = (sharps * 7) % 12
    index = 12 + (major_tonic + 9) % 12 if minor else major_tonic
    return index, bool(sharps == 0 and not minor)


def estimate_key(arrangement: "Arrangement") -> str:
    """The key from the notes alone (no signature): profile correlation over the whole song."""
    notes = arrangement.notes
    pitched = np.array([not part.is_drum for part in arrangement.parts], dtype=bool)
    mask = pitched[notes.part]
    weights = np.bincount(
        notes.pitch[mask] % 12, weights=(notes.end - notes.start)[mask] + 1e-3, minlength=12
    )
    if not weights.any():
        return key_name(0, "major")
    return _key_label(int(np.argmax(key_scores(weights)[0])))


def bar_starts(arrangement: "Arrangement") -> np.ndarray:
    """Ticks where bars 1, 2, ... start, following the time signatures, up to the end."""
    raw = arrangement.raw
    return bar_lines(raw.ticks_per_beat, raw.time_signatures, arrangement.end_tick)


def _key_changes(arrangement: "Arrangement", mask: np.ndarray, main: int) -> list[dict[str, Any]]:
    changes: list[dict[str, Any]] = [{"key": _key_label(main), "start_bar": 1}]
    notes = arrangement.notes
    if notes.start_tick is None or not mask.any():
        return changes
    bars = bar_starts(arrangement)
    bar_of_note = np.searchsorted(bars, notes.start_tick[mask], side="right") - 1
    blocks = bar_of_note // _HOP_BARS
    count = int(blocks.max()) + 1
    per_window = _WINDOW_BARS // _HOP_BARS
    if count < per_window * _MIN_WINDOWS - 1:
        return changes
    histograms = np.zeros((count, 12))
    durations = np.minimum((notes.end - notes.start)[mask], 4.0) + 1e-3
    np.add.at(histograms, (blocks, notes.pitch[mask] % 12), durations)
    windows = np.zeros((count - per_window + 1, 12))
    for offset in range(per_window):
        windows += histograms[offset : count - per_window + 1 + offset]
    scores = key_scores(windows)
    winners = np.argmax(scores, axis=1)
    lead = scores[np.arange(len(winners)), winners] - scores[:, main]
    current = main
    run_key, run_start, run_length = -1, 0, 0
    for window, (winner, margin) in enumerate(zip(winners.tolist(), lead.tolist(), strict=True)):
        if _same_scale(winner, current) or margin < _MODULATION_MARGIN or windows[window].sum() <= 0:
            # Back in the key in force (or no clear winner): a run of another key ends here.
            candidate = -1
        else:
            candidate = winner
        if candidate >= 0 and (run_key == candidate or (run_key >= 0 and _same_scale(candidate, run_key))):
            run_length += 1
        elif candidate >= 0:
            run_key, run_start, run_length = candidate, window, 1
        else:
            run_key, run_length = -1, 0
        if run_key >= 0 and run_length >= _MIN_WINDOWS:
            current = run_key
            # A window of 8 bars that is mostly the new key: the change is in its second half.
            start_bar = 1 + run_start * _HOP_BARS + (_HOP_BARS if run_start else 0)
            changes.append({"key": _key_label(current), "start_bar": start_bar})
            run_key, run_length = -1, 0
            lead = scores[np.arange(len(winners)), winners] - scores[:, current]
    return changes


def _keys_in_force(arrangement: "Arrangement", changes: list[dict[str, Any]]) -> np.ndarray:
    """Per note, the index into ``changes`` (``[{key, start_bar}]``) of the key in force where it starts."""
    notes = arrangement.notes
    if len(changes) <= 1 or notes.start_tick is None:
        return np.zeros(notes.pitch.size, dtype=np.int64)
    bar_of_note = np.searchsorted(bar_starts(arrangement), notes.start_tick, side="right")  # 1-based
    first_bars = np.asarray([int(change["start_bar"]) for change in changes], dtype=np.int64)
    return np.maximum(np.searchsorted(first_bars, bar_of_note, side="right") - 1, 0)


def _range_names(
    arrangement: "Arrangement", mine: np.ndarray, note_keys: np.ndarray, changes: list[dict[str, Any]]
) -> dict[str, str]:
    """Lowest and highest of the notes ``mine``, each spelled in the key in force where it sounds
    (most, when it sounds in several keys): an Ab in the Ab major section, a G# in the E major one."""
    notes = arrangement.notes
    pitches = notes.pitch[mine].astype(np.int64)
    durations = (notes.end - notes.start)[mine] + 1e-3
    out: dict[str, str] = {}
    for label, pitch in (("low", int(pitches.min())), ("high", int(pitches.max()))):
        at = pitches == pitch
        weights = np.bincount(note_keys[mine][at], weights=durations[at], minlength=len(changes))
        key = str(changes[int(np.argmax(weights))]["key"])
        out[label] = note_name(pitch, key=key)
        out[f"{label}_key"] = key
    return out


def monophonic_share(starts: np.ndarray, ends: np.ndarray) -> float:
    """Share of notes that start while no other note of the same part is still sounding."""
    if starts.size < 2:
        return 1.0
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    running_end = np.maximum.accumulate(ends)[:-1]
    overlapping = starts[1:] < running_end - _LEGATO_S
    return 1.0 - float(overlapping.sum()) / starts.size


# --- melody -----------------------------------------------------------------------------------


def _top_line(starts: np.ndarray, ends: np.ndarray, pitches: np.ndarray) -> np.ndarray:
    """Indices (into the arrays) of the highest note of each onset: a part's top line, in time order."""
    order = np.lexsort((-pitches.astype(np.int64), starts))
    sorted_starts = starts[order]
    new_onset = np.ones(order.size, dtype=bool)
    new_onset[1:] = np.diff(sorted_starts) > _CHORD_S
    return order[new_onset]


def _covered(starts: np.ndarray, ends: np.ndarray) -> float:
    """Seconds during which at least one of the notes sounds."""
    if not starts.size:
        return 0.0
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], np.maximum.accumulate(ends[order])
    gaps = np.maximum(starts[1:] - ends[:-1], 0.0)
    return float(ends[-1] - starts[0] - gaps.sum())


def melody_features(arrangement: "Arrangement") -> dict[int, dict[str, float]]:
    """Per pitched part, the features the melody choice weighs (also useful to explain it)."""
    notes = arrangement.notes
    pitched = [part for part in arrangement.parts if not part.is_drum]
    if not pitched or not notes.start.size:
        return {}
    span = max(float(notes.end.max() - notes.start.min()), 1e-3)
    features: dict[int, dict[str, float]] = {}
    for part in pitched:
        mine = np.flatnonzero(notes.part == part.index)
        if not mine.size:
            continue
        starts, ends, pitches = notes.start[mine], notes.end[mine], notes.pitch[mine]
        order = np.lexsort((-pitches.astype(np.int64), starts))
        starts, ends, pitches = starts[order], ends[order], pitches[order]
        new_onset = np.ones(starts.size, dtype=bool)
        new_onset[1:] = np.diff(starts) > _CHORD_S
        onsets = int(new_onset.sum())
        running = np.maximum.accumulate(ends)
        later = np.flatnonzero(new_onset[1:]) + 1
        overlap = float((starts[later] < running[later - 1] - _LEGATO_S).mean()) if later.size else 0.0
        top = pitches[new_onset].astype(np.int64)
        leaps = np.abs(np.diff(top))
        features[part.index] = {
            "onsets": float(onsets),
            "chordal": 1.0 - onsets / starts.size,
            "overlap": overlap,
            "coverage": _covered(starts, ends) / span,
            "register": float(np.median(top)),
            "leaps": float((leaps > 7).mean()) if leaps.size else 0.0,
        }
    return features


def _melody_part(arrangement: "Arrangement") -> tuple[int | None, float, bool]:
    """The part most likely to carry the tune, a 0-1 confidence, and whether it has chords (then
    its top line is the melody).

    Scored from the music: monophony (no overlapping notes, few chords: a melody with double stops
    is still mostly single notes), how much of the song it plays and how many onsets it has
    compared with the busiest part, register (a tune sits above the bass), stepwise motion; the
    track name is one more signal, and bass instruments are unlikely carriers. Every song with a
    pitched part gets a melody part (a solo piano: the piano, its top line), with low confidence
    when nothing sounds like a tune.
    """
    features = melody_features(arrangement)
    if not features:
        return None, 0.0, False
    busiest = max(values["onsets"] for values in features.values())
    scored: list[tuple[float, int]] = []
    for part in arrangement.parts:
        values = features.get(part.index)
        if values is None:
            continue
        score = (
            3.0 * (1.0 - values["overlap"])
            + 3.0 * (1.0 - values["chordal"])
            + 1.0 * min(1.0, values["coverage"])
            + 1.0 * values["onsets"] / busiest
            + 1.0 * float(np.clip((values["register"] - 48.0) / 24.0, 0.0, 1.0))
            + 1.0 * (1.0 - values["leaps"])
        )
        if values["onsets"] < 8:
            score -= 3.0
        if 32 <= part.program <= 39:  # GM basses
            score -= 1.5
        if part.named_in_file and _MELODY_NAME.search(part.name):
            score += 2.0
        elif part.named_in_file and _ACCOMPANIMENT_NAME.search(part.name):
            score -= 1.0
        scored.append((score, part.index))
    scored.sort(reverse=True)
    best_score, best = scored[0]
    runner_up = scored[1][0] if len(scored) > 1 else best_score - 4.0
    quality = float(np.clip(best_score / 10.0, 0.0, 1.0))
    clarity = float(np.clip((best_score - runner_up) / 2.0, 0.0, 1.0))
    confidence = round(quality * (0.5 + 0.5 * clarity), 2)
    return best, confidence, features[best]["chordal"] > 0.0


def melody_analysis(arrangement: "Arrangement", part: int | None) -> dict[str, Any]:
    """The analysis's melody fields for a melody part chosen by a person (``None``: no melody).

    ``melody_confidence`` is 1 (a person said so); ``melody_top_line`` says whether the part has
    chords, so its top line is the tune; ``melody_histogram`` is what key suggestions fit.
    Raises ValueError when ``part`` is not a pitched part of the arrangement.
    """
    if part is None:
        return {
            "melody_part": None,
            "melody_confidence": 1.0,
            "melody_top_line": False,
            "melody_histogram": [],
            "melody_range": None,
        }
    pitched = {p.index for p in arrangement.parts if not p.is_drum}
    if part not in pitched:
        raise ValueError(f"part {part} is not a pitched part of this arrangement")
    features = melody_features(arrangement).get(part)
    top_line = bool(features and features["chordal"] > 0.0)
    changes = arrangement.analysis.get("keys") or find_key(arrangement).changes
    return {
        "melody_part": part,
        "melody_confidence": 1.0,
        "melody_top_line": top_line,
        "melody_histogram": _melody_histogram(arrangement, part, top_line),
        "melody_range": _melody_range(arrangement, part, top_line, changes),
    }


def _melody_notes(arrangement: "Arrangement", melody: int, top_line: bool) -> np.ndarray:
    """Indices of the notes the singer sings: the part's notes, or its top line when it has chords."""
    notes = arrangement.notes
    mine = np.flatnonzero(notes.part == melody)
    if top_line:
        mine = mine[_top_line(notes.start[mine], notes.end[mine], notes.pitch[mine])]
    return mine


def _melody_range(
    arrangement: "Arrangement",
    melody: int | None,
    top_line: bool,
    changes: list[dict[str, Any]],
    note_keys: np.ndarray | None = None,
) -> dict[str, str] | None:
    """``{low, high, low_key, high_key}``: the melody's extremes, spelled in the key in force where
    they sound (what key suggestions transpose); None without a melody."""
    if melody is None:
        return None
    mine = _melody_notes(arrangement, melody, top_line)
    if not mine.size:
        return None
    if note_keys is None:
        note_keys = _keys_in_force(arrangement, changes)
    return _range_names(arrangement, mine, note_keys, changes)


def _melody_histogram(arrangement: "Arrangement", melody: int | None, top_line: bool) -> list[list[float]]:
    if melody is None:
        return []
    notes = arrangement.notes
    mine = _melody_notes(arrangement, melody, top_line)
    pitches = notes.pitch[mine].astype(np.int64)
    durations = (notes.end - notes.start)[mine]
    counts = np.bincount(pitches, minlength=128)
    seconds = np.bincount(pitches, weights=durations, minlength=128)
    return [[int(p), int(counts[p]), round(float(seconds[p]), 3)] for p in np.flatnonzero(counts)]
