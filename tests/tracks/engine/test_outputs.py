"""Outputs of a render: split layout, stems ZIP, MIDI, WAV and FLAC masters."""

import dataclasses
import io
import json
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import mido
import numpy as np
import pytest
from scipy.io import wavfile

from tracks.demo import compose_song
from tracks.engine import (
    InvalidSettings,
    VariantSettings,
    integrated_loudness,
    load_arrangement,
    prepare_stems,
    render_variant,
)
from tracks.engine import render as render_module
from tracks.engine.arrangement import Arrangement
from tracks.engine.master import LoudnessMeter
from tracks.engine.mix import StemMixer
from tracks.engine.transform import count_in_seconds

from .conftest import read_wav

VARIANT = {"transpose": 2, "tempo": 0.8, "click": True, "count_in": 1, "mix": {"2": {"gain_db": -6.0}}}


def energy_db(signal: np.ndarray, reference: np.ndarray) -> float:
    return float(10 * np.log10(max(float(np.sum(signal**2)), 1e-30) / float(np.sum(reference**2))))


@pytest.fixture(scope="module")
def song() -> Arrangement:
    # Five parts (melody, drums, bass, piano, guitar), D major at 106 bpm, about 30 s
    return load_arrangement(compose_song(style="pop", minutes=0.5, parts=5, seed=2))


@pytest.fixture(scope="module")
def gentle_song() -> Arrangement:
    """Sustained organ and strings chords: loud enough for -14 LUFS without the limiter acting.
    Two sections of four bars, "Verse" and "Chorus", marked."""
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    conductor = mido.MidiTrack(
        [
            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(90), time=0),
            mido.MetaMessage("marker", text="Verse", time=0),
            mido.MetaMessage("marker", text="Chorus", time=4 * 1920),
        ]
    )
    midi.tracks.append(conductor)
    chords = [(62, 66, 69), (59, 62, 66), (55, 59, 62), (57, 61, 64)] * 2
    for channel, (name, program, shift) in enumerate((("Organ", 19, 0), ("Strings", 48, -12))):
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0)])
        track.append(mido.Message("program_change", channel=channel, program=program, time=0))
        for chord in chords:
            for number, pitch in enumerate(chord):
                track.append(
                    mido.Message("note_on", channel=channel, note=pitch + shift, velocity=70, time=0)
                )
                del number
            for number, pitch in enumerate(chord):
                track.append(
                    mido.Message(
                        "note_off", channel=channel, note=pitch + shift, time=1920 if number == 0 else 0
                    )
                )
        midi.tracks.append(track)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return load_arrangement(buffer.getvalue())


def render(song: Arrangement, path: Path, soundfont: Path, **changes: object) -> Path:
    settings = VariantSettings.from_dict({**VARIANT, **changes})
    render_variant(song, settings, out_path=path, soundfont=soundfont)
    return path


def test_split_layout_keeps_click_left_and_band_right(
    song: Arrangement, tmp_path: Path, soundfont: Path
) -> None:
    # Given the song with a click and without one, both split
    with_click = render(song, tmp_path / "click.wav", soundfont, layout="split", count_in=0)
    without = render(song, tmp_path / "plain.wav", soundfont, layout="split", click=False, count_in=0)
    # When the channels are read
    _, clicked = read_wav(with_click)
    _, plain = read_wav(without)
    frames = min(len(clicked), len(plain))
    # Then without a click the left ear hears nothing of the band (at most -60 dB of the right)
    assert energy_db(plain[:, 0], plain[:, 1]) <= -60
    # and the click is in the left ear, not in the right one: the right channel is the same band
    assert energy_db(clicked[:, 0], clicked[:, 1]) > -30
    assert np.max(np.abs(clicked[:frames, 1] - plain[:frames, 1])) <= 2 / 32768  # dither at most
    # and the band is mono: the right channel is not the stereo mix's left
    _, stereo = read_wav(render(song, tmp_path / "stereo.wav", soundfont, click=False, count_in=0))
    assert energy_db(stereo[:, 0] - stereo[:, 1], stereo[:, 0]) > -40


