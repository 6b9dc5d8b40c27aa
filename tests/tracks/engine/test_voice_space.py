"""Space for the voice: the accompaniment gives way in the singer's band while the melody sings."""

import io
from pathlib import Path

import mido
import numpy as np
import pytest

from tracks.engine import (
    VariantSettings,
    integrated_loudness,
    load_arrangement,
    render_variant,
    true_peak_dbtp,
)
from tracks.engine.voice_space import MARGIN_OCTAVES, SKIRT_OCTAVES, carve_accompaniment, voice_band

from .conftest import read_wav

BPM = 120.0
BEAT_S = 60 / BPM
# The melody sings bars 1, 3, 5, 7 (beats 0-4, 8-12, ...) and rests in between; pads and piano
# play chords in its register all the time.
SUNG_BARS = (0, 2, 4, 6)
BARS = 8
MELODY = [72, 74, 76, 77]  # C5 D5 E5 F5
CHORD = [60, 64, 67, 72]  # C4 E4 G4 C5
SKIRT = 2 ** (MARGIN_OCTAVES + SKIRT_OCTAVES)  # the cut's reach outside the band


def _song() -> bytes:
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    conductor = mido.MidiTrack()
    conductor.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(BPM), time=0))
    midi.tracks.append(conductor)

    def track(
        name: str, channel: int, program: int, notes: list[tuple[float, float, int]], velocity: int
    ) -> None:
        part = mido.MidiTrack()
        part.append(mido.MetaMessage("track_name", name=name, time=0))
        part.append(mido.Message("program_change", channel=channel, program=program, time=0))
        events = []
        for start, length, pitch in notes:
            events.append((round(start * 480), 1, pitch))
            events.append((round((start + length) * 480), 0, pitch))
        now = 0
        for tick, on, pitch in sorted(events):
            kind = "note_on" if on else "note_off"
            part.append(
                mido.Message(
                    kind, channel=channel, note=pitch, velocity=velocity if on else 0, time=tick - now
                )
            )
            now = tick
        midi.tracks.append(part)

    melody = [(bar * 4 + beat, 1.0, MELODY[beat]) for bar in SUNG_BARS for beat in range(4)]
    track("Melody", 0, 73, melody, 110)  # flute
    track("Pad", 1, 89, [(bar * 4, 4.0, pitch) for bar in range(BARS) for pitch in CHORD], 90)  # warm pad
    track(
        "Keys",
        2,
        0,
        [(bar * 4 + beat, 1.0, pitch) for bar in range(BARS) for beat in range(4) for pitch in CHORD],
        80,
    )
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def _band_ratio_db(
    samples: np.ndarray, rate: int, spans: list[tuple[float, float]], low: float, high: float
) -> float:
    """Energy in [low, high] Hz over the spectrum clear of it (dB), summed over ``spans`` (seconds)."""
    inside = outside = 0.0
    for start, end in spans:
        chunk = samples[round(start * rate) : round(end * rate)].mean(axis=1)
        spectrum = np.abs(np.fft.rfft(chunk * np.hanning(chunk.size))) ** 2
        freqs = np.fft.rfftfreq(chunk.size, 1 / rate)
        band = (freqs >= low) & (freqs <= high)
        inside += float(spectrum[band].sum())
        # the reference: the spectrum clear of the band and of its half-octave skirts
        clear = (freqs > 20) & ((freqs < low / SKIRT) | (freqs > high * SKIRT))
        outside += float(spectrum[clear].sum())
    return 10 * np.log10(inside / outside)


