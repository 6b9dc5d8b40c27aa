"""Arrangements: sections and bar ranges in any order, joined seamlessly, exact to the sample."""

from pathlib import Path

import numpy as np
import pytest

from tracks.engine import InvalidSettings, VariantSettings, load_arrangement, render_variant
from tracks.engine.arrange import arranged_song
from tracks.engine.transform import perform

from .conftest import MIDI_DIR, read_wav
from .sections_songs import BAR, TPB, four_sections, song_bytes

RATE = 44_100
HZ = {69: 440.0, 72: 523.25, 76: 659.26, 79: 783.99, 48: 130.81}


def band_db(audio: np.ndarray, start_s: float, stop_s: float, hz: float) -> float:
    """Level (dB) of the spectrum around ``hz`` in a stretch of the render."""
    mono = audio[round(start_s * RATE) : round(stop_s * RATE)].mean(axis=1)
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(mono.size)))
    freqs = np.fft.rfftfreq(mono.size, 1 / RATE)
    band = (freqs > hz * 0.97) & (freqs < hz * 1.03)
    return float(20 * np.log10(spectrum[band].max() + 1e-12))


def strongest(audio: np.ndarray, start_s: float, stop_s: float) -> int:
    """Which of the test pitches sounds loudest in a stretch of the render."""
    return max((69, 72, 76, 79), key=lambda pitch: band_db(audio, start_s, stop_s, HZ[pitch]))


def render(tmp_path: Path, data: bytes, soundfont: Path, **settings: object) -> np.ndarray:
    out = tmp_path / f"render-{len(list(tmp_path.iterdir()))}.wav"
    render_variant(
        load_arrangement(data), VariantSettings.from_dict(settings), out_path=out, soundfont=soundfont
    )
    rate, audio = read_wav(out)
    assert rate == RATE
    return audio


def test_sections_render_in_the_requested_order(tmp_path: Path, soundfont: Path) -> None:
    # Given a song whose four sections each hold a different pitch (bars of 2 s)
    # When it is rendered as Chorus, Intro twice, then bars 3-4 (the Verse), then the Outro
    audio = render(
        tmp_path, four_sections(pad=False), soundfont, arrangement=["chorus", "Intro x2", "3-4", "Outro"]
    )
    # Then each 4-second item plays its own section's pitch, in that order
    heard = [strongest(audio, start + 0.5, start + 3.5) for start in (0.0, 4.0, 8.0, 12.0, 16.0)]
    assert heard == [76, 69, 69, 72, 79]


def test_a_controller_change_before_the_jump_is_in_force_after_it(tmp_path: Path, soundfont: Path) -> None:
    # Given a song whose organ is turned down (CC7 127 -> 40) where the Verse starts, before the Chorus
    # When the Intro (loud) jumps to the Chorus and back to the Intro
    audio = render(tmp_path, four_sections(), soundfont, arrangement=["Intro", "Chorus", "Intro"])
    intro = band_db(audio, 0.5, 3.5, HZ[69])
    chorus = band_db(audio, 4.5, 7.5, HZ[76])
    intro_again = band_db(audio, 8.5, 11.5, HZ[69])
    # Then the Chorus plays at the Verse's volume (40/127 is about 20 dB down), and the Intro's
    # volume comes back with the Intro
    assert chorus < intro - 12
    assert intro_again == pytest.approx(intro, abs=3)


def test_a_pad_tied_over_the_bar_line_is_heard_from_the_join(tmp_path: Path, soundfont: Path) -> None:
    # Given a pad chord that starts in the Verse and is held into the Chorus
    # When the Intro jumps straight to the Chorus
    audio = render(tmp_path, four_sections(), soundfont, arrangement=["Intro", "Chorus"])
    # Then the pad sounds from the join (it is absent from the Intro)
    assert band_db(audio, 4.05, 5.0, HZ[48]) > band_db(audio, 2.5, 3.45, HZ[48]) + 20


