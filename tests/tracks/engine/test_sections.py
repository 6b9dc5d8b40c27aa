"""Sections of a song: from its markers or cue points, else detected from the music."""

import itertools
from dataclasses import replace

import pytest

from tracks.demo import compose_song
from tracks.engine import load_arrangement
from tracks.engine.sections import bar_grid, boundary_scores, detect_sections, marker_sections

from .conftest import MIDI_DIR
from .sections_songs import BAR, TPB, four_sections, song_bytes


def spans(sections: list[dict]) -> list[tuple[str, int, int]]:
    return [(s["name"], s["start_bar"], s["end_bar"]) for s in sections]


def test_markers_name_the_sections_as_written_and_tile_the_song() -> None:
    # Given a song with four section markers, 2 bars each at 120 bpm
    analysis = load_arrangement(four_sections()).analysis
    # Then the analysis has its bars and the sections, named as written, with their times
    assert analysis["bars"] == 8
    assert spans(analysis["sections"]) == [
        ("Intro", 1, 2),
        ("Verse", 3, 4),
        ("Chorus", 5, 6),
        ("Outro", 7, 8),
    ]
    assert [(s["start_s"], s["end_s"]) for s in analysis["sections"]] == [(0, 4), (4, 8), (8, 12), (12, 16)]
    assert {s["source"] for s in analysis["sections"]} == {"markers"}
    assert [s["index"] for s in analysis["sections"]] == [0, 1, 2, 3]


def test_bars_are_counted_through_meter_changes() -> None:
    # Given 2 bars of 4/4, then 3/4 from the third bar, markers at bars 1, 3 and 5
    three = 3 * TPB
    data = song_bytes(
        markers=[(0, "Strophe 1"), (2 * BAR, "Walzer"), (2 * BAR + 2 * three, "Schluß")],
        meters=[(0, 4, 4), (2 * BAR, 3, 4)],
        parts=[[(0, 2 * BAR + 4 * three - 10, 60)]],
    )
    sections = load_arrangement(data).analysis["sections"]
    assert spans(sections) == [("Strophe 1", 1, 2), ("Walzer", 3, 4), ("Schluß", 5, 6)]
    assert sections[2]["start_s"] == pytest.approx(4.0 + 3.0)


def test_cue_points_name_sections_when_there_are_no_markers() -> None:
    data = song_bytes(cue_points=[(0, "A"), (2 * BAR, "B")], parts=[[(0, 4 * BAR - 10, 60)]])
    sections = load_arrangement(data).analysis["sections"]
    assert spans(sections) == [("A", 1, 2), ("B", 3, 4)]


def test_a_first_marker_after_the_start_gets_an_intro_before_it() -> None:
    data = song_bytes(markers=[(4 * BAR, "Verse"), (6 * BAR, "Chorus")], parts=[[(0, 8 * BAR - 10, 60)]])
    sections = load_arrangement(data).analysis["sections"]
    assert spans(sections) == [("Intro", 1, 4), ("Verse", 5, 6), ("Chorus", 7, 8)]


@pytest.mark.parametrize(("style", "parts", "seed"), [("pop", 8, 1), ("ballad", 6, 2)])
def test_sections_are_detected_from_the_music_when_the_markers_are_hidden(
    style: str, parts: int, seed: int
) -> None:
    # Given a demo song whose markers give its true sections
    arrangement = load_arrangement(compose_song(style=style, minutes=3, parts=parts, seed=seed))
    grid = bar_grid(arrangement)
    truth = marker_sections(arrangement, grid)
    assert truth is not None
    # When the markers are hidden
    hidden = replace(arrangement, raw=replace(arrangement.raw, markers=[], cue_points=[]))
    found = detect_sections(hidden, grid)
    # Then most boundaries are found within a bar, and repeated verses share a letter
    hits, detected, true = boundary_scores([bar for _, bar in found], [bar for _, bar in truth])
    assert hits / detected >= 0.8
    assert hits / true >= 0.8
    by_bar = {bar: name for name, bar in found}
    verses = [bar for name, bar in truth if name.startswith("Verse")]
    assert len({by_bar.get(bar) for bar in verses}) == 1
    assert found[0] == ("Intro", 1)


@pytest.mark.parametrize("name", sorted(path.name for path in MIDI_DIR.glob("*.mid")))
def test_real_files_get_sections_that_tile_the_song(name: str) -> None:
    analysis = load_arrangement(MIDI_DIR / name).analysis
    sections = analysis["sections"]
    assert sections[0]["start_bar"] == 1
    assert sections[-1]["end_bar"] == analysis["bars"]
    for before, after in itertools.pairwise(sections):
        assert after["start_bar"] == before["end_bar"] + 1
        assert after["start_s"] == before["end_s"]
    assert all(s["name"] and s["source"] == "detected" for s in sections)
