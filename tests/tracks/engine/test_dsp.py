"""The engine's NumPy filters give what SciPy's give, and a worker never imports SciPy (~75 MB)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage, signal

from tracks.engine import dsp
from tracks.engine.master import k_weighting_sos

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("rate", [8000, 44100, 48000, 384000])
@pytest.mark.parametrize("frames", [1, 127, 128, 129, 5000, 44100 * 2 + 17])
def test_sosfilt_matches_scipy_with_its_state(rate: int, frames: int) -> None:
    rng = np.random.default_rng(frames)
    sos = k_weighting_sos(rate)
    samples = rng.standard_normal((frames, 2))
    state = rng.standard_normal((2, 2, 2)) * 0.1
    expected, expected_state = signal.sosfilt(sos, samples, axis=0, zi=state)
    filtered, final_state = dsp.sosfilt(sos, samples, state)
    np.testing.assert_allclose(filtered, expected, atol=1e-5)
    np.testing.assert_allclose(final_state, expected_state, atol=1e-5)
    by_channel, _ = dsp.sosfilt(sos, samples, state, channels_first=True)
    np.testing.assert_array_equal(by_channel, filtered.T)


def test_sosfilt_in_blocks_continues_where_it_stopped() -> None:
    rng = np.random.default_rng(1)
    sos = k_weighting_sos(44100).astype(np.float32)
    samples = rng.standard_normal((10_000, 2)).astype(np.float32)
    whole, _ = dsp.sosfilt(sos, samples, np.zeros((2, 2, 2), dtype=np.float32))
    state = np.zeros((2, 2, 2), dtype=np.float32)
    pieces = []
    for start in range(0, 10_000, 3_001):
        piece, state = dsp.sosfilt(sos, samples[start : start + 3_001], state)
        pieces.append(piece)
    assert whole.dtype == np.float32
    assert state.dtype == np.float32
    np.testing.assert_allclose(np.concatenate(pieces), whole, atol=1e-4)
    reference, _ = signal.sosfilt(
        sos.astype(np.float64), samples.astype(np.float64), axis=0, zi=np.zeros((2, 2, 2))
    )
    np.testing.assert_allclose(whole, reference, atol=1e-4)


def test_a_filter_that_does_not_settle_is_refused_or_still_matches() -> None:
    # a plain one-pole-like section with poles well inside the unit circle, one channel
    sos = np.array([[0.2, 0.0, 0.0, 1.0, -0.8, 0.0]])
    samples = np.ones((1000, 1))
    expected, _ = signal.sosfilt(sos, samples, axis=0, zi=np.zeros((1, 2, 1)))
    filtered, _ = dsp.sosfilt(sos, samples, np.zeros((1, 2, 1)))
    np.testing.assert_allclose(filtered, expected, atol=1e-9)
    assert filtered[-1, 0] == pytest.approx(1.0)  # the step response settles at the DC gain


def test_firwin_upsampling_and_resampling_match_scipy() -> None:
    rng = np.random.default_rng(3)
    taps = signal.firwin(49, 0.25, window=("kaiser", 8.0))
    np.testing.assert_allclose(dsp.firwin_kaiser(49, 0.25, 8.0), taps, atol=1e-12)
    samples = rng.standard_normal(777)
    np.testing.assert_allclose(
        dsp.upsample(taps * 4, samples, 4), signal.upfirdn(taps * 4, samples, up=4), atol=1e-12
    )
    np.testing.assert_allclose(
        dsp.resample(samples, 22050, 44100), signal.resample_poly(samples, 44100, 22050), atol=1e-12
    )
    # a rate that is not a whole multiple is interpolated, at the right length
    assert dsp.resample(samples, 22050, 48000).shape == (round(777 * 48000 / 22050),)


@pytest.mark.parametrize("size", [1, 3, 5, 11])
def test_running_maximum_and_mean_match_scipy(size: int) -> None:
    values = np.random.default_rng(size).standard_normal(400)
    np.testing.assert_array_equal(
        dsp.maximum_filter1d(values, size), ndimage.maximum_filter1d(values, size, mode="nearest")
    )
    np.testing.assert_allclose(
        dsp.uniform_filter1d(values, size), ndimage.uniform_filter1d(values, size, mode="nearest"), atol=1e-12
    )


def test_a_worker_process_does_not_import_scipy() -> None:
    # Given the Django app, the Celery tasks and the engine loaded as a worker loads them
    script = (
        "import os, sys\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'backtrack.test_settings')\n"
        "import django\n"
        "django.setup()\n"
        "import backtrack.celery, tracks.tasks, tracks.engine, tracks.engine.outputs, tracks.engine.stream\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'scipy'))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    # Then SciPy is not among the modules (scipy.fft comes with the first render with space for
    # the voice; scipy.signal and scipy.ndimage, ~75 MB with what they import, never)
    assert result.stdout.strip() == "[]"
