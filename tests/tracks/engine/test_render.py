"""Renders checked as audio: pitch by FFT, length by onsets, loudness by the meter, nothing left hanging."""

import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tracks.engine.encode as encode_module
from tracks.demo import compose_song
from tracks.engine import (
    EngineConfig,
    InvalidSettings,
    PartMix,
    RenderFailed,
    VariantSettings,
    integrated_loudness,
    load_arrangement,
    mp3frames,
    prepare_stems,
    render_variant,
    true_peak_dbtp,
)

from .conftest import MIDI_DIR, midi_bytes, read_wav

FLUTE = 73


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    mono = samples.mean(axis=1)
    window = mono[rate // 2 : rate // 2 + rate * 2] * np.hanning(rate * 2)
    spectrum = np.abs(np.fft.rfft(window, n=rate * 8))
    return float(np.argmax(spectrum)) * rate / (rate * 8)


def render_wav(tmp_path: Path, data: bytes, soundfont: Path, **settings: Any) -> tuple[int, np.ndarray]:
    out = tmp_path / f"render-{len(list(tmp_path.iterdir()))}.wav"
    render_variant(load_arrangement(data), VariantSettings(**settings), out_path=out, soundfont=soundfont)
    return read_wav(out)


def test_plus_three_semitones_measures_three_semitones_higher(tmp_path: Path, soundfont: Path) -> None:
    # Given a held piano A4 (the piano's samples are the best tuned in TimGM6mb)
    data = midi_bytes([(0, 6, 69)], program=0)
    # When it is rendered as written and three semitones up
    rate, original = render_wav(tmp_path, data, soundfont)
    _, raised = render_wav(tmp_path, data, soundfont, transpose=3)
    # Then the pitch measured in the audio rises by 3 semitones (C5 against A4)
    semitones = 12 * np.log2(dominant_frequency(raised, rate) / dominant_frequency(original, rate))
    assert semitones == pytest.approx(3.0, abs=0.1)
    assert 12 * np.log2(dominant_frequency(original, rate) / 440.0) == pytest.approx(0.0, abs=0.1)


def test_drum_only_file_renders_identically_at_every_transposition(tmp_path: Path, soundfont: Path) -> None:
    # Given a drum pattern on channel 10
    data = midi_bytes(
        [(beat / 2, 0.25, 36 if beat % 4 == 0 else 42) for beat in range(16)], channel=9, program=None
    )
    # When it is rendered at the extremes and in between
    _, reference = render_wav(tmp_path, data, soundfont)
    renders = [render_wav(tmp_path, data, soundfont, transpose=shift)[1] for shift in (-12, 5, 12)]
    # Then every render is sample-for-sample the same audio
    for audio in renders:
        assert np.array_equal(audio, reference)


def onset_seconds(samples: np.ndarray, rate: int, after_s: float) -> float:
    level = np.abs(samples).max(axis=1)
    start = int(after_s * rate)
    threshold = level.max() * 0.1
    return (start + int(np.argmax(level[start:] > threshold))) / rate


def test_point_eight_times_tempo_is_one_point_two_five_times_as_long(tmp_path: Path, soundfont: Path) -> None:
    # Given two drum hits eight seconds apart, with a tempo change in between
    data = midi_bytes([(0, 0.25, 38), (16, 0.25, 38)], channel=9, program=None, bpm=120)
    # When it is rendered at the original tempo and at 0.8x
    rate, original = render_wav(tmp_path, data, soundfont)
    _, slower = render_wav(tmp_path, data, soundfont, tempo=0.8)
    # Then the second hit comes 1.25x as late (within 1%)
    first = onset_seconds(original, rate, 1.0)
    second = onset_seconds(slower, rate, 1.0)
    assert first == pytest.approx(8.0, abs=0.02)
    assert second / first == pytest.approx(1.25, rel=0.01)


def test_master_reaches_minus_14_lufs_under_minus_1_dbtp(tmp_path: Path, soundfont: Path) -> None:
    # Given a real folk tune
    arrangement = load_arrangement(MIDI_DIR / "folk_jig_melody.mid")
    out = tmp_path / "jig.wav"
    # When it is rendered
    result = render_variant(arrangement, VariantSettings(), out_path=out, soundfont=soundfont)
    # Then the file itself measures -14 LUFS +-1 and at most -1 dBTP on the independent meter
    rate, audio = read_wav(out)
    assert integrated_loudness(audio.astype(np.float32), rate) == pytest.approx(-14.0, abs=1.0)
    assert true_peak_dbtp(audio.astype(np.float32), rate) <= -1.0
    assert result.lufs == pytest.approx(-14.0, abs=0.5)
    assert len(result.peaks) > 500
    assert result.key == "G major"


@pytest.mark.parametrize("name", sorted(path.name for path in MIDI_DIR.glob("*.mid")))
def test_real_world_file_renders_without_stuck_notes(tmp_path: Path, soundfont: Path, name: str) -> None:
    # Given a real-world file (bohemian_gm releases its sustain pedal exactly at the end)
    arrangement = load_arrangement(MIDI_DIR / name)
    out = tmp_path / "out.wav"
    # When it is rendered
    result = render_variant(arrangement, VariantSettings(), out_path=out, soundfont=soundfont)
    # Then the audio stops within a few seconds of the music's end and the last moments are quiet
    rate, audio = read_wav(out)
    end = arrangement.analysis["duration_s"]
    assert end - 0.5 <= audio.shape[0] / rate <= end + 4.0
    assert result.duration_s == pytest.approx(audio.shape[0] / rate, abs=0.01)
    tail = np.abs(audio[-rate // 10 :]).max()
    assert tail < 10 ** (-50 / 20)


def test_mix_change_reuses_stems_and_mute_removes_the_part(tmp_path: Path, soundfont: Path) -> None:
    # Given a three-part arrangement rendered once with a stem folder
    arrangement = load_arrangement(MIDI_DIR / "folk_melody_chords.mid")
    stems = tmp_path / "stems"
    first = render_variant(
        arrangement,
        VariantSettings(transpose=2),
        out_path=tmp_path / "a.wav",
        soundfont=soundfont,
        stem_dir=stems,
    )
    # And its per-part stems prepared (a background job in the app)
    assert prepare_stems(arrangement, VariantSettings(transpose=2), soundfont=soundfont, stem_dir=stems)
    # When only the mix changes (the melody muted)
    started = time.perf_counter()
    second = render_variant(
        arrangement,
        VariantSettings(transpose=2, mix={0: PartMix(mute=True)}),
        out_path=tmp_path / "b.wav",
        soundfont=soundfont,
        stem_dir=stems,
    )
    remix_seconds = time.perf_counter() - started
    # Then nothing is synthesized again and the audio differs
    assert not first.stems_reused
    assert second.stems_reused
    assert remix_seconds < 5
    _, with_melody = read_wav(tmp_path / "a.wav")
    _, without = read_wav(tmp_path / "b.wav")
    assert not np.array_equal(with_melody[: without.shape[0]], without[: with_melody.shape[0]])


def test_solo_of_a_silent_choice_fails_with_a_reason(tmp_path: Path, soundfont: Path) -> None:
    # Given every part muted
    arrangement = load_arrangement(midi_bytes([(0, 2, 60)]))
    out = tmp_path / "x.mp3"
    # When / Then: a reason, and no file
    with pytest.raises(RenderFailed, match="silent"):
        render_variant(
            arrangement, VariantSettings(mix={0: PartMix(mute=True)}), out_path=out, soundfont=soundfont
        )
    assert not out.exists()


def test_mp3_render_with_count_in_and_click_is_longer_by_the_count_in(
    tmp_path: Path, soundfont: Path
) -> None:
    # Given a 4/4 tune at 120 bpm
    arrangement = load_arrangement(midi_bytes([(beat, 1, 60 + beat % 5) for beat in range(8)], program=FLUTE))
    # When rendered with two bars of count-in and a click
    plain = render_variant(arrangement, VariantSettings(), out_path=tmp_path / "a.mp3", soundfont=soundfont)
    counted = render_variant(
        arrangement, VariantSettings(count_in=2, click=True), out_path=tmp_path / "b.mp3", soundfont=soundfont
    )
    # Then it is four seconds longer and a tagged MP3 exists
    assert counted.duration_s - plain.duration_s == pytest.approx(4.0, abs=0.3)
    assert (tmp_path / "b.mp3").read_bytes()[:3] == b"ID3"


def test_out_of_range_settings_are_refused(tmp_path: Path, soundfont: Path) -> None:
    arrangement = load_arrangement(midi_bytes([(0, 2, 60)]))
    with pytest.raises(InvalidSettings, match="no part 3"):
        render_variant(
            arrangement,
            VariantSettings(mix={3: PartMix(gain_db=-3)}),
            out_path=tmp_path / "x.wav",
            soundfont=soundfont,
        )
    assert not (tmp_path / "x.wav").exists()


def test_notes_pushed_out_of_range_are_dropped_with_a_warning(tmp_path: Path, soundfont: Path) -> None:
    arrangement = load_arrangement(midi_bytes([(0, 2, 60), (2, 2, 125)], name="Lead"))
    result = render_variant(
        arrangement, VariantSettings(transpose=5), out_path=tmp_path / "x.wav", soundfont=soundfont
    )
    assert result.warnings == ["1 note of Lead fell outside the MIDI range at +5 semitones and was dropped"]


def _decode_mp3(path: Path) -> np.ndarray:
    raw = subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-i", str(path), "-f", "f32le", "-"], capture_output=True, check=True
    ).stdout
    return np.frombuffer(raw, dtype="<f4").reshape(-1, 2)


def test_a_long_mp3_is_encoded_in_segments_and_sounds_like_the_wav(
    tmp_path: Path, soundfont: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a 40-second song and a machine with two render cores
    config = EngineConfig(threads=2, slot_dir=tmp_path / "slots")
    segment_counts: list[int] = []

    class CountingEncoder(encode_module.SegmentedMp3Encoder):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            segment_counts.append(len(self.segments))

    monkeypatch.setattr(encode_module, "SegmentedMp3Encoder", CountingEncoder)
    arrangement = load_arrangement(compose_song(style="pop", minutes=40 / 60, parts=4, seed=2))
    out_dir = tmp_path / "out"

    # When it is rendered to MP3, and the same variant to WAV
    result = render_variant(
        arrangement,
        VariantSettings(transpose=1),
        out_path=out_dir / "a.mp3",
        soundfont=soundfont,
        config=config,
    )
    render_variant(
        arrangement,
        VariantSettings(transpose=1),
        out_path=out_dir / "a.wav",
        soundfont=soundfont,
        config=config,
    )

    # Then the MP3 was encoded as two segments, decodes to the render's exact length, meets the
    # loudness and peak targets, and matches the WAV sample for sample within the codec's error
    assert segment_counts == [2]
    decoded = _decode_mp3(out_dir / "a.mp3")
    rate, wav = read_wav(out_dir / "a.wav")
    assert decoded.shape == wav.shape
    assert decoded.shape[0] / rate == pytest.approx(result.duration_s, abs=0.001)
    assert integrated_loudness(decoded, rate) == pytest.approx(-14.0, abs=1.0)
    assert true_peak_dbtp(decoded, rate) <= -0.8  # the codec may add a little on top of -1 dBTP
    error = decoded - wav
    assert 10 * np.log10(np.sum(wav**2) / np.sum(error**2)) > 20.0
    assert sorted(path.name for path in out_dir.iterdir()) == ["a.mp3", "a.wav"]


def test_a_failure_while_encoding_segments_leaves_no_file(
    tmp_path: Path, soundfont: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a render whose second encoder segment fails part-way (a full disk, say)
    config = EngineConfig(threads=2, slot_dir=tmp_path / "slots")
    original = encode_module.SegmentedMp3Encoder.write_segment

    def failing(self: Any, index: int, block: np.ndarray) -> None:
        if index == 1 and self._segment_frames[1] > 0:
            raise RenderFailed("could not write: No space left on device")
        original(self, index, block)

    monkeypatch.setattr(encode_module.SegmentedMp3Encoder, "write_segment", failing)
    arrangement = load_arrangement(compose_song(style="pop", minutes=0.5, parts=3, seed=4))
    out_dir = tmp_path / "renders"

    # When it is rendered
    with pytest.raises(RenderFailed, match="No space left"):
        render_variant(
            arrangement, VariantSettings(), out_path=out_dir / "x.mp3", soundfont=soundfont, config=config
        )

    # Then neither the MP3 nor any partial segment is left behind
    assert list(out_dir.iterdir()) == []


def test_when_the_segments_cannot_be_spliced_the_render_is_encoded_as_one_segment(
    tmp_path: Path, soundfont: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a 40-second song, two render cores, and an ffmpeg whose LAME tag the splicer does not know
    config = EngineConfig(threads=2, slot_dir=tmp_path / "slots")
    monkeypatch.setattr(encode_module, "_UNSPLICEABLE", set())

    def unexpected_layout(path: Path, *, first_frame: int) -> mp3frames.SegmentFile:
        raise mp3frames.Mp3FormatError(f"{Path(path).name}: unexpected Info tag layout")

    monkeypatch.setattr(mp3frames, "read_segment", unexpected_layout)
    single_encoders: list[int] = []

    class CountingEncoder(encode_module.Mp3Encoder):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            single_encoders.append(len(self.segments))

    monkeypatch.setattr(encode_module, "Mp3Encoder", CountingEncoder)
    arrangement = load_arrangement(compose_song(style="pop", minutes=40 / 60, parts=4, seed=2))
    out_dir = tmp_path / "out"

    # When it is rendered to MP3
    result = render_variant(
        arrangement, VariantSettings(), out_path=out_dir / "a.mp3", soundfont=soundfont, config=config
    )

    # Then the render still succeeds, encoded again as one segment, with a warning saying why
    assert single_encoders == [1]
    assert "encoding it again as one segment" in caplog.text
    # And the MP3 is valid, of the render's exact length, and alone in its folder
    decoded = _decode_mp3(out_dir / "a.mp3")
    assert decoded.shape[0] / 44100 == pytest.approx(result.duration_s, abs=0.03)
    assert integrated_loudness(decoded, 44100) == pytest.approx(-14.0, abs=1.0)
    assert sorted(path.name for path in out_dir.iterdir()) == ["a.mp3"]


def test_a_render_over_its_scratch_budget_is_refused_before_synthesis(
    tmp_path: Path, soundfont: Path
) -> None:
    # Given an ordinary 30-second song and a scratch budget of 1 MB (its stems need about 20 MB)
    arrangement = load_arrangement(compose_song(style="pop", minutes=0.5, parts=3, seed=4))
    config = EngineConfig(max_scratch_bytes=1_000_000, slot_dir=tmp_path / "slots")
    stem_dir, out = tmp_path / "stems", tmp_path / "out" / "x.mp3"

    # When it is rendered, or its stems prepared
    with pytest.raises(RenderFailed, match=r"would need [\d.]+ MB of scratch space; the limit is 1\.0 MB"):
        render_variant(
            arrangement,
            VariantSettings(),
            out_path=out,
            soundfont=soundfont,
            stem_dir=stem_dir,
            config=config,
        )
    with pytest.raises(RenderFailed, match="of scratch space"):
        prepare_stems(arrangement, VariantSettings(), soundfont=soundfont, stem_dir=stem_dir, config=config)

    # Then nothing was written: no output, and no stems or scratch files
    assert not out.exists()
    assert list(stem_dir.rglob("*")) == []
