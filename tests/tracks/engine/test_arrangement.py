"""The song starts where its music starts: empty bars before the first note are cut at load (a pickup
bar kept), consistently for every consumer of the arrangement, and only as recorded for stored songs."""

import io
from collections.abc import Sequence
from pathlib import Path

import mido
import numpy as np
import pytest

from tracks.engine import VariantSettings, load_arrangement, render_variant
from tracks.engine.transform import perform

from .conftest import read_wav

TPB = 480


def leading_silence_song(
    *,
    first_beat: float,
    bars: int = 8,
    bpm: float = 120.0,
    conductor: Sequence[tuple[float, mido.MetaMessage]] = (),
    setup: Sequence[tuple[float, mido.Message]] = (),
) -> bytes:
    """A melody (C major, quarter notes) and a bass from ``first_beat`` on for ``bars`` bars of 4/4;
    ``conductor`` meta events and ``setup`` channel messages at the given beats."""
    midi = mido.MidiFile(type=1, ticks_per_beat=TPB)
    meta = [
        (0.0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))),
        (0.0, mido.MetaMessage("time_signature", numerator=4, denominator=4)),
        (0.0, mido.MetaMessage("marker", text="Intro")),
        *conductor,
    ]
    midi.tracks.append(_track(meta))
    melody = [(first_beat + beat, 1.0, 60 + (0, 2, 4, 5, 7, 5, 4, 2)[beat % 8]) for beat in range(bars * 4)]
    bass = [(first_beat + 4 * bar, 4.0, 36 + (0, 5, 7, 0)[bar % 4]) for bar in range(bars)]
    for channel, notes in ((0, melody), (1, bass)):
        events: list[tuple[float, mido.Message]] = [(0.0, mido.Message("program_change", channel=channel))]
        events += [(beat, message.copy(channel=channel)) for beat, message in setup]
        for start, length, pitch in notes:
            events.append((start, mido.Message("note_on", channel=channel, note=pitch, velocity=90)))
            events.append((start + length - 0.01, mido.Message("note_off", channel=channel, note=pitch)))
        midi.tracks.append(_track(events))
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def _track(events: Sequence[tuple[float, mido.Message | mido.MetaMessage]]) -> mido.MidiTrack:
    track = mido.MidiTrack()
    now = 0
    for beat, message in sorted(events, key=lambda item: item[0]):
        tick = round(beat * TPB)
        track.append(message.copy(time=tick - now))
        now = tick
    return track


def test_six_seconds_of_nothing_before_the_music_are_cut_to_whole_bars() -> None:
    # Given a song whose first note comes after three empty bars (6 s at 120 bpm)
    data = leading_silence_song(first_beat=12.0)
    # When it is loaded
    arrangement = load_arrangement(data)
    analysis = arrangement.analysis
    # Then the three bars are gone and recorded, and every measure of time starts with the music
    assert (arrangement.lead_trim_bars, analysis["lead_trim_bars"]) == (3, 3)
    assert analysis["start_s"] == 0.0
    assert analysis["bars"] == 8
    assert analysis["duration_s"] == pytest.approx(16.0, abs=0.05)
    assert analysis["timeline"]["end_s"] == pytest.approx(16.0, abs=0.05)
    assert analysis["sections"][0]["start_s"] == 0.0
    assert analysis["sections"][-1]["end_bar"] == 8
    assert float(arrangement.notes.start.min()) == 0.0
    # And the marker before the music still names the song's first section
    assert arrangement.raw.markers == [(0, "Intro")]


