"""Mixing float32 stem files and mastering the mix as a stream, never holding a song in RAM.

A ten-minute stereo float32 mix is 212 MB, more than a worker's whole memory budget, so the mix is
built chunk by chunk from the stem files. A first pass sums the stems with their gains, writes the
mix, and keeps only small summaries: the K-weighted energy of every 100 ms step (for BS.1770 gated
loudness) and the peak of every 10 ms row. The gain to the loudness target and the limiter's gain
envelope are decided on those summaries; a second pass applies them while the encoder consumes the
result.
"""

import io
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage, signal

from .errors import RenderFailed
from .master import k_weighting_sos

ROW_S = 0.01
HOP_ROWS = 10  # gating steps of 100 ms (400 ms blocks with 75% overlap = 4 steps)
CHUNK_ROWS = 250  # 2.5 s per chunk: a few MB of working memory
_MIN_STRETCH_HOPS = 100  # a thread of the summary pass gets at least 10 s
_PREROLL_S = 0.5  # the K-weighting filter forgets its start within ~0.1 s
SILENCE = 10 ** (-80 / 20)
_SAMPLE_MARGIN_DB = 0.6  # sample-peak ceiling below the true-peak ceiling, for intersample overs
_ATTACK_ROWS = 2
_RELEASE_DB_PER_S = 25.0


def npy_data_offset(path: str | Path) -> int:
    with Path(path).open("rb") as handle:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            np.lib.format.read_array_header_1_0(handle)
        else:
            np.lib.format.read_array_header_2_0(handle)
        return handle.tell()


class StemMixer:
    """Sums chunks of several (frames, 2) float32 .npy stems with per-stem linear gains.

    Reading starts at frame ``start``; each mixer has its own file handles, so several mixers can
    read different stretches of the same stems from different threads.
    """

    def __init__(self, paths: Sequence[str | Path], gains: Sequence[float], *, start: int = 0) -> None:
        self._stems: list[tuple[io.BufferedReader, float]] = []
        for path, gain in zip(paths, gains, strict=True):
            if gain == 0.0:
                continue
            handle = Path(path).open("rb")  # noqa: SIM115 - closed in close()
            handle.seek(npy_data_offset(path) + start * 8)
            self._stems.append((handle, gain))
        self._scratch = np.empty(0, dtype=np.float32)

    def read(self, frames: int) -> np.ndarray:
        """The next ``frames`` frames of the mix (zeros once stems run out)."""
        out = np.zeros((frames, 2), dtype=np.float32)
        if self._scratch.size < frames * 2:
            self._scratch = np.empty(frames * 2, dtype=np.float32)
        for handle, gain in self._stems:
            view = self._scratch[: frames * 2]
            got = handle.readinto(view.view(np.uint8).data) // 8
            if got:
                block = view[: got * 2].reshape(got, 2)
                if gain == 1.0:
                    out[:got] += block
                else:
                    out[:got] += block * np.float32(gain)
        return out

    def close(self) -> None:
        for handle, _ in self._stems:
            handle.close()


@dataclass
class MixSummary:
    """What pass one learned about the mix."""

    frames: int
    row: int
    hop_energy: np.ndarray  # K-weighted channel-summed mean square per 100 ms step
    row_peak: np.ndarray  # max |sample| per 10 ms row
    last_sound: int  # frame after the last sample above -80 dBFS


