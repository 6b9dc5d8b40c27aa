"""Loudness, true peak and the mastering plan, checked as a listener's meter would check them.

Mastering is exercised the way a render does it: the signal is a stem file, summarised by
``summarise_stems``, planned by ``plan_gain`` and applied by the plan; the result is then measured by
an independent BS.1770 reference (``bs1770``) as well as by the engine's own meters.
"""

from pathlib import Path

import numpy as np
import pytest

from tracks.engine.errors import RenderFailed
from tracks.engine.master import (
    GainPlan,
    integrated_loudness,
    k_weighting_sos,
    plan_gain,
    true_peak_dbtp,
)
from tracks.engine.mix import summarise_stems

from .bs1770 import reference_loudness, reference_true_peak

RATE = 48000  # the rate the reference's printed coefficients are for


def _seconds(duration: float, rate: int = RATE) -> np.ndarray:
    return np.arange(int(duration * rate), dtype=np.float64) / rate


def _faded(samples: np.ndarray, rate: int = RATE) -> np.ndarray:
    """Fade 50 ms in and out so the abrupt start does not create overshoot of its own."""
    t = _seconds(samples.shape[0] / rate, rate)
    return samples * np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.05)


def _quiet_then_loud(duration: float = 24.0) -> np.ndarray:
    """A soft pad, then the same pad much louder with punchy kicks: gain alone would clip it."""
    t = _seconds(duration)
    pad = 0.05 * (np.sin(2 * np.pi * 220 * t) + 0.5 * np.sin(2 * np.pi * 277.2 * t))
    phase = t % 0.5
    kick = 0.3 * np.sin(2 * np.pi * 60 * phase) * np.exp(-phase * 30)
    level = np.where(t < duration * 0.4, 0.3, 3.0)
    mono = (pad + kick) * level
    return np.stack([mono, np.roll(mono, 37) * 0.9], axis=1).astype(np.float32)


def _bursts(duration: float = 20.0) -> np.ndarray:
    """Noise that comes and goes over a quiet chord: the relative gate has real work to do."""
    rng = np.random.default_rng(11)
    t = _seconds(duration)
    chord = 0.02 * np.sin(2 * np.pi * 196 * t) + 0.02 * np.sin(2 * np.pi * 247 * t)
    noise = rng.normal(0, 0.2, (t.size, 2)) * ((t % 5) < 2)[:, np.newaxis]
    return (chord[:, np.newaxis] + noise).astype(np.float32)


def _master(
    samples: np.ndarray, tmp_path: Path, *, target_lufs: float = -14.0
) -> tuple[np.ndarray, GainPlan]:
    """Master ``samples`` as a render masters its mix: from a stem file, through summary and plan."""
    stem = tmp_path / "mix.npy"
    np.save(stem, samples.astype(np.float32))
    summary = summarise_stems([stem], [1.0], samples.shape[0], RATE, parallel=1)
    plan = plan_gain(
        hop_energy=summary.hop_energy,
        row_peak=summary.row_peak,
        row=summary.row,
        target_lufs=target_lufs,
        ceiling_dbtp=-1.0,
    )
    return plan.apply(samples.astype(np.float32), 0), plan


def test_k_weighting_reproduces_the_bs1770_coefficients_at_48k() -> None:
    # Given the coefficients printed in ITU-R BS.1770-4 for 48 kHz
    shelf = [1.53512485958697, -2.69169618940638, 1.19839281085285, 1.0, -1.69065929318241, 0.73248077421585]
    highpass = [1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621]

    # When we derive them for 48 kHz
    sos = k_weighting_sos(48000)

    # Then they match
    np.testing.assert_allclose(sos, [shelf, highpass], atol=1e-8)


@pytest.mark.parametrize("rate", [44100, 48000])
def test_full_scale_1khz_sine_in_one_channel_reads_minus_3_01_lufs(rate: int) -> None:
    # Given the BS.1770 reference: a 0 dBFS 1 kHz sine in the left channel, silence in the right
    tone = np.sin(2 * np.pi * 1000 * _seconds(5.0, rate))
    stereo = np.stack([tone, np.zeros_like(tone)], axis=1).astype(np.float32)

    # When it is measured
    lufs = integrated_loudness(stereo, rate)

    # Then it reads -3.01 LUFS, and the same tone in both channels reads 3 dB more
    assert lufs == pytest.approx(-3.01, abs=0.1)
    both = np.stack([tone, tone], axis=1).astype(np.float32)
    assert integrated_loudness(both, rate) == pytest.approx(0.0, abs=0.1)


