"""Sections of a song: named bar ranges that tile it, from the file's markers or from the music.

Most produced backing tracks name their sections with marker (or cue-point) meta events; those are
kept as written, placed on the bar line nearest to them (bars counted through meter changes). A file
without them gets sections detected from the music: bars are compared by what they play (pitch
classes, rhythm, which instruments sound), boundaries are chosen where the music changes on a grid of
4-bar phrases, and sections that repeat share a letter ("Intro", "A", "B", "A", ..., "Outro").
"""

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .arrangement import Arrangement

PHRASE_BARS = 4
_SAME_SECTION = 0.82  # bar-by-bar similarity above which two sections count as the same music
_RHYTHM_SLOTS = 16


@dataclass(frozen=True)
class BarGrid:
    """Where every bar starts and ends, in ticks and seconds (bar ``n`` is index ``n - 1``)."""

    start_tick: np.ndarray
    end_tick: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray

    @property
    def count(self) -> int:
        return int(self.start_tick.size)


def bar_grid(arrangement: "Arrangement") -> BarGrid:
    """The song's bars, following its time signatures (a meter change inside a bar waits for the
    next bar line), up to the bar that holds the end of the music."""
    from .analyse import bar_starts

    starts = bar_starts(arrangement)
    tpb = arrangement.raw.ticks_per_beat
    meters = [(t, n, d) for t, n, d in arrangement.raw.time_signatures if n > 0] or [(0, 4, 4)]
    last_start = int(starts[-1])
    in_force = [(n, d) for t, n, d in meters if t <= last_start]
    numerator, denominator = in_force[-1] if in_force else (4, 4)
    last_length = max(1, round(numerator * tpb * 4 / denominator))
    ends = np.append(starts[1:], last_start + last_length).astype(np.int64)
    tempo_map = arrangement.tempo_map
    return BarGrid(
        start_tick=starts.astype(np.int64),
        end_tick=ends,
        start_s=tempo_map.to_seconds(starts),
        end_s=tempo_map.to_seconds(ends),
    )


def find_sections(arrangement: "Arrangement", grid: BarGrid | None = None) -> list[dict[str, Any]]:
    """``[{index, name, start_bar, end_bar, start_s, end_s, source}]`` tiling the whole song."""
    grid = grid or bar_grid(arrangement)
    marked = marker_sections(arrangement, grid)
    if marked is not None:
        return section_dicts(marked, grid, "markers")
    return section_dicts(detect_sections(arrangement, grid), grid, "detected")


def section_dicts(named_starts: list[tuple[str, int]], grid: BarGrid, source: str) -> list[dict[str, Any]]:
    """Sections from ``[(name, start_bar), ...]`` (start bars increasing from 1)."""
    sections = []
    for index, (name, start_bar) in enumerate(named_starts):
        end_bar = named_starts[index + 1][1] - 1 if index + 1 < len(named_starts) else grid.count
        sections.append(
            {
                "index": index,
                "name": name,
                "start_bar": start_bar,
                "end_bar": end_bar,
                "start_s": round(float(grid.start_s[start_bar - 1]), 3),
                "end_s": round(float(grid.end_s[end_bar - 1]), 3),
                "source": source,
            }
        )
    return sections


def marker_sections(arrangement: "Arrangement", grid: BarGrid) -> list[tuple[str, int]] | None:
    """``[(name, start_bar)]`` from marker events (else cue points); None when they name fewer than
    two sections."""
    raw = arrangement.raw
    events = raw.markers or raw.cue_points
    starts: list[tuple[str, int]] = []
    for tick, text in events:
        name = text.strip()
        if not name or tick >= int(grid.end_tick[-1]):
            continue
        # The bar line nearest to the marker (markers are meant to sit on bar lines).
        index = int(np.searchsorted(grid.start_tick, tick, side="right")) - 1
        index = max(0, index)
        if index + 1 < grid.count and grid.start_tick[index + 1] - tick < tick - grid.start_tick[index]:
            index += 1
        bar = index + 1
        if starts and starts[-1][1] == bar:
            continue  # two markers on one bar: the first names it
        starts.append((name, bar))
    if len(starts) < 2:
        return None
    if starts[0][1] == 2:
        starts[0] = (starts[0][0], 1)  # a pickup bar belongs to the first section
    elif starts[0][1] > 2:
        names = {name.casefold() for name, _ in starts}
        starts.insert(0, ("Intro" if "intro" not in names else "Start", 1))
    return starts