def summarise_stems(
    paths: Sequence[str | Path], gains: Sequence[float], frames: int, sample_rate: int, *, parallel: int = 1
) -> MixSummary:
    """Pass one: summarise the mix of ``paths`` at ``gains``.

    With ``parallel`` > 1 the song is cut at 100 ms steps into that many stretches (of at least
    10 s), summarised by one thread each: the filtering releases the GIL, and each stretch starts
    ``_PREROLL_S`` early so the K-weighting filter has settled: the same grid, peaks and end of sound
    as one pass, and energies within a few 1e-5 (float32 filter start-up, about 0.0002 dB).
    """
    row = round(sample_rate * ROW_S)
    hop = row * HOP_ROWS
    hops = -(-frames // hop)
    count = max(1, min(parallel, hops // _MIN_STRETCH_HOPS))
    bounds = [round(hops * index / count) * hop for index in range(count)] + [frames]

    def stretch(index: int) -> tuple[np.ndarray, np.ndarray, int]:
        return _summarise_stretch(paths, gains, bounds[index], bounds[index + 1], sample_rate)

    if count == 1:
        parts = [stretch(0)]
    else:
        with ThreadPoolExecutor(max_workers=count, thread_name_prefix="summarise") as executor:
            parts = list(executor.map(stretch, range(count)))
    return MixSummary(
        frames=frames,
        row=row,
        hop_energy=np.concatenate([part[0] for part in parts]),
        row_peak=np.concatenate([part[1] for part in parts]),
        last_sound=max(part[2] for part in parts),
    )


def _summarise_stretch(
    paths: Sequence[str | Path], gains: Sequence[float], start: int, stop: int, sample_rate: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Hop energies, row peaks and the end of the last sound of the mix's frames ``start`` .. ``stop``."""
    row = round(sample_rate * ROW_S)
    hop = row * HOP_ROWS
    sos = k_weighting_sos(sample_rate).astype(np.float32)
    state = np.zeros((sos.shape[0], 2, 2), dtype=np.float32)
    preroll = min(start, round(_PREROLL_S * sample_rate))
    mixer = StemMixer(paths, gains, start=start - preroll)
    chunk = row * CHUNK_ROWS
    hop_energy: list[np.ndarray] = [np.zeros(0)]
    row_peaks: list[np.ndarray] = [np.zeros(0, dtype=np.float32)]
    last_sound = 0
    try:
        if preroll:
            _, state = signal.sosfilt(sos, mixer.read(preroll), axis=0, zi=state)
        for position in range(start, stop, chunk):
            count = min(chunk, stop - position)
            block = mixer.read(count)
            weighted, state = signal.sosfilt(sos, block, axis=0, zi=state)
            energy = np.einsum("ij,ij->i", weighted, weighted, dtype=np.float64)
            whole = count // hop * hop
            hop_energy.append(energy[:whole].reshape(-1, hop).mean(axis=1))
            rows = -(-count // row)
            magnitude = np.zeros(rows * row * 2, dtype=np.float32)
            magnitude[: count * 2] = np.abs(block).reshape(-1)
            peaks = magnitude.reshape(rows, row * 2).max(axis=1)
            row_peaks.append(peaks)
            loud = np.flatnonzero(peaks > SILENCE)
            if loud.size:
                last_sound = min(stop, position + (int(loud[-1]) + 1) * row)
            if not np.isfinite(peaks).all():
                raise RenderFailed("the render came out corrupt (NaN or infinite samples)")
    finally:
        mixer.close()
    return np.concatenate(hop_energy), np.concatenate(row_peaks), last_sound


def gated_loudness(hop_energy: np.ndarray) -> float:
    """BS.1770-4 integrated loudness from 100 ms step energies (400 ms blocks, 75% overlap)."""
    if hop_energy.size < 4:
        return -math.inf
    blocks = np.convolve(hop_energy, np.ones(4) / 4, mode="valid")
    with np.errstate(divide="ignore"):
        loudness = -0.691 + 10 * np.log10(blocks)
    gated = blocks[loudness > -70.0]
    if gated.size == 0:
        return -math.inf
    relative = -0.691 + 10 * math.log10(float(gated.mean())) - 10.0
    final = blocks[loudness > max(-70.0, relative)]
    return -0.691 + 10 * math.log10(float(final.mean()))


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


def plan_gain(summary: MixSummary, *, target_lufs: float, ceiling_dbtp: float) -> GainPlan:
    """Gain to ``target_lufs`` and a look-ahead limiter envelope keeping sample peaks under the ceiling."""
    lufs_in = gated_loudness(summary.hop_energy)
    if not math.isfinite(lufs_in):
        raise RenderFailed("the render came out silent")
    ceiling = 10 ** ((ceiling_dbtp - _SAMPLE_MARGIN_DB) / 20)
    peaks = summary.row_peak.astype(np.float64)
    release_per_row = _RELEASE_DB_PER_S * ROW_S
    steps = np.arange(peaks.size) * release_per_row
    gain_db = target_lufs - lufs_in
    row_gain = np.ones(peaks.size)
    predicted = target_lufs
    for _ in range(8):
        with np.errstate(divide="ignore"):
            over_db = np.maximum(
                20 * np.log10(np.maximum(peaks, 1e-12)) + gain_db - 20 * math.log10(ceiling), 0
            )
        # Hold reductions forward with a linear release, widen them backwards for the look-ahead,
        # then smooth: each row's gain stays at or below what its own and its neighbours' peaks need.
        held = np.maximum.accumulate(over_db + steps) - steps
        widened = ndimage.maximum_filter1d(held, 2 * _ATTACK_ROWS + 1, mode="nearest")
        reduction = np.maximum(ndimage.uniform_filter1d(widened, 2 * _ATTACK_ROWS + 1, mode="nearest"), held)
        reduction = ndimage.maximum_filter1d(reduction, 3, mode="nearest")
        row_gain = 10 ** ((gain_db - reduction) / 20)
        hop_gain = _hop_mean_square(row_gain, summary.hop_energy.size)
        predicted = gated_loudness(summary.hop_energy * hop_gain)
        if abs(predicted - target_lufs) < 0.05:
            break
        gain_db += target_lufs - predicted
    return GainPlan(
        row=summary.row,
        row_gain=row_gain,
        gain_db=gain_db,
        lufs_in=lufs_in,
        predicted_lufs=predicted,
        limited=bool((row_gain < 10 ** (gain_db / 20) * 0.999).any()),
    )


def _hop_mean_square(row_gain: np.ndarray, hops: int) -> np.ndarray:
    squared = row_gain[: hops * HOP_ROWS] ** 2
    if squared.size < hops * HOP_ROWS:
        squared = np.pad(squared, (0, hops * HOP_ROWS - squared.size), mode="edge")
    return squared.reshape(hops, HOP_ROWS).mean(axis=1)


class TruePeakMeter:
    """4x oversampled peak where it can matter, sample peak elsewhere.

    Oversampling a whole song costs more than encoding it, so only 10 ms rows whose sample peak is
    within ``margin_db`` of the ceiling are interpolated; an intersample over larger than that margin
    needs square-wave-like content that a General MIDI render does not produce.
    """

    def __init__(self, ceiling: float, row: int, margin_db: float = 1.0) -> None:
        self.threshold = ceiling * 10 ** (-margin_db / 20)
        self.row = row
        self.peak = 0.0
        self._taps = signal.firwin(48, 0.25, window=("kaiser", 8.0)) * 4

    def add(self, block: np.ndarray) -> None:
        frames = block.shape[0]
        if frames == 0:
            return
        rows = -(-frames // self.row)
        magnitude = np.zeros(rows * self.row * 2, dtype=np.float32)
        magnitude[: frames * 2] = np.abs(block).reshape(-1)
        row_peak = magnitude.reshape(rows, self.row * 2).max(axis=1)
        self.peak = max(self.peak, float(row_peak.max()))
        hot = np.flatnonzero(row_peak > self.threshold)
        if hot.size == 0:
            return
        # Contiguous runs of hot rows, each interpolated with a little context on both sides.
        breaks = np.flatnonzero(np.diff(hot) > 1)
        for first, last in zip(
            np.concatenate(([hot[0]], hot[breaks + 1])), np.concatenate((hot[breaks], [hot[-1]])), strict=True
        ):
            start = max(0, int(first) * self.row - 24)
            stop = min(frames, (int(last) + 1) * self.row + 24)
            segment = block[start:stop]
            for channel in range(segment.shape[1]):
                upsampled = signal.upfirdn(self._taps, segment[:, channel], up=4)
                self.peak = max(self.peak, float(np.abs(upsampled[96:-96]).max(initial=0.0)))

    @property
    def dbtp(self) -> float:
        return 20 * math.log10(self.peak) if self.peak > 0 else -math.inf


def waveform_peaks(row_peak: np.ndarray, row_gain: np.ndarray, count: int = 1000) -> list[float]:
    """About ``count`` peak values in 0..1 for drawing the waveform of the mastered audio."""
    mastered = row_peak[: row_gain.size] * row_gain[: row_peak.size]
    if mastered.size == 0:
        return []
    buckets = np.array_split(mastered, min(count, mastered.size))
    values = np.array([float(bucket.max()) for bucket in buckets])
    top = float(values.max())
    return [round(float(v), 4) for v in (values / top if top > 0 else values)]
