"""Streaming mix summaries and gain plans: the fast paths agree with the straightforward ones."""

from pathlib import Path

import numpy as np
import pytest

from tracks.engine.master import GainPlan, gated_loudness
from tracks.engine.mix import summarise_stems

from .bs1770 import RATE, reference_loudness


def _stem(path: Path, samples: np.ndarray) -> Path:
    np.save(path, samples.astype(np.float32))
    return path


@pytest.fixture
def stems(tmp_path: Path) -> tuple[list[Path], np.ndarray]:
    """Two 40 s stems: a swelling chord and a noise burst that starts late and stops early."""
    rng = np.random.default_rng(3)
    t = np.arange(40 * RATE) / RATE
    chord = (0.2 + 0.15 * np.sin(2 * np.pi * 0.05 * t)) * np.sin(2 * np.pi * 196 * t)
    noise = rng.normal(0, 0.1, t.size) * ((t > 5) & (t < 31))
    first = np.stack([chord, 0.8 * chord], axis=1)
    second = np.stack([noise, np.roll(noise, 7)], axis=1)
    paths = [_stem(tmp_path / "a.npy", first), _stem(tmp_path / "b.npy", second)]
    return paths, first + 0.5 * second


def test_the_summary_in_parallel_stretches_equals_one_pass(stems) -> None:
    # Given two stems and a length that is not a whole number of steps
    paths, _mix = stems
    frames = 40 * RATE - 123

    # When the mix is summarised in one pass and in three stretches
    one = summarise_stems(paths, [1.0, 0.5], frames, RATE, parallel=1)
    three = summarise_stems(paths, [1.0, 0.5], frames, RATE, parallel=3)

    # Then both give the same grid, peaks and end of sound, and energies within float32 noise
    assert three.hop_energy.shape == one.hop_energy.shape
    np.testing.assert_allclose(three.hop_energy, one.hop_energy, rtol=1e-5, atol=1e-12)
    np.testing.assert_array_equal(three.row_peak, one.row_peak)
    assert three.last_sound == one.last_sound


def test_the_summary_measures_the_mix_as_the_reference_meter_does(stems) -> None:
    # Given two stems summarised in parallel stretches at their mix gains
    paths, mix = stems
    summary = summarise_stems(paths, [1.0, 0.5], mix.shape[0], RATE, parallel=2)
    # Then the loudness from the summary is what a plain BS.1770 meter reads on the mixed signal
    assert gated_loudness(summary.hop_energy) == pytest.approx(reference_loudness(mix), abs=0.05)
    assert summary.row_peak.max() == pytest.approx(np.abs(mix).max(), rel=1e-6)


@pytest.mark.parametrize("row", [441, 440, 32])
def test_gain_plan_interpolates_between_row_centres_like_np_interp(row: int) -> None:
    rng = np.random.default_rng(row)
    row_gain = rng.uniform(0.2, 2.0, 300)
    plan = GainPlan(
        row=row, row_gain=row_gain, gain_db=0.0, lufs_in=-20.0, predicted_lufs=-14.0, limited=True
    )
    frames = row * 300 + 500
    ones = np.ones((frames, 2), dtype=np.float32)
    expected = np.interp((np.arange(frames) + 0.5) / row - 0.5, np.arange(row_gain.size), row_gain)
    for start, count in [
        (0, frames),
        (17, 5000),
        (3 * row + 5, 2 * row),
        (frames - 300, 300),
        (frames - 1, 1),
    ]:
        applied = plan.apply(ones[start : start + count], start)
        np.testing.assert_allclose(applied[:, 0], expected[start : start + count], rtol=1e-5)
        np.testing.assert_array_equal(applied[:, 0], applied[:, 1])