def test_split_click_level_does_not_follow_the_band(
    song: Arrangement, tmp_path: Path, soundfont: Path
) -> None:
    # Given two split renders whose bands differ by 12 dB before mastering (every part at -12 dB)
    quiet_mix = {str(index): {"gain_db": -12.0} for index in range(len(song.parts))}
    _, normal = read_wav(render(song, tmp_path / "a.wav", soundfont, layout="split"))
    _, quiet = read_wav(render(song, tmp_path / "b.wav", soundfont, layout="split", mix=quiet_mix))
    # Then the click in the left ear peaks at the same level in both
    assert np.max(np.abs(normal[:, 0])) == pytest.approx(np.max(np.abs(quiet[:, 0])), abs=0.01)
    assert np.max(np.abs(normal[:, 0])) > 0.1


def record_mastering(monkeypatch: pytest.MonkeyPatch) -> list[tuple[np.ndarray, float]]:
    """From now on, every render's mix as it is mastered (before the master gain and limiter), with
    its master gain (dB): what ``plan_master`` is given and plans."""
    recorded: list[tuple[np.ndarray, float]] = []
    plan_master = render_module.plan_master

    def spy(paths: list[Path], gains: list[float], stem_set: Any, config: Any) -> Any:
        summary, frames, plan = plan_master(paths, gains, stem_set, config)
        mixer = StemMixer(paths, gains)
        try:
            recorded.append((mixer.read(frames), plan.gain_db))
        finally:
            mixer.close()
        return summary, frames, plan

    monkeypatch.setattr(render_module, "plan_master", spy)
    return recorded


def section_levels(signal: np.ndarray, spans: list[tuple[float, float]]) -> list[float]:
    """K-weighted level (dB, ungated) of each (start_s, end_s) span of a (frames, channels) signal."""
    levels = []
    for start, end in spans:
        meter = LoudnessMeter(44_100, channels=signal.shape[1])
        meter.add(signal[round(start * 44_100) : round(end * 44_100)].astype(np.float32))
        levels.append(float(10 * np.log10(meter.hop_energy.mean())))
    return levels


