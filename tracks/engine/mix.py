"""Mixing float32 stem files and summarising the mix as a stream, never holding a song in RAM.

A ten-minute stereo float32 mix is 212 MB, more than a worker's whole memory budget, so the mix is
never written out or held whole: it is summed from the stem files chunk by chunk, twice. The first
pass (:func:`summarise_stems`) keeps only small summaries: the K-weighted energy of every 100 ms
step (for BS.1770 gated loudness, by :class:`~tracks.engine.master.LoudnessMeter`), the peak of every
10 ms row and where the sound ends. :mod:`tracks.engine.master` plans the gain and the limiter on those;
the second pass sums the stems again and applies the plan while the encoder consumes the result.
"""

import io
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import RenderFailed
from .master import HOP_ROWS, LoudnessMeter, row_frames

CHUNK_ROWS = 250  # 2.5 s per chunk: a few MB of working memory
_MIN_STRETCH_HOPS = 100  # a thread of the summary pass gets at least 10 s
_PREROLL_S = 0.5  # the K-weighting filter forgets its start within ~0.1 s
SILENCE = 10 ** (-80 / 20)


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
    row = row_frames(sample_rate)
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
    row = row_frames(sample_rate)
    meter = LoudnessMeter(sample_rate, channels=2)
    preroll = min(start, round(_PREROLL_S * sample_rate))
    mixer = StemMixer(paths, gains, start=start - preroll)
    chunk = row * CHUNK_ROWS
    row_peaks: list[np.ndarray] = [np.zeros(0, dtype=np.float32)]
    last_sound = 0
    try:
        if preroll:
            meter.prime(mixer.read(preroll))
        for position in range(start, stop, chunk):
            count = min(chunk, stop - position)
            block = mixer.read(count)
            meter.add(block)
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
    return meter.hop_energy, np.concatenate(row_peaks), last_sound


def waveform_peaks(row_peak: np.ndarray, row_gain: np.ndarray, count: int = 1000) -> list[float]:
    """About ``count`` peak values in 0..1 for drawing the waveform of the mastered audio."""
    mastered = row_peak[: row_gain.size] * row_gain[: row_peak.size]
    if mastered.size == 0:
        return []
    buckets = np.array_split(mastered, min(count, mastered.size))
    values = np.array([float(bucket.max()) for bucket in buckets])
    top = float(values.max())
    return [round(float(v), 4) for v in (values / top if top > 0 else values)]