@pytest.fixture(scope="module")
def renders(soundfont: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    arrangement = load_arrangement(_song())
    assert arrangement.analysis["melody_part"] == 0
    folder = tmp_path_factory.mktemp("voice")
    out = {}
    for name, data in {
        "plain": {"mix": {"0": {"mute": True}}},
        "space": {"mix": {"0": {"mute": True}}, "space_for_voice": 6},
        "sung": {"space_for_voice": 6},
    }.items():
        out[name] = folder / f"{name}.wav"
        render_variant(arrangement, VariantSettings.from_dict(data), out_path=out[name], soundfont=soundfont)
    return out


def test_accompaniment_gives_way_in_the_voice_band_only_while_the_melody_sings(
    renders: dict[str, Path],
) -> None:
    # given a song whose pad and piano play in the melody's register, rendered with the melody muted
    rate, plain = read_wav(renders["plain"])
    _, space = read_wav(renders["space"])
    band = voice_band(min(MELODY), max(MELODY))
    # (the middle of each sung bar, and the middle of each rest, away from the attack and release)
    sung = [(bar * 4 * BEAT_S + 0.3, (bar * 4 + 4) * BEAT_S - 0.1) for bar in SUNG_BARS]
    rests = [((bar + 1) * 4 * BEAT_S + 0.6, (bar + 2) * 4 * BEAT_S - 0.3) for bar in SUNG_BARS[:-1]]
    # when space for the voice asks for 6 dB
    # then, against the rest of the spectrum (which mastering scales alike), the band lost >= 6 dB
    # where the melody sings, and is within 1 dB of the plain render where it rests
    lost_sung = _band_ratio_db(plain, rate, sung, band.low_hz, band.high_hz) - _band_ratio_db(
        space, rate, sung, band.low_hz, band.high_hz
    )
    lost_rest = _band_ratio_db(plain, rate, rests, band.low_hz, band.high_hz) - _band_ratio_db(
        space, rate, rests, band.low_hz, band.high_hz
    )
    assert lost_sung >= 6.0 - 0.05  # 6 dB is a gain of 0.501: an exact cut measures 6.00 dB
    assert abs(lost_rest) <= 1.0


def test_the_master_keeps_its_loudness_targets(renders: dict[str, Path]) -> None:
    # given the song rendered with its melody and 6 dB of space for the voice
    rate, samples = read_wav(renders["sung"])
    # then the master still lands at -14 LUFS and under -1 dBTP
    assert integrated_loudness(samples.astype(np.float32), rate) == pytest.approx(-14.0, abs=0.5)
    assert true_peak_dbtp(samples.astype(np.float32), rate) <= -1.0


def test_the_cut_is_smooth_and_exactly_transparent_where_the_melody_rests(tmp_path: Path) -> None:
    # given a steady tone in the voice's band and one above it, as a stem file
    rate = 44_100
    seconds = np.arange(4 * rate) / rate
    tone = 0.25 * np.sin(2 * np.pi * 440 * seconds) + 0.25 * np.sin(2 * np.pi * 5000 * seconds)
    stem = tmp_path / "stem.npy"
    np.save(stem, np.stack([tone, tone], axis=1).astype(np.float32))
    # when the melody sings from 1 s to 2 s and the band (A3..A4) is cut by 6 dB
    out = carve_accompaniment(
        [stem],
        [1.0],
        tone.size,
        tmp_path / "carved.npy",
        spans=[(rate, 2 * rate)],
        band=voice_band(57, 69),
        cut_db=6.0,
        sample_rate=rate,
    )
    carved = np.load(out)[:, 0].astype(np.float64)

    def level_db(samples: np.ndarray, hz: float) -> float:
        spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
        freqs = np.fft.rfftfreq(samples.size, 1 / rate)
        return 20 * np.log10(spectrum[np.abs(freqs - hz) < 20].max())

    sung, rest = slice(round(1.1 * rate), round(1.9 * rate)), slice(round(3.0 * rate), round(3.9 * rate))
    # then the band tone is 6 dB down while the melody sings, the tone above it untouched
    assert level_db(tone[sung], 440) - level_db(carved[sung], 440) == pytest.approx(6.0, abs=0.1)
    assert level_db(tone[sung], 5000) - level_db(carved[sung], 5000) == pytest.approx(0.0, abs=0.1)
    # and where the melody rests (and before it) the output is the input, sample for sample
    assert np.abs(carved[rest] - tone[rest]).max() < 1e-5
    assert np.abs(carved[: round(0.5 * rate)] - tone[: round(0.5 * rate)]).max() < 1e-5
    # and no click: nothing appears above 10 kHz, where the input has nothing
    frames = carved[: (carved.size // 1024) * 1024].reshape(-1, 1024)
    spectrum = np.abs(np.fft.rfft(frames * np.hanning(1024), axis=1))
    high = spectrum[:, np.fft.rfftfreq(1024, 1 / rate) > 10_000].max()
    assert 20 * np.log10(high / spectrum.max()) < -80