def test_split_band_follows_the_dynamics_and_the_click_does_not(
    song: Arrangement, tmp_path: Path, soundfont: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the song split (a bar of count-in, a click) as written and with a quieter verse, fuller chorus
    changes = {"layout": "split", "tempo": 1.0, "count_in": 1}
    mastered = record_mastering(monkeypatch)
    _, plain = read_wav(render(song, tmp_path / "plain.wav", soundfont, **changes))
    settings = VariantSettings.from_dict({**VARIANT, **changes, "dynamics": {"Verse 1": -6, "Chorus 1": 3}})
    result = render_variant(song, settings, out_path=tmp_path / "shaped.wav", soundfont=soundfont)
    _, shaped = read_wav(tmp_path / "shaped.wav")
    # When each section of the band is measured before mastering, away from the one-beat ramps
    offset = count_in_seconds(song, count_in=1, tempo=1.0)
    beat = 60 / song.analysis["tempo_bpm"]
    sections = song.analysis["sections"]
    assert [section["name"] for section in sections] == ["Verse 1", "Chorus 1"]
    spans = [(offset + s["start_s"] + 2 * beat, offset + s["end_s"] - 2 * beat) for s in sections]
    (plain_band, _), (shaped_band, _) = mastered
    before, after = section_levels(plain_band, spans), section_levels(shaped_band, spans)
    # Then each section changed by the dB asked for
    assert after[0] - before[0] == pytest.approx(-6.0, abs=1.5)
    assert after[1] - before[1] == pytest.approx(3.0, abs=1.5)
    # and in the right ear the chorus stands out from the verse by at least 6 dB more than as written
    # (the limiter takes some of the fuller chorus back; the velocities alone make about 4)
    right_before, right_after = section_levels(plain[:, 1:], spans), section_levels(shaped[:, 1:], spans)
    assert (right_after[1] - right_after[0]) - (right_before[1] - right_before[0]) > 6.0
    # and the click in the left ear is the same as without dynamics (dither at most)
    frames = min(len(plain), len(shaped))
    assert np.max(np.abs(shaped[:frames, 0] - plain[:frames, 0])) <= 2 / 32768
    # and the render says what it played
    assert result.dynamics["sections"] == [
        {"index": 0, "name": "Verse 1", "gain_db": -6.0},
        {"index": 1, "name": "Chorus 1", "gain_db": 3.0},
    ]


def read_stems(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        stems = {}
        for entry in manifest["files"]:
            rate, data = wavfile.read(io.BytesIO(archive.read(entry["file"])))
            assert rate == manifest["sample_rate"]
            stems[entry["file"]] = data.astype(np.float64) / 32768.0
    return manifest, stems


def test_stems_zip_holds_aligned_stems_of_the_audible_parts(
    song: Arrangement, tmp_path: Path, soundfont: Path
) -> None:
    # Given a variant with part 3 (Piano) muted and a click
    mix = {"2": {"gain_db": -6.0}, "3": {"mute": True}}
    path = render(song, tmp_path / "stems.zip", soundfont, format="stems", mix=mix)
    master = render(song, tmp_path / "master.wav", soundfont, mix=mix)
    # When the ZIP is opened
    manifest, stems = read_stems(path)
    # Then it has one WAV per audible part, numbered, plus the click, all as long as the master
    assert list(stems) == ["01 Lead melody.wav", "02 Drums.wav", "03 Bass.wav", "04 Guitar.wav", "Click.wav"]
    assert [entry["part"] for entry in manifest["files"]] == [0, 1, 2, 4, None]
    assert [entry["gain_db"] for entry in manifest["files"]] == [0.0, 0.0, -6.0, 0.0, 0.0]
    _, mastered = read_wav(master)
    assert {len(stem) for stem in stems.values()} == {len(mastered)}
    assert manifest["key"] == "E major"
    assert manifest["tempo_bpm"] == pytest.approx(song.analysis["tempo_bpm"] * 0.8, abs=0.1)
    # and every stem sounds
    assert all(np.max(np.abs(stem)) > 0.001 for stem in stems.values())


def test_stems_sum_to_the_master_before_its_limiter(
    gentle_song: Arrangement, tmp_path: Path, soundfont: Path
) -> None:
    # Given a song the limiter leaves alone, as stems and as a WAV master
    changes = {"transpose": 0, "tempo": 1.0, "click": False, "count_in": 0, "mix": {"1": {"gain_db": -4.0}}}
    manifest, stems = read_stems(
        render(gentle_song, tmp_path / "s.zip", soundfont, format="stems", **changes)
    )
    _, master = read_wav(render(gentle_song, tmp_path / "m.wav", soundfont, **changes))
    # When the stems are summed with their gains and the master gain
    total = sum(stems[entry["file"]] * 10 ** (entry["gain_db"] / 20) for entry in manifest["files"])
    total = total * 10 ** (manifest["master_gain_db"] / 20)
    # Then the sum is the master within -40 dB
    assert energy_db(total - master, master) <= -40


def test_stems_with_dynamics_sum_to_the_master_before_its_limiter(
    gentle_song: Arrangement, tmp_path: Path, soundfont: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the song with a quieter verse and a fuller chorus, a click and spoken cues, as stems
    changes = {
        "transpose": 0,
        "tempo": 1.0,
        "count_in": 1,
        "cues": True,
        "mix": {"1": {"gain_db": -4.0}},
        "dynamics": {"Verse": -6, "Chorus": 3},
    }
    settings = VariantSettings.from_dict({**VARIANT, **changes})
    result = render_variant(
        gentle_song,
        dataclasses.replace(settings, format="stems"),
        out_path=tmp_path / "s.zip",
        soundfont=soundfont,
    )
    manifest, stems = read_stems(tmp_path / "s.zip")
    assert [entry["file"] for entry in manifest["files"]] == [
        "01 Organ.wav",
        "02 Strings.wav",
        "Click.wav",
        "Cues.wav",
    ]
    # and the WAV master's mix and gain before its limiter (the click peaks past the ceiling)
    mastered = record_mastering(monkeypatch)
    render_variant(gentle_song, settings, out_path=tmp_path / "m.wav", soundfont=soundfont)
    ((mix, gain_db),) = mastered
    master = mix * 10 ** (gain_db / 20)
    # When the stems are summed with their gains and the master gain
    total = sum(stems[entry["file"]] * 10 ** (entry["gain_db"] / 20) for entry in manifest["files"])
    total = total * 10 ** (manifest["master_gain_db"] / 20)
    # Then the sum is that master within -40 dB: the organ and strings carry the sections' levels,
    # the click and the cues keep theirs
    assert total.shape == master.shape
    assert energy_db(total - master, master) <= -40
    # and the render says which section levels it played
    assert [(level["name"], level["gain_db"]) for level in result.dynamics["sections"]] == [
        ("Verse", -6.0),
        ("Chorus", 3.0),
    ]


def test_midi_export_round_trips_through_the_analyzer_and_mido(
    song: Arrangement, tmp_path: Path, soundfont: Path
) -> None:
    # Given the variant (+2, 0.8x, one bar of count-in, click, Bass at -6 dB, Guitar muted) as MIDI
    mix = {"2": {"gain_db": -6.0}, "4": {"mute": True}}
    path = render(song, tmp_path / "variant.mid", soundfont, mix=mix)
    # When the analyzer reads it back
    exported = load_arrangement(path.read_bytes())
    # Then it is in the new key at the new tempo
    assert exported.analysis["key"] == "E major"
    assert exported.analysis["tempo_bpm"] == pytest.approx(song.analysis["tempo_bpm"] * 0.8, abs=0.1)
    # and mido sees a type-1 file: conductor, the four audible parts and the click track
    midi = mido.MidiFile(path)
    assert midi.type == 1
    names = [track.name for track in midi.tracks]
    assert names == ["Backtrack", "Lead melody", "Drums", "Bass", "Piano", "Click"]
    original = {track.name: track for track in song.midi.tracks}

    def pitches(track: mido.MidiTrack) -> list[int]:
        return [m.note for m in track if m.type == "note_on" and m.velocity > 0]

    by_name = {track.name: track for track in midi.tracks}
    # the melody is two semitones up, the drums untouched
    assert pitches(by_name["Lead melody"]) == [p + 2 for p in pitches(original["Lead melody"])]
    assert pitches(by_name["Drums"]) == pitches(original["Drums"])
    # the bass carries its gain as CC7, the click is on channel 10 and counts the bar in
    volumes = [m.value for m in by_name["Bass"] if m.type == "control_change" and m.control == 7]
    assert volumes
    assert volumes[0] == 50
    clicks = [m for m in by_name["Click"] if m.type == "note_on" and m.velocity > 0]
    assert {m.channel for m in clicks} == {9}
    first_note = min(
        sum(m.time for m in track[: i + 1])
        for track in midi.tracks[1:-1]
        for i, m in enumerate(track)
        if m.type == "note_on" and m.velocity > 0
    )
    assert first_note >= 4 * midi.ticks_per_beat  # one 4/4 bar of count-in before the song
    # and the tempo events are scaled
    tempos = [m.tempo for m in midi.tracks[0] if m.type == "set_tempo"]
    assert mido.tempo2bpm(tempos[0]) == pytest.approx(song.analysis["tempo_bpm"] * 0.8, abs=0.1)


def test_midi_export_marks_sections(song: Arrangement, tmp_path: Path, soundfont: Path) -> None:
    # Given an arrangement whose analysis has sections
    sectioned = dataclasses.replace(
        song,
        analysis={
            **song.analysis,
            "sections": [
                {"name": "Intro", "start_s": 0.0},
                {"name": "Verse", "start_s": 60 / song.analysis["tempo_bpm"] * 8},
            ],
        },
    )
    # When it is exported with a bar of count-in
    path = render(sectioned, tmp_path / "s.mid", soundfont)
    # Then each section has a marker at its bar (the count-in bar shifts them by one)
    midi = mido.MidiFile(path)
    markers, now = [], 0
    for message in midi.tracks[0]:
        now += message.time
        if message.type == "marker":
            markers.append((message.text, now))
    assert markers == [("Intro", 4 * 480), ("Verse", 12 * 480)]


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_lossless_masters_are_at_the_loudness_target(
    song: Arrangement, tmp_path: Path, soundfont: Path, suffix: str
) -> None:
    # Given the variant as WAV or FLAC
    path = render(
        song, tmp_path / f"master{suffix}", soundfont, format=suffix.strip(".").replace("wav", "wav")
    )
    # When it is decoded
    decoded = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "f32le", "-ac", "2", "-"],
        capture_output=True,
        check=True,
    ).stdout
    samples = np.frombuffer(decoded, dtype=np.float32).reshape(-1, 2)
    # Then it is at -14 LUFS
    assert integrated_loudness(samples, 44_100) == pytest.approx(-14.0, abs=0.5)


def decode(path: Path) -> np.ndarray:
    decoded = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "f32le", "-ac", "2", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(decoded, dtype=np.float32).reshape(-1, 2)


def test_flac_plays_the_dynamics_of_the_wav_master(
    song: Arrangement, tmp_path: Path, soundfont: Path
) -> None:
    # Given the variant with a quieter verse and a fuller chorus as WAV and as FLAC
    settings = VariantSettings.from_dict({**VARIANT, "dynamics": {"Verse 1": -6, "Chorus 1": 3}})
    wav = render_variant(song, settings, out_path=tmp_path / "m.wav", soundfont=soundfont)
    flac = render_variant(
        song, dataclasses.replace(settings, format="flac"), out_path=tmp_path / "m.flac", soundfont=soundfont
    )
    # Then both hold the same samples (dither at most) and say they played the same sections
    wav_samples, flac_samples = decode(tmp_path / "m.wav"), decode(tmp_path / "m.flac")
    assert wav_samples.shape == flac_samples.shape
    assert np.max(np.abs(wav_samples - flac_samples)) <= 2 / 32768
    assert flac.dynamics == wav.dynamics
    assert flac.dynamics["summary"] == "dynamics: Verse 1 -6 dB, Chorus 1 +3 dB"


def test_unknown_format_and_layout_are_refused() -> None:
    with pytest.raises(InvalidSettings, match="format must be one of"):
        VariantSettings.from_dict({"format": "ogg"})
    with pytest.raises(InvalidSettings, match="layout must be one of"):
        VariantSettings.from_dict({"layout": "left"})


def test_format_is_part_of_the_hash_and_defaults_keep_old_hashes() -> None:
    plain = VariantSettings.from_dict({"transpose": 1})
    assert VariantSettings.from_dict({"transpose": 1, "format": "mp3", "layout": "stereo"}) == plain
    assert plain.cache_key() == VariantSettings(transpose=1).cache_key()
    keys = {
        VariantSettings.from_dict({"transpose": 1, "format": name}).cache_key() for name in ("mp3", "stems")
    }
    assert len(keys) == 2
    assert VariantSettings.from_dict({"format": "midi"}).to_dict()["format"] == "midi"


def lyrics_and_cue_points(track: mido.MidiTrack) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    lyrics, cue_points, now = [], [], 0
    for message in track:
        now += message.time
        if message.type == "lyrics":
            lyrics.append((message.text, now))
        elif message.type == "cue_marker":
            cue_points.append((message.text, now))
    return lyrics, cue_points


def test_midi_export_carries_the_spoken_cues_on_the_click_track(
    song: Arrangement, tmp_path: Path, soundfont: Path
) -> None:
    # Given the variant (a bar of count-in, 0.8x) with spoken cues, as MIDI
    path = render(song, tmp_path / "cues.mid", soundfont, cues=True)
    midi = mido.MidiFile(path)
    tpb = midi.ticks_per_beat
    # When its click track and its section markers are read
    click = next(track for track in midi.tracks if track.name == "Click")
    lyrics, cue_points = lyrics_and_cue_points(click)
    markers, now = {}, 0
    for message in midi.tracks[0]:
        now += message.time
        if message.type == "marker":
            markers[message.text] = now
    # Then the count-in words fall on its four beats and each later section is named a bar before it
    sections = [section["name"] for section in song.analysis["sections"]]
    assert len(sections) >= 2
    expected = [("one", 0), ("two", tpb), ("three", 2 * tpb), ("four", 3 * tpb)]
    expected += [(name, markers[name] - 4 * tpb) for name in sections[1:]]
    assert lyrics == expected
    assert cue_points == expected
    # and a click track without cues has none
    plain = mido.MidiFile(render(song, tmp_path / "plain.mid", soundfont))
    assert lyrics_and_cue_points(next(t for t in plain.tracks if t.name == "Click")) == ([], [])


def test_midi_cues_without_a_click_get_a_track_of_their_own(
    song: Arrangement, tmp_path: Path, soundfont: Path
) -> None:
    # Given spoken cues with neither a click nor a count-in (only the section names are spoken)
    path = render(song, tmp_path / "cues.mid", soundfont, cues=True, click=False, count_in=0)
    midi = mido.MidiFile(path)
    # Then the names are on a "Cues" track that plays no notes
    assert midi.tracks[-1].name == "Cues"
    lyrics, _ = lyrics_and_cue_points(midi.tracks[-1])
    assert [text for text, _ in lyrics] == [section["name"] for section in song.analysis["sections"][1:]]
    assert not [message for message in midi.tracks[-1] if message.type == "note_on"]


def wav_data(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_stems_zip_from_cached_stems_is_the_zip_synthesized_afresh(
    song: Arrangement, tmp_path: Path, soundfont: Path
) -> None:
    # Given a stems ZIP rendered before the render's per-part stems were cached
    settings = VariantSettings.from_dict({**VARIANT, "format": "stems", "mix": {"3": {"mute": True}}})
    stems = tmp_path / "stems"
    fresh = render_variant(
        song, settings, out_path=tmp_path / "fresh.zip", soundfont=soundfont, stem_dir=stems
    )
    # When the stems are cached (the background job after a first render) and the ZIP is made again
    assert prepare_stems(song, settings, soundfont=soundfont, stem_dir=stems)
    cached = render_variant(
        song, settings, out_path=tmp_path / "cached.zip", soundfont=soundfont, stem_dir=stems
    )
    # Then the second was built from the cache, without synthesis, and holds the very same files
    assert not fresh.stems_reused
    assert cached.stems_reused
    assert wav_data(tmp_path / "fresh.zip") == wav_data(tmp_path / "cached.zip")
    # And the ZIP deleted none of the cached stems it read (only stems synthesized for it alone go)
    cached_stems = sorted(stems.rglob("*.npy"))
    assert len(cached_stems) >= len(song.parts)
    assert all(path.stat().st_size > 0 for path in cached_stems)
    assert not prepare_stems(song, settings, soundfont=soundfont, stem_dir=stems)