def test_the_state_before_the_cut_is_kept_at_the_new_start() -> None:
    # Given three empty bars during which the tempo drops to 100 bpm, the meter changes to 3/4 and
    # the channels get a program and a volume
    data = leading_silence_song(
        first_beat=10.0,
        bpm=120.0,
        conductor=[
            (4.0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100))),
            (4.0, mido.MetaMessage("time_signature", numerator=3, denominator=4)),
        ],
        setup=[
            (5.0, mido.Message("program_change", program=40)),
            (6.0, mido.Message("control_change", control=7, value=50)),
        ],
    )
    # When it is loaded
    arrangement = load_arrangement(data)
    raw = arrangement.raw
    # Then it starts at the first note's bar (bar 1 of 4/4, then bars of 3/4: the note on beat 10
    # is on the downbeat of bar 4) in the tempo, meter and channel state of that moment
    assert arrangement.lead_trim_bars == 3
    assert raw.tempos[0] == (0, mido.bpm2tempo(100))
    assert raw.time_signatures[0] == (0, 3, 4)
    assert [part.program for part in arrangement.parts] == [40, 40]
    volume = (raw.status & 0xF0 == 0xB0) & (raw.d1 == 7)
    assert raw.tick[volume].tolist() == [0, 0]
    assert raw.d2[volume].tolist() == [50, 50]
    assert arrangement.analysis["timeline"]["tempos"][0] == [0.0, 100.0]
    assert arrangement.analysis["time_signature"] == "3/4"
    assert float(arrangement.notes.start.min()) == 0.0


def test_a_pickup_bar_is_kept_before_its_downbeat() -> None:
    # Given a pickup on the last beat of the third bar, after two empty bars (5.5 s of nothing)
    data = leading_silence_song(first_beat=11.0)
    # When it is loaded
    analysis = load_arrangement(data).analysis
    # Then the empty bars go but the pickup bar stays: the music starts on its fourth beat
    assert analysis["lead_trim_bars"] == 2
    assert analysis["start_s"] == pytest.approx(1.5, abs=0.001)


def test_a_pickup_in_the_first_bar_is_left_intact() -> None:
    # Given a song whose pickup is the last beat of bar 1 (1.5 s before it)
    data = leading_silence_song(first_beat=3.0)
    # When it is loaded
    analysis = load_arrangement(data).analysis
    # Then nothing is cut
    assert analysis["lead_trim_bars"] == 0
    assert analysis["start_s"] == pytest.approx(1.5, abs=0.001)
    assert analysis["bars"] == 9


def test_a_stored_song_keeps_the_trim_it_was_analysed_with() -> None:
    # Given a song with three empty bars, as analysed before the engine cut them (no trim recorded)
    data = leading_silence_song(first_beat=12.0)
    # When it is loaded with the recorded trim (0), or with more bars than are empty
    old = load_arrangement(data, lead_trim_bars=0)
    capped = load_arrangement(data, lead_trim_bars=10)
    # Then the old one keeps its bars and seconds, and no trim ever cuts into the music
    assert (old.lead_trim_bars, old.analysis["start_s"], old.analysis["bars"]) == (0, 6.0, 11)
    assert capped.lead_trim_bars == 3
    assert capped.analysis["start_s"] == 0.0
    # And the two are different songs to every cache
    assert old.sha256 != capped.sha256


def test_count_in_and_click_follow_the_trimmed_song() -> None:
    # Given the song with three empty bars, loaded (and cut)
    arrangement = load_arrangement(leading_silence_song(first_beat=12.0))
    # When it is performed with a one-bar count-in and a click
    performance = perform(arrangement, count_in=1, click=True)
    # Then the first note sounds right after the count-in (2 s), on a downbeat click
    notes = (performance.status & 0xF0 == 0x90) & (performance.d2 > 0) & (performance.part >= 0)
    music = notes & (performance.part < performance.click_part)
    clicks = notes & (performance.part == performance.click_part)
    first = int(performance.frame[music].min())
    assert first == round(2.0 * performance.sample_rate)
    assert first in performance.frame[clicks].tolist()
    assert performance.end_frame == pytest.approx((2.0 + 16.0) * performance.sample_rate, abs=2205)


def test_the_render_starts_with_the_music(tmp_path: Path, soundfont: Path) -> None:
    # Given the song with three empty bars
    arrangement = load_arrangement(leading_silence_song(first_beat=12.0))
    out = tmp_path / "song.wav"
    # When it is rendered
    result = render_variant(arrangement, VariantSettings(), out_path=out, soundfont=soundfont)
    rate, audio = read_wav(out)
    # Then it lasts the music (16 s) plus its release, and sound starts within 0.1 s
    assert 16.0 <= audio.shape[0] / rate <= 16.0 + 4.0
    assert result.duration_s == pytest.approx(audio.shape[0] / rate, abs=0.01)
    level = np.abs(audio).max(axis=1) if audio.ndim == 2 else np.abs(audio)
    assert int(np.argmax(level > 10 ** (-40 / 20))) / rate < 0.1