def bar_similarity(arrangement: "Arrangement", grid: BarGrid) -> np.ndarray:
    """(bars, bars) similarity of bars by pitch classes, pitches, rhythm and instrumentation (0..1)."""
    notes = arrangement.notes
    bars = grid.count
    parts = max(len(arrangement.parts), 1)
    drums = np.array([part.is_drum for part in arrangement.parts] or [False], dtype=bool)
    pitch_class = np.zeros(bars * 12)
    pitch = np.zeros(bars * 128)
    rhythm = np.zeros(bars * _RHYTHM_SLOTS)
    instruments = np.zeros(bars * parts)
    if notes.start.size:
        first = np.clip(np.searchsorted(grid.start_s, notes.start, side="right") - 1, 0, bars - 1)
        last = np.clip(np.searchsorted(grid.start_s, notes.end, side="left") - 1, first, bars - 1)
        # Onsets: which sixteenth of its bar each note starts on.
        length = grid.end_s[first] - grid.start_s[first]
        slot = np.clip(
            ((notes.start - grid.start_s[first]) / np.maximum(length, 1e-9) * _RHYTHM_SLOTS).astype(np.int64),
            0,
            _RHYTHM_SLOTS - 1,
        )
        rhythm += np.bincount(first * _RHYTHM_SLOTS + slot, minlength=bars * _RHYTHM_SLOTS)
        # Sounding time inside each bar a note touches (a long note counts in every bar it spans):
        # one row per (note, bar) pair.
        spans = (last - first + 1).astype(np.int64)
        note = np.repeat(np.arange(first.size), spans)
        bar = first[note] + (np.arange(note.size) - np.repeat(np.cumsum(spans) - spans, spans))
        overlap = np.maximum(
            np.minimum(notes.end[note], grid.end_s[bar]) - np.maximum(notes.start[note], grid.start_s[bar]),
            0.0,
        )
        part = notes.part[note].astype(np.int64)
        instruments += np.bincount(bar * parts + part, weights=overlap, minlength=bars * parts)
        tonal = ~drums[part]
        tones = notes.pitch[note][tonal].astype(np.int64)
        pitch_class += np.bincount(bar[tonal] * 12 + tones % 12, weights=overlap[tonal], minlength=bars * 12)
        pitch += np.bincount(bar[tonal] * 128 + tones, weights=overlap[tonal], minlength=bars * 128)
        instruments = np.sqrt(instruments)  # presence matters more than how long each part holds
    similarity = np.zeros((bars, bars))
    for flat, width in ((pitch_class, 12), (pitch, 128), (rhythm, _RHYTHM_SLOTS), (instruments, parts)):
        features = flat.reshape(bars, width)
        norms = np.linalg.norm(features, axis=1, keepdims=True)
        unit = np.divide(features, norms, out=np.zeros_like(features), where=norms > 0)
        similarity += unit @ unit.T
    return similarity / 4.0


def detect_sections(arrangement: "Arrangement", grid: BarGrid) -> list[tuple[str, int]]:
    """``[(name, start_bar)]`` found in the music (see the module docstring).

    Bars are grouped into 4-bar phrases (on the grid offset where phrases repeat best, so a pickup bar
    or a 2-bar intro stands on its own), phrases that play the same music share a label, and two
    phrases make one 8-bar section where that pair of labels comes back elsewhere in the song (a verse
    of two different halves, played twice) or where a phrase repeats at once.
    """
    bars = grid.count
    if bars <= PHRASE_BARS:
        return [("A", 1)]
    similarity = bar_similarity(arrangement, grid)
    offset = max(range(PHRASE_BARS), key=lambda o: (_repetition(similarity, _phrases(o, bars)), -o))
    phrases = _phrases(offset, bars)
    labels = _phrase_labels(similarity, phrases)
    starts, section_labels = _group(phrases, labels)
    # Sections with the same phrases are the same section.
    keys: dict[tuple[int, ...], int] = {}
    numbered = [keys.setdefault(key, len(keys)) for key in section_labels]
    return _names(numbered, starts, bars)


def _phrases(offset: int, bars: int) -> list[tuple[int, int]]:
    """0-based [start, stop) bar spans of 4 bars from ``offset`` (a shorter one first and last)."""
    edges = [0, *range(offset, bars, PHRASE_BARS), bars] if offset else [*range(0, bars, PHRASE_BARS), bars]
    edges = sorted(set(edges))
    spans = list(itertools.pairwise(edges))
    if len(spans) > 1 and spans[-1][1] - spans[-1][0] < 2:
        spans[-2:] = [(spans[-2][0], spans[-1][1])]  # a last bar on its own ends the phrase before it
    return spans


