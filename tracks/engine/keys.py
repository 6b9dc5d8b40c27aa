"""Rank transpositions by how well the melody then sits in a performer's vocal range."""

from typing import Any

from .notes import note_name, parse_key, transpose_key

TRANSPOSITIONS = range(-12, 13)


def suggest_keys(
    *,
    melody_histogram: list[Any],
    key: str,
    vocal_low: int,
    vocal_high: int,
    melody_range: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Every transposition -12..+12, best first; [] when there is no melody to fit.

    Melody note names are spelled in the transposed key ("Eb4" in Bb major, "D#4" in B major): the
    key in force where each extreme sounds when the analysis' ``melody_range`` names it (a song that
    modulates), else ``key``.

    Best means: least melody time outside the range, then the melody's duration-weighted centre
    closest to the middle of the range, then the smallest change from the original.
    """
    rows = [(int(pitch), int(count), float(seconds)) for pitch, count, seconds in melody_histogram]
    rows = [row for row in rows if row[1] > 0]
    if not rows:
        return []
    low, high = sorted((int(vocal_low), int(vocal_high)))
    total_seconds = sum(seconds for _, _, seconds in rows) or 1.0
    weights = [seconds if seconds > 0 else 1e-3 for _, _, seconds in rows]
    centre = sum(pitch * weight for (pitch, _, _), weight in zip(rows, weights, strict=True)) / sum(weights)
    middle = (low + high) / 2
    lowest = min(pitch for pitch, _, _ in rows)
    highest = max(pitch for pitch, _, _ in rows)
    low_key, high_key = _range_keys(melody_range, key)
    suggestions: list[dict[str, Any]] = []
    distances: dict[int, float] = {}
    for shift in TRANSPOSITIONS:
        new_key = transpose_key(key, shift)
        outside = [(count, seconds) for pitch, count, seconds in rows if not low <= pitch + shift <= high]
        share = sum(seconds for _, seconds in outside) / total_seconds
        suggestions.append(
            {
                "transpose": shift,
                "key": new_key,
                "fits": not outside,
                "melody_low": note_name(min(127, max(0, lowest + shift)), key=transpose_key(low_key, shift)),
                "melody_high": note_name(
                    min(127, max(0, highest + shift)), key=transpose_key(high_key, shift)
                ),
                "out_of_range": sum(count for count, _ in outside),
                "out_of_range_share": round(share, 4),
            }
        )
        distances[shift] = round(abs(centre + shift - middle), 6)
    suggestions.sort(
        key=lambda item: (item["out_of_range_share"], distances[item["transpose"]], abs(item["transpose"]))
    )
    return suggestions


def _range_keys(melody_range: dict[str, Any] | None, key: str) -> tuple[str, str]:
    """The keys in force at the melody's lowest and highest notes (``key`` for analyses without them)."""
    if not isinstance(melody_range, dict):
        return key, key
    keys = []
    for label in ("low_key", "high_key"):
        candidate = str(melody_range.get(label) or "")
        try:
            parse_key(candidate)
        except ValueError:
            candidate = key
        keys.append(candidate)
    return keys[0], keys[1]
