"""Loudness (ITU-R BS.1770-4), true peak and the mastering plan: gain to a target under a ceiling.

Renders leave FluidSynth at about -23 LUFS with peaks near -10 dBFS, so a backing track needs around
+9 dB to reach the -14 LUFS that streaming players expect; on a quiet-to-loud song that gain alone
would push the loud part over the ceiling. Mastering therefore works on small summaries of the signal
(see :mod:`tracks.engine.mix`, which streams a mix through :class:`LoudnessMeter`): the K-weighted
energy of every 100 ms step and the sample peak of every 10 ms row. :func:`plan_gain` decides the gain
and a look-ahead limiter envelope from them; the render applies the plan while encoding and checks the
result with :class:`TruePeakMeter`.

These meters are the only ones in the engine: :func:`integrated_loudness` and :func:`true_peak_dbtp`
measure an in-memory signal with exactly the code a render measures its mix with.
"""

import math
from dataclasses import dataclass

import numpy as np

from . import dsp
from .errors import RenderFailed

ROW_S = 0.01  # peaks and limiter gains are kept per 10 ms row
HOP_ROWS = 10  # gating steps of 100 ms (400 ms blocks with 75% overlap = 4 steps)
CHUNK_HOPS = 25  # 2.5 s per chunk when measuring an in-memory signal: a few MB of working memory
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
_SAMPLE_MARGIN_DB = 0.6  # sample-peak ceiling below the true-peak ceiling, for intersample overs
_ATTACK_ROWS = 2
_RELEASE_DB_PER_S = 25.0
_TRUE_PEAK_CONTEXT = 24  # input samples of context each side of an interpolated stretch

# K-weighting as analog prototypes (pre-filter high shelf, RLB high-pass). Re-deriving the biquads from
# these for the actual sample rate reproduces the 48 kHz coefficients printed in BS.1770-4 to 1e-8 and
# keeps 44.1 kHz (FluidSynth's rate) exact instead of reusing 48 kHz numbers at the wrong rate.
_SHELF_HZ = 1681.974450955533
_SHELF_GAIN_DB = 3.999843853973347
_SHELF_Q = 0.7071752369554196
_SHELF_VB_EXPONENT = 0.4996667741545416
_HIGHPASS_HZ = 38.13547087602444
_HIGHPASS_Q = 0.5003270373238773


def row_frames(sample_rate: int) -> int:
    """Samples per 10 ms row at ``sample_rate`` Hz."""
    return round(sample_rate * ROW_S)


def k_weighting_sos(sample_rate: int) -> np.ndarray:
    """The two K-weighting biquads for ``sample_rate`` as scipy second-order sections (shape (2, 6))."""
    k = math.tan(math.pi * _SHELF_HZ / sample_rate)
    vh = 10.0 ** (_SHELF_GAIN_DB / 20.0)
    vb = vh**_SHELF_VB_EXPONENT
    a0 = 1.0 + k / _SHELF_Q + k * k
    shelf = [
        (vh + vb * k / _SHELF_Q + k * k) / a0,
        2.0 * (k * k - vh) / a0,
        (vh - vb * k / _SHELF_Q + k * k) / a0,
        1.0,
        2.0 * (k * k - 1.0) / a0,
        (1.0 - k / _SHELF_Q + k * k) / a0,
    ]
    k = math.tan(math.pi * _HIGHPASS_HZ / sample_rate)
    a0 = 1.0 + k / _HIGHPASS_Q + k * k
    highpass = [1.0, -2.0, 1.0, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / _HIGHPASS_Q + k * k) / a0]
    return np.array([shelf, highpass], dtype=np.float64)