def test_silence_is_gated_out_of_the_integrated_loudness() -> None:
    # Given a tone followed by as long a silence
    tone = 0.1 * np.sin(2 * np.pi * 500 * _seconds(10.0))
    with_silence = np.concatenate([tone, np.zeros_like(tone)])

    # When both are measured
    # Then the silence does not make the song "quieter" (only the blocks straddling the end count)
    assert integrated_loudness(with_silence, RATE) == pytest.approx(integrated_loudness(tone, RATE), abs=0.15)


@pytest.mark.parametrize("make", [_quiet_then_loud, _bursts], ids=["quiet then loud", "bursts"])
def test_the_meters_agree_with_the_reference_bs1770(make) -> None:
    # Given music-like signals whose gating matters
    samples = make()

    # When the engine's meters and the reference measure them
    # Then they read the same loudness and true peak
    assert integrated_loudness(samples, RATE) == pytest.approx(reference_loudness(samples), abs=0.05)
    assert true_peak_dbtp(samples, RATE) == pytest.approx(reference_true_peak(samples), abs=0.1)


def test_true_peak_finds_the_peak_between_samples() -> None:
    # Given a quarter-rate sine sampled at 45 degrees: every sample is at -3 dBFS, the wave at 0 dBFS
    t = _seconds(2.0)
    wave = _faded(np.sin(2 * np.pi * (RATE / 4) * t + np.pi / 4)).astype(np.float32)
    assert 20 * np.log10(np.abs(wave).max()) == pytest.approx(-3.01, abs=0.01)

    # When the true peak is measured
    # Then it finds the 0 dBTP crest the samples miss
    assert true_peak_dbtp(wave, RATE) == pytest.approx(0.0, abs=0.15)


def test_mastering_brings_a_quiet_to_loud_song_to_minus_14_lufs_under_minus_1_dbtp(tmp_path: Path) -> None:
    # Given a song whose loud part has peaks gain alone would push far over the ceiling
    song = _quiet_then_loud()
    needed_gain = -14.0 - reference_loudness(song)
    assert reference_true_peak(song) + needed_gain > 0.0

    # When it is mastered
    out, plan = _master(song, tmp_path)

    # Then an independent measurement of the result hits the target under the ceiling, via the limiter
    assert out.dtype == np.float32
    assert out.shape == song.shape
    assert reference_loudness(out) == pytest.approx(-14.0, abs=0.5)
    assert reference_true_peak(out) <= -1.0
    assert true_peak_dbtp(out, RATE) <= -1.0
    assert plan.limited
    # And the loudness a render reports (predicted from the summaries, not measured again) is close
    assert plan.predicted_lufs == pytest.approx(reference_loudness(out), abs=0.2)


def test_mastering_only_applies_gain_when_the_peaks_are_safe(tmp_path: Path) -> None:
    # Given a soft, steady tone at about -30 LUFS
    tone = 0.03 * np.sin(2 * np.pi * 440 * _seconds(5.0))
    stereo = np.stack([tone, tone], axis=1).astype(np.float32)

    # When it is mastered to -16 LUFS
    out, plan = _master(stereo, tmp_path, target_lufs=-16.0)

    # Then it is the same tone, just louder: no limiting, no distortion
    assert not plan.limited
    assert plan.gain_db == pytest.approx(-16.0 - plan.lufs_in, abs=0.05)
    assert reference_loudness(out) == pytest.approx(-16.0, abs=0.05)
    np.testing.assert_allclose(out, stereo * 10 ** (plan.gain_db / 20), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "samples",
    [
        np.zeros((RATE * 3, 2), dtype=np.float32),
        np.full((RATE * 3, 2), 1e-6, dtype=np.float32),
        np.ones((RATE // 10, 2), dtype=np.float32) * 0.5,
    ],
    ids=["digital silence", "below the -70 LUFS gate", "shorter than one 400 ms block"],
)
def test_mastering_refuses_a_silent_render(samples: np.ndarray, tmp_path: Path) -> None:
    # Given a render with nothing to hear
    # When it is mastered
    # Then it fails with a reason instead of writing an empty or hugely amplified file
    with pytest.raises(RenderFailed, match="the render came out silent"):
        _master(samples, tmp_path)


def test_mastering_refuses_corrupt_samples(tmp_path: Path) -> None:
    # Given a render with a NaN in it
    song = _quiet_then_loud(4.0)
    song[1000, 0] = np.nan
    # When it is mastered
    # Then it fails with a reason
    with pytest.raises(RenderFailed, match="NaN"):
        _master(song, tmp_path)