def _phrase_matrix(similarity: np.ndarray, phrases: list[tuple[int, int]]) -> np.ndarray:
    """(phrases, phrases) similarity: the mean of their bars' similarities, bar by bar from their
    starts, lowered for phrases of different lengths (0 when one is less than half the other)."""
    starts = np.asarray([start for start, _ in phrases])
    lengths = np.asarray([stop - start for start, stop in phrases])
    shorter = np.minimum(lengths[:, None], lengths[None, :])
    longer = np.maximum(lengths[:, None], lengths[None, :])
    total = np.zeros((len(phrases), len(phrases)))
    last = similarity.shape[0] - 1
    for k in range(int(lengths.max())):
        rows = np.minimum(starts + k, last)
        total += np.where(shorter > k, similarity[np.ix_(rows, rows)], 0.0)
    matrix = total / np.maximum(shorter, 1) * (shorter / longer) ** 0.25
    matrix[shorter * 2 < longer] = 0.0
    return matrix


def _repetition(similarity: np.ndarray, phrases: list[tuple[int, int]]) -> float:
    """How well the phrases repeat: the mean of each phrase's best match elsewhere."""
    if len(phrases) < 2:
        return 0.0
    matrix = _phrase_matrix(similarity, phrases)
    np.fill_diagonal(matrix, -np.inf)
    return float(matrix.max(axis=1).mean())


def _phrase_labels(similarity: np.ndarray, phrases: list[tuple[int, int]]) -> list[int]:
    matrix = _phrase_matrix(similarity, phrases)
    labels: list[int] = []
    representatives: list[int] = []
    for index in range(len(phrases)):
        scores = matrix[index, representatives] if representatives else np.zeros(0)
        best = int(np.argmax(scores)) if scores.size else -1
        if best < 0 or scores[best] < _SAME_SECTION:
            representatives.append(index)
            best = len(representatives) - 1
        labels.append(best)
    return labels


def _group(phrases: list[tuple[int, int]], labels: list[int]) -> tuple[list[int], list[tuple[int, ...]]]:
    """Section start bars (0-based) and each section's phrase labels.

    A run of phrases with one label is cut into 8-bar sections; a run of an odd number of phrases
    leaves one 4-bar section over: at the start of the song's first run (an intro), else at its end
    (a tag, an outro). Two phrases heard nowhere else in the song make one 8-bar section.
    """
    counts = {label: labels.count(label) for label in labels}
    first_run = next((n for n, label in enumerate(labels) if label != labels[0]), len(labels))
    starts: list[int] = []
    keys: list[tuple[int, ...]] = []
    index = 0
    if first_run > 1 and first_run % 2:
        starts.append(phrases[0][0])
        keys.append((labels[0],))
        index = 1
    while index < len(phrases):
        full = phrases[index][1] - phrases[index][0] == PHRASE_BARS
        if index + 1 < len(phrases) and full:
            first, second = labels[index], labels[index + 1]
            if first == second or counts[first] == counts[second] == 1:
                starts.append(phrases[index][0])
                keys.append((first, second))
                index += 2
                continue
        starts.append(phrases[index][0])
        keys.append((labels[index],))
        index += 1
    return starts, keys


def _names(labels: list[int], starts: list[int], bars: int) -> list[tuple[str, int]]:
    """Letters in order of first appearance; an unrepeated short first/last section is Intro/Outro."""
    count = len(labels)
    edges = [*starts, bars]
    names: list[str | None] = [None] * count
    if count >= 3:
        if labels.count(labels[0]) == 1 and edges[1] - edges[0] <= 8:
            names[0] = "Intro"
        if labels.count(labels[-1]) == 1 and edges[-1] - edges[-2] <= 8:
            names[-1] = "Outro"
    letters: dict[int, str] = {}
    for index, label in enumerate(labels):
        if names[index] is None:
            if label not in letters:
                letters[label] = _letter(len(letters))
            names[index] = letters[label]
    return [(str(name), start + 1) for name, start in zip(names, starts, strict=True)]


def _letter(number: int) -> str:
    letters = ""
    number += 1
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def boundary_scores(found: list[int], truth: list[int], tolerance: int = 1) -> tuple[int, int, int]:
    """(hits, found, true) for boundary bars (bar 1 excluded) matched one-to-one within ``tolerance``."""
    truth_left = [bar for bar in truth if bar != 1]
    found = [bar for bar in found if bar != 1]
    hits = 0
    for bar in found:
        match = next((t for t in truth_left if abs(t - bar) <= tolerance), None)
        if match is not None:
            truth_left.remove(match)
            hits += 1
    return hits, len(found), len([bar for bar in truth if bar != 1])
