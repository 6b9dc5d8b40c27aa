"""Note and key names in scientific pitch notation (C4 = MIDI 60).

Performers type ranges as names ("G3", "Db4") and the analysis shows keys as names, so conversion is
kept in one place with one spelling policy: conventional spellings for keys, and notes spelled in a
key when one is given (flats in flat keys: "Eb4" in Bb major), sharps otherwise. ASCII accidentals
("#", "b") throughout, so every name the engine writes parses back with ``note_number``.
"""

import re

_SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_NOTE_RE = re.compile(r"^\s*([A-Ga-g])([#♯b♭]{0,2})(-?\d{1,2})\s*$")

# Conventional key spellings: the names musicians expect on a chart (Bb major, not A# major).
_MAJOR_KEY_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_MINOR_KEY_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")
_MODES = ("major", "minor")
# Tonics whose key signature has flats (F, Bb, Eb, Ab, Db major; D, G, C, F, Bb, Eb minor).
_FLAT_TONICS = {"major": frozenset({5, 10, 3, 8, 1}), "minor": frozenset({2, 7, 0, 5, 10, 3})}


def uses_flats(key: str | None) -> bool:
    """True when notes in ``key`` are spelled with flats ("Eb major", "D minor"); False for None."""
    if not key:
        return False
    tonic, mode = parse_key(key)
    return tonic in _FLAT_TONICS[mode]


def note_name(midi: int, key: str | None = None) -> str:
    """60 -> "C4", 61 -> "C#4"; spelled in ``key`` when given: (63, key="Eb major") -> "Eb4"."""
    if not 0 <= midi <= 127:
        raise ValueError(f"MIDI note {midi} is outside 0-127")
    names = _FLAT_NAMES if uses_flats(key) else _SHARP_NAMES
    return f"{names[midi % 12]}{midi // 12 - 1}"


def note_number(name: str) -> int:
    """ "C4" -> 60; accepts sharps and flats ("c#4", "Db4"); raises ValueError on anything else."""
    match = _NOTE_RE.match(name) if isinstance(name, str) else None
    if match is None:
        raise ValueError(f"{name!r} is not a note name like C4, F#3 or Bb2")
    letter, accidentals, octave = match.groups()
    pitch_class = _LETTER_PC[letter.upper()]
    for accidental in accidentals:
        pitch_class += 1 if accidental in "#♯" else -1
    number = (int(octave) + 1) * 12 + pitch_class
    if not 0 <= number <= 127:
        raise ValueError(f"{name!r} is outside the MIDI note range")
    return number


def pitch_class(name: str) -> int:
    """Pitch class 0-11 of a note letter with accidentals and no octave ("F#" -> 6)."""
    match = re.match(r"^\s*([A-Ga-g])([#♯b♭]{0,2})\s*$", name)
    if match is None:
        raise ValueError(f"{name!r} is not a note letter")
    letter, accidentals = match.groups()
    value = _LETTER_PC[letter.upper()]
    for accidental in accidentals:
        value += 1 if accidental in "#♯" else -1
    return value % 12


def key_name(tonic_pc: int, mode: str) -> str:
    """(9, "major") -> "A major", (6, "minor") -> "F# minor"."""
    if mode not in _MODES:
        raise ValueError(f"mode must be 'major' or 'minor', not {mode!r}")
    names = _MAJOR_KEY_NAMES if mode == "major" else _MINOR_KEY_NAMES
    return f"{names[tonic_pc % 12]} {mode}"


def parse_key(key: str) -> tuple[int, str]:
    """ "Bb major" -> (10, "major"); raises ValueError on anything else."""
    parts = key.split() if isinstance(key, str) else []
    if len(parts) != 2 or parts[1].lower() not in _MODES:
        raise ValueError(f"{key!r} is not a key like 'A major' or 'F# minor'")
    return pitch_class(parts[0]), parts[1].lower()


def transpose_key(key: str, semitones: int) -> str:
    """("G major", 2) -> "A major"."""
    tonic, mode = parse_key(key)
    return key_name(tonic + semitones, mode)