def test_arranged_length_is_the_sum_of_the_items_to_the_sample() -> None:
    # Given the four-section song (each section 2 bars of 2 s)
    arrangement = load_arrangement(four_sections())
    # When five items are arranged at 0.8x with a one-bar count-in
    arranged = arranged_song(arrangement, ["Chorus x2", "1-1", "Outro", "Intro"], tempo=0.8)
    performance = perform(arranged, tempo=0.8, count_in=1)
    # Then the music ends exactly at the items' length (and count-in) at that tempo
    items_s = 4.0 * 2 + 2.0 + 4.0 + 4.0
    assert performance.end_frame == round((items_s + 2.0) / 0.8 * RATE)
    assert arranged.analysis["bars"] == 9
    assert [s["start_bar"] for s in arranged.analysis["sections"]] == [1, 3, 5, 6, 8]


def test_notes_across_a_cut_end_at_the_cut_and_none_hang() -> None:
    # Given the pad held from the Verse into the Chorus
    arrangement = load_arrangement(four_sections())
    # When the Verse is followed by the Outro (the pad is cut at the end of the Verse)
    arranged = arranged_song(arrangement, ["Verse", "Outro"])
    notes = arranged.notes
    pad = notes.part == 1
    # Then the pad ends at the cut (4 s into the arrangement) and every note is released in time
    assert notes.end[pad].max() == pytest.approx(4.0, abs=1e-6)
    assert notes.end.max() <= arranged.end_s + 1e-6
    raw = arranged.raw
    on = ((raw.status & 0xF0) == 0x90) & (raw.d2 > 0)
    off = ((raw.status & 0xF0) == 0x80) | (((raw.status & 0xF0) == 0x90) & (raw.d2 == 0))
    assert on.sum() == off.sum()


def test_click_and_count_in_follow_the_arranged_meter() -> None:
    # Given a song in 4/4 (bars 1-2, "Four") that turns to 3/4 (bars 3-4, "Three")
    data = song_bytes(
        markers=[(0, "Four"), (2 * BAR, "Three")],
        meters=[(0, 4, 4), (2 * BAR, 3, 4)],
        parts=[[(0, 2 * BAR + 6 * TPB - 10, 60)]],
    )
    arrangement = load_arrangement(data)
    # When the 3/4 section comes first, with a one-bar count-in and the click
    arranged = arranged_song(arrangement, ["Three", "Four"])
    performance = perform(arranged, count_in=1, click=True)
    clicks = performance.frame[
        (performance.part == performance.click_part) & ((performance.status & 0xF0) == 0x90)
    ]
    # Then the count-in is one 3/4 bar (three clicks), then 3+3 beats, then 4+4 (beats of 0.5 s)
    beats = np.arange(3 + 6 + 8) * 0.5
    assert np.array_equal(clicks, np.rint(beats * RATE).astype(np.int64))
    accents = performance.d1[
        (performance.part == performance.click_part) & ((performance.status & 0xF0) == 0x90)
    ]
    assert np.flatnonzero(accents == 76).tolist() == [0, 3, 6, 9, 13]