def _as_frames(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """``samples`` as (n, channels); mono (n,) is one channel."""
    if not 8000 <= sample_rate <= 384000:
        raise ValueError(f"sample rate {sample_rate} Hz is outside 8000..384000")
    array = np.asarray(samples)
    if array.ndim == 1:
        array = array[:, np.newaxis]
    if array.ndim != 2 or array.shape[1] < 1:
        raise ValueError(f"expected samples shaped (n, channels), got {np.shape(samples)}")
    return array


class LoudnessMeter:
    """K-weighted energy of every 100 ms step of a signal fed in blocks (BS.1770-4's gating steps).

    Each step's value is the mean square of the filtered samples, summed over channels (every channel
    weighs 1: left, right, centre). Blocks must hold whole steps, except the last one, whose
    incomplete step is left out as BS.1770 leaves out an incomplete block.
    """

    def __init__(self, sample_rate: int, *, channels: int = 2) -> None:
        self.hop = row_frames(sample_rate) * HOP_ROWS
        self._sos = k_weighting_sos(sample_rate).astype(np.float32)
        self._state = np.zeros((self._sos.shape[0], 2, channels), dtype=np.float32)
        self._steps: list[np.ndarray] = []

    def prime(self, block: np.ndarray) -> None:
        """Run the filter over audio just before the measured stretch, so it starts settled."""
        _, self._state = dsp.sosfilt(self._sos, block, self._state, channels_first=True)

    def add(self, block: np.ndarray) -> None:
        """Measure the next ``block`` (frames, channels) of float32 samples."""
        weighted, self._state = dsp.sosfilt(self._sos, block, self._state, channels_first=True)
        energy = np.einsum("ij,ij->j", weighted, weighted, dtype=np.float64)
        whole = block.shape[0] // self.hop * self.hop
        self._steps.append(energy[:whole].reshape(-1, self.hop).mean(axis=1))

    @property
    def hop_energy(self) -> np.ndarray:
        """Energy per 100 ms step so far (float64)."""
        return np.concatenate(self._steps) if self._steps else np.zeros(0)


def gated_loudness(hop_energy: np.ndarray) -> float:
    """BS.1770-4 integrated loudness in LUFS from 100 ms step energies (400 ms blocks, 75% overlap).

    ``-inf`` when fewer than four steps or nothing passes the -70 LUFS absolute gate.
    """
    if hop_energy.size < 4:
        return -math.inf
    blocks = np.convolve(hop_energy, np.ones(4) / 4, mode="valid")
    with np.errstate(divide="ignore"):
        loudness = -0.691 + 10 * np.log10(blocks)
    gated = blocks[loudness > ABSOLUTE_GATE_LUFS]
    if gated.size == 0:
        return -math.inf
    relative = -0.691 + 10 * math.log10(float(gated.mean())) + RELATIVE_GATE_LU
    final = blocks[loudness > max(ABSOLUTE_GATE_LUFS, relative)]
    return -0.691 + 10 * math.log10(float(final.mean()))


def integrated_loudness(samples: np.ndarray, sample_rate: int) -> float:
    """BS.1770-4 integrated loudness of ``samples`` ((n, channels) or (n,), float) in LUFS.

    Measured by :class:`LoudnessMeter` and :func:`gated_loudness`, as a render measures its mix;
    ``-inf`` for silence or less than 400 ms.
    """
    array = _as_frames(samples, sample_rate)
    meter = LoudnessMeter(sample_rate, channels=array.shape[1])
    chunk = meter.hop * CHUNK_HOPS
    for start in range(0, array.shape[0], chunk):
        meter.add(np.ascontiguousarray(array[start : start + chunk], dtype=np.float32))
    return gated_loudness(meter.hop_energy)


class TruePeakMeter:
    """4x oversampled peak (BS.1770-4 Annex 2) where it can matter, sample peak elsewhere.

    Oversampling a whole song costs more than encoding it, so only 10 ms rows whose sample peak is
    within ``margin_db`` of ``ceiling`` are interpolated; an intersample over larger than that margin
    needs square-wave-like content that a General MIDI render does not produce. With ``margin_db``
    infinite every row is interpolated. The first and last ``_TRUE_PEAK_CONTEXT`` samples of each block
    count with their sample peak only, so a caller that needs every sample interpolated feeds blocks
    that overlap by twice that (as :func:`true_peak_dbtp` does).
    """

    def __init__(self, ceiling: float, row: int, margin_db: float = 1.0) -> None:
        self.threshold = ceiling * 10 ** (-margin_db / 20)
        self.row = row
        self.peak = 0.0
        # About 12 input samples per phase, as in BS.1770-4; an odd length makes the filter zero-phase,
        # so the interpolated points fall on the quarter-sample grid and the original samples come out
        # unchanged (the standard's even-length example reads a crest midway between samples
        # 0.17 dB low, as its points sit an eighth of a sample off).
        self._taps = dsp.firwin_kaiser(49, 0.25, 8.0) * 4

    def add(self, block: np.ndarray) -> None:
        """Meter the next ``block`` (frames, channels)."""
        frames, channels = block.shape
        if frames == 0:
            return
        rows = -(-frames // self.row)
        magnitude = np.zeros(rows * self.row * channels, dtype=np.float32)
        magnitude[: frames * channels] = np.abs(block).reshape(-1)
        row_peak = magnitude.reshape(rows, self.row * channels).max(axis=1)
        self.peak = max(self.peak, float(row_peak.max()))
        hot = np.flatnonzero(row_peak > self.threshold)
        if hot.size == 0:
            return
        # Contiguous runs of hot rows, each interpolated with a little context on both sides.
        context = _TRUE_PEAK_CONTEXT
        breaks = np.flatnonzero(np.diff(hot) > 1)
        for first, last in zip(
            np.concatenate(([hot[0]], hot[breaks + 1])), np.concatenate((hot[breaks], [hot[-1]])), strict=True
        ):
            start = max(0, int(first) * self.row - context)
            stop = min(frames, (int(last) + 1) * self.row + context)
            segment = block[start:stop]
            for channel in range(channels):
                upsampled = dsp.upsample(self._taps, segment[:, channel], 4)
                trimmed = upsampled[4 * context : -4 * context]
                self.peak = max(self.peak, float(np.abs(trimmed).max(initial=0.0)))

    @property
    def dbtp(self) -> float:
        """The peak so far in dBTP; ``-inf`` for digital silence."""
        return 20 * math.log10(self.peak) if self.peak > 0 else -math.inf


def true_peak_dbtp(samples: np.ndarray, sample_rate: int) -> float:
    """Maximum 4x-oversampled absolute level of ``samples`` in dBTP; ``-inf`` for digital silence.

    Every row is interpolated by :class:`TruePeakMeter`, the meter a render checks its output with.
    """
    array = _as_frames(samples, sample_rate)
    row = row_frames(sample_rate)
    meter = TruePeakMeter(1.0, row, margin_db=math.inf)
    chunk = row * HOP_ROWS * CHUNK_HOPS
    overlap = 2 * _TRUE_PEAK_CONTEXT
    for start in range(0, array.shape[0], chunk):
        low, high = max(0, start - overlap), min(array.shape[0], start + chunk + overlap)
        meter.add(np.asarray(array[low:high], dtype=np.float32))
    return meter.dbtp


@dataclass
class GainPlan:
    """A gain per 10 ms row (linear), interpolated per sample when applied."""

    row: int
    row_gain: np.ndarray
    gain_db: float
    lufs_in: float
    predicted_lufs: float
    limited: bool

    def apply(self, block: np.ndarray, start: int) -> np.ndarray:
        """``block`` (frames ``start`` ..) times the gain, linear between row centres, flat at the ends.

        Consecutive row centres are exactly ``row`` samples apart, so every row is the same ramp
        pattern scaled by its two end gains: a few array passes instead of a search per sample.
        """
        frames, row = block.shape[0], self.row
        first_row = math.floor((start + 0.5) / row - 0.5)
        centre = (first_row + 0.5) * row - 0.5  # of first_row, at or before ``start``
        first_sample = math.ceil(centre)
        skip = start - first_sample
        rows = -(-(skip + frames) // row)
        ends = self.row_gain[np.clip(np.arange(first_row, first_row + rows + 1), 0, self.row_gain.size - 1)]
        ends = ends.astype(np.float32)
        ramp = ((first_sample - centre + np.arange(row)) / row).astype(np.float32)
        gain = (ends[:-1, np.newaxis] + np.diff(ends)[:, np.newaxis] * ramp).reshape(-1)
        return block * gain[skip : skip + frames, np.newaxis]


def plan_gain(
    *, hop_energy: np.ndarray, row_peak: np.ndarray, row: int, target_lufs: float, ceiling_dbtp: float
) -> GainPlan:
    """The gain to ``target_lufs`` and a look-ahead limiter envelope, from a signal's summaries.

    ``hop_energy`` comes from :class:`LoudnessMeter`, ``row_peak`` is the sample peak of every
    ``row``-sample row. The limiter keeps sample peaks ``_SAMPLE_MARGIN_DB`` under the ceiling, which
    leaves room for intersample overs; the predicted loudness is that of the planned gains applied to
    the step energies. Raises RenderFailed for a signal with nothing above the -70 LUFS gate.
    """
    lufs_in = gated_loudness(hop_energy)
    if not math.isfinite(lufs_in):
        raise RenderFailed("the render came out silent")
    gain_db = target_lufs - lufs_in
    row_gain = np.ones(row_peak.size)
    predicted = target_lufs
    for _ in range(8):
        row_gain = limiter_gains(row_peak, gain_db=gain_db, ceiling_dbtp=ceiling_dbtp)
        hop_gain = _hop_mean_square(row_gain, hop_energy.size)
        predicted = gated_loudness(hop_energy * hop_gain)
        if abs(predicted - target_lufs) < 0.05:
            break
        gain_db += target_lufs - predicted
    return GainPlan(
        row=row,
        row_gain=row_gain,
        gain_db=gain_db,
        lufs_in=lufs_in,
        predicted_lufs=predicted,
        limited=bool((row_gain < 10 ** (gain_db / 20) * 0.999).any()),
    )


#: Rows of look-ahead :func:`limiter_gains` needs: a row's gain is final once this many rows follow it.
LIMITER_LOOKAHEAD_ROWS = 2 * _ATTACK_ROWS + 1 + 1


def limiter_gains(row_peak: np.ndarray, *, gain_db: float, ceiling_dbtp: float) -> np.ndarray:
    """Linear gain per row: ``gain_db`` less what keeps each row's sample peak under the ceiling.

    Reductions are held forward with a linear release, widened backwards for the look-ahead and
    smoothed, so each row's gain stays at or below what its own and its neighbours' peaks need. Only
    ``LIMITER_LOOKAHEAD_ROWS`` rows of the future count, so a streaming render computes the same gains
    as a whole-song plan once that many rows follow (the release is a running maximum of the past).
    """
    ceiling = 10 ** ((ceiling_dbtp - _SAMPLE_MARGIN_DB) / 20)
    peaks = row_peak.astype(np.float64)
    steps = np.arange(peaks.size) * (_RELEASE_DB_PER_S * ROW_S)
    with np.errstate(divide="ignore"):
        over_db = np.maximum(20 * np.log10(np.maximum(peaks, 1e-12)) + gain_db - 20 * math.log10(ceiling), 0)
    held = np.maximum.accumulate(over_db + steps) - steps
    widened = dsp.maximum_filter1d(held, 2 * _ATTACK_ROWS + 1)
    reduction = np.maximum(dsp.uniform_filter1d(widened, 2 * _ATTACK_ROWS + 1), held)
    reduction = dsp.maximum_filter1d(reduction, 3)
    return np.asarray(10 ** ((gain_db - reduction) / 20))


def _hop_mean_square(row_gain: np.ndarray, hops: int) -> np.ndarray:
    squared = row_gain[: hops * HOP_ROWS] ** 2
    if squared.size < hops * HOP_ROWS:
        squared = np.pad(squared, (0, hops * HOP_ROWS - squared.size), mode="edge")
    return squared.reshape(hops, HOP_ROWS).mean(axis=1)
