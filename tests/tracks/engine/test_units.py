"""Small pure pieces: note names, keys, key suggestions, timeline, settings, analysis, no-Django import."""

import json
import subprocess
import sys
from typing import Any

import pytest

from tracks.engine import (
    InvalidSettings,
    PartMix,
    Timeline,
    VariantSettings,
    key_name,
    load_arrangement,
    note_name,
    note_number,
    suggest_keys,
    transpose_key,
)

from .conftest import MIDI_DIR, REPO_ROOT, midi_bytes


def test_note_names_round_trip() -> None:
    assert note_name(60) == "C4"
    assert note_name(61) == "C#4"
    assert note_number("Db4") == 61
    assert note_number("c#4") == 61
    assert note_number("G3") == 55
    with pytest.raises(ValueError):
        note_number("H2")


def test_keys_use_conventional_spellings() -> None:
    assert key_name(10, "major") == "Bb major"
    assert key_name(6, "minor") == "F# minor"
    assert transpose_key("G major", 2) == "A major"
    assert transpose_key("A minor", 1) == "Bb minor"


def test_key_suggestions_rank_the_fitting_transposition_first() -> None:
    # Given a melody from D4 to G5 and a singer from C3 to G4: only an octave down fits
    histogram = [[62, 10, 5.0], [67, 10, 5.0], [79, 2, 1.0]]
    # When keys are suggested
    suggestions = suggest_keys(melody_histogram=histogram, key="G major", vocal_low=48, vocal_high=67)
    # Then 25 transpositions come back and the best fits entirely
    assert len(suggestions) == 25
    best = suggestions[0]
    assert best["fits"] is True
    assert best["out_of_range"] == 0
    assert best["transpose"] == -12
    assert best["key"] == "G major"
    assert suggest_keys(melody_histogram=[], key="C major", vocal_low=48, vocal_high=72) == []


def test_timeline_maps_bars_through_tempo_ratio_and_count_in() -> None:
    # Given 4/4 at 120 bpm then 3/4 from 8 s (bar 5)
    timeline = Timeline.from_analysis(
        {"timeline": {"tempos": [[0.0, 120.0]], "time_signatures": [[0.0, 4, 4], [8.0, 3, 4]], "end_s": 20}}
    )
    # Then bar 5 beat 1 is at 8 s, and at 0.8x with a 1-bar count-in it moves to 2.5 + 10 s
    assert timeline.position_at(8.0) == (5, 1.0)
    assert timeline.position_at(9.0) == (5, 3.0)
    assert timeline.position_at(9.5) == (6, 1.0)
    assert timeline.seconds_at(5, 1.0, tempo_ratio=0.8, count_in_bars=1) == pytest.approx(12.5)
    assert timeline.position_at(12.5, tempo_ratio=0.8, count_in_bars=1) == (5, 1.0)
    assert timeline.position_at(0.0, count_in_bars=1)[0] <= 0


def test_settings_canonical_form_and_validation() -> None:
    settings = VariantSettings.from_dict(
        {"transpose": 2, "tempo": 0.8, "mix": {"3": {"gain_db": -6}, "1": {}}}
    )
    assert settings.mix[3] == PartMix(gain_db=-6.0)
    assert settings.to_dict()["mix"] == {"3": {"gain_db": -6.0, "mute": False, "solo": False}}
    same_stems = VariantSettings(transpose=2, tempo=0.8)
    assert settings.stem_key() == same_stems.stem_key()
    assert settings.cache_key() != same_stems.cache_key()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"transpose": 13}, "between -12 and 12"),
        ({"tempo": 2}, "between 0.5 and 1.5"),
        ({"count_in": 5}, "count_in"),
        ({"mix": {"x": {}}}, "not a part index"),
        ({"mix": {"0": {"gain_db": 20}}}, "gain_db"),
        ({"speed": 1}, "unknown setting"),
    ]
    for bad, reason in cases:
        with pytest.raises(InvalidSettings, match=reason):
            VariantSettings.from_dict(bad)
    with pytest.raises(InvalidSettings, match="no part 4"):
        VariantSettings(mix={4: PartMix(mute=True)}).validate(part_count=2)


def test_analysis_of_real_files() -> None:
    complex_song = load_arrangement(MIDI_DIR / "complex_18parts.mid").analysis
    # Its G major signature does not fit the music (six flats: Eb minor), so the notes decide
    assert complex_song["key"] == "Eb minor"
    assert complex_song["key_source"] == "notes"
    assert complex_song["tempo_changes"] is True
    drums = [part for part in complex_song["parts"] if part["is_drum"]]
    assert drums
    assert all(part["role"] == "drums" for part in drums)
    assert all(part["channel"] == 9 for part in drums)
    folk = load_arrangement(MIDI_DIR / "folk_melody_chords.mid").analysis
    assert folk["time_signature"] == "6/8"
    assert folk["melody_part"] == 0
    assert folk["parts"][0]["low"] == "D4"
    assert folk["melody_histogram"]
    bohemian = load_arrangement(MIDI_DIR / "bohemian_gm.mid").analysis
    assert bohemian["key_source"] == "notes"
    assert json.loads(json.dumps(bohemian)) == bohemian


def test_key_is_estimated_from_notes_and_melody_found_by_name() -> None:
    scale = [(index, 1, pitch) for index, pitch in enumerate([60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60])]
    analysis = load_arrangement(midi_bytes(scale, name="Guide vocal", program=52)).analysis
    assert analysis["key"] == "C major"
    assert analysis["melody_part"] == 0
    assert analysis["parts"][0]["role"] == "lead"


def test_engine_and_demo_import_and_work_with_django_absent() -> None:
    # Given a Python whose import system refuses django, rest_framework and celery
    script = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'django', 'rest_framework', 'celery'}:\n"
        "            raise ImportError('blocked: ' + name)\n"
        "        return None\n"
        "sys.meta_path.insert(0, Block())\n"
        "import tracks.engine as engine\n"
        "import tracks.demo as demo\n"
        f"a = engine.load_arrangement({str(MIDI_DIR / 'folk_jig_melody.mid')!r})\n"
        "print(engine.analyse(a)['key'])\n"
        "song = engine.load_arrangement(demo.compose_song(style='pop', minutes=0.2, parts=3, seed=1))\n"
        "print(len(song.parts))\n"
    )
    # When the engine and the demo songs are imported and used
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True)
    # Then both work
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["G", "major", "3"]