@pytest.mark.parametrize("name", sorted(path.name for path in MIDI_DIR.glob("*.mid")))
def test_real_files_arrange_and_render_without_hanging_notes(
    tmp_path: Path, soundfont: Path, name: str
) -> None:
    # Given a real-world file and its sections
    arrangement = load_arrangement(MIDI_DIR / name)
    sections = arrangement.analysis["sections"]
    second = sections[min(1, len(sections) - 1)]
    items = [
        f"{second['start_bar']}-{min(second['start_bar'] + 3, second['end_bar'])}",
        f"{sections[0]['name']}",
        f"{sections[-1]['start_bar']}-{sections[-1]['end_bar']}",
    ]
    settings = VariantSettings.from_dict({"arrangement": items, "transpose": 1})
    # When an arrangement that jumps about is rendered
    out = tmp_path / "out.wav"
    arranged = arranged_song(arrangement, items)
    result = render_variant(arrangement, settings, out_path=out, soundfont=soundfont)
    # Then every note ends by the end of the arrangement, and the audio dies away after it
    assert arranged.notes.end.max() <= arranged.end_s + 1e-6
    rate, audio = read_wav(out)
    assert arranged.end_s - 0.01 <= audio.shape[0] / rate <= arranged.end_s + 4.0
    assert result.duration_s == pytest.approx(audio.shape[0] / rate, abs=0.01)
    assert np.abs(audio[-rate // 10 :]).max() < 10 ** (-50 / 20)


@pytest.mark.parametrize(
    ("items", "reason"),
    [
        (["Bridge"], "unknown section 'Bridge'; this song's sections are: Intro, Verse, Chorus, Outro"),
        (["7-9"], "bar range 7-9 is outside the song (bars 1 to 8)"),
        (
            ["Chorus x8"] * 36,
            "the arranged song would last 32.0 minutes at this tempo; the limit is 20 minutes",
        ),
    ],
)
def test_song_dependent_bad_arrangements_are_refused_before_rendering(
    tmp_path: Path, soundfont: Path, items: list[str], reason: str
) -> None:
    # Given the four-section song
    arrangement = load_arrangement(four_sections())
    out = tmp_path / "out.mp3"
    # When a render asks for an arrangement the song cannot give (at 0.6x for the long one)
    settings = VariantSettings.from_dict({"arrangement": items, "tempo": 0.6})
    with pytest.raises(InvalidSettings) as refused:
        render_variant(arrangement, settings, out_path=out, soundfont=soundfont)
    # Then it is refused with the reason, and nothing is written
    assert str(refused.value) == reason
    assert not out.exists()


@pytest.mark.parametrize(
    ("items", "reason"),
    [
        (["Intro"] * 65, "arrangement has 65 items; the limit is 64"),
        (["24-17"], "bar range 24-17 is reversed (write 17-24)"),
        (["Chorus x9"], "arrangement item 'Chorus x9' repeats 9 times; repeats must be 1 to 8"),
        (["Chorus x0"], "arrangement item 'Chorus x0' repeats 0 times; repeats must be 1 to 8"),
        ([""], "arrangement item 1 must be a section name or a bar range like 17-24"),
        ({"Intro": 1}, "arrangement must be a list of section names or bar ranges"),
    ],
)
def test_malformed_arrangements_are_refused_by_the_settings(items: object, reason: str) -> None:
    with pytest.raises(InvalidSettings) as refused:
        VariantSettings.from_dict({"arrangement": items})
    assert str(refused.value) == reason


def test_the_arrangement_changes_the_settings_hash_and_the_stem_key() -> None:
    plain = VariantSettings.from_dict({})
    arranged = VariantSettings.from_dict({"arrangement": ["Chorus  x2", "17-24"]})
    assert arranged.to_dict()["arrangement"] == ["Chorus x2", "17-24"]
    assert arranged.cache_key() != plain.cache_key()
    assert arranged.stem_key() != plain.stem_key()
    # Absent or empty is the song as written, with the hash it always had
    assert VariantSettings.from_dict({"arrangement": []}).cache_key() == plain.cache_key()
    assert "arrangement" not in plain.to_dict()
    # With or without a space before the repeat count
    assert VariantSettings.from_dict({"arrangement": ["Chorusx2"]}).arrangement == ("Chorus x2",)


def test_cached_stems_of_an_arrangement_do_not_outlive_a_correction_of_the_sections(
    tmp_path: Path, soundfont: Path
) -> None:
    # given: per-part stems of an arranged variant
    from tracks.engine import prepare_stems

    arrangement = load_arrangement(four_sections())
    settings = VariantSettings(arrangement=["Chorus", "Intro"])
    assert prepare_stems(arrangement, settings, soundfont=soundfont, stem_dir=tmp_path)
    reused = render_variant(
        arrangement, settings, out_path=tmp_path / "a.mp3", soundfont=soundfont, stem_dir=tmp_path
    )
    assert reused.stems_reused

    # when: the producer moves where the chorus starts (same settings, other bars)
    sections = [dict(section) for section in arrangement.analysis["sections"]]
    chorus = next(section for section in sections if section["name"].lower() == "chorus")
    chorus["start_bar"] += 1
    arrangement.analysis["sections"] = sections

    # then: the old stems are not used for the new bars
    again = render_variant(
        arrangement, settings, out_path=tmp_path / "b.mp3", soundfont=soundfont, stem_dir=tmp_path
    )
    assert not again.stems_reused
