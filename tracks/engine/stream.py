"""Streaming renders: the first seconds of a variant reach a listener while the rest is synthesized.

A whole-song render (:mod:`.render`) measures the mix before it masters it, so nothing can be heard
until synthesis is over. A streaming render decides the master gain *before* the first sample, from a
:class:`LoudnessProfile` measured once per revision (or per cached stem set), and keeps the peaks
under the ceiling with the same look-ahead limiter as the whole-song plan, run as the audio arrives
(:func:`~tracks.engine.master.limiter_gains` looks only ``LIMITER_LOOKAHEAD_ROWS`` ahead). The synths
of the render's part groups run side by side, each writing its stem file in small blocks; the mixer
follows the slowest of them, masters what all of them have written and feeds one LAME, whose output
file is published frame by frame as it grows. The stored MP3 is that file: a listener hears the same
frames the finished render holds (only the leading LAME "Info" frame, rewritten at the end, is not
streamed).

A mix change whose per-part stems are cached synthesizes nothing; when the listener asked to start
at ``start_s``, that stretch is encoded first by a second LAME and the two encodes are spliced like
the segments of a parallel encode (:mod:`.mp3frames`), so the new mix is heard at once wherever the
song is.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import mp3frames, pool
from .arrange import arranged_song
from .arrangement import Arrangement
from .config import DEFAULT_CONFIG, EngineConfig
from .encode import SegmentedMp3Encoder, _commit, _Lame, _temporary_beside, parse_bitrate, tag_audio
from .errors import RenderFailed
from .master import (
    HOP_ROWS,
    LIMITER_LOOKAHEAD_ROWS,
    GainPlan,
    LoudnessMeter,
    TruePeakMeter,
    gated_loudness,
    limiter_gains,
    plan_gain,
    row_frames,
)
from .mix import SILENCE, StemMixer, npy_data_offset, summarise_stems, waveform_peaks
from .notes import transpose_key
from .presets import effective_mix, mix_to_dict
from .render import (
    CEILING_DBTP,
    END_MARGIN_S,
    MP3_QUALITY,
    SAMPLE_RATE,
    TARGET_LUFS,
    RenderResult,
    _balanced_groups,
    _check_scratch,
    _load_manifest,
    _melody_part,
    _mix_inputs,
    _perform,
    _stem_directory,
    _stem_frames,
    effective_part_gains,
    stem_jobs,
)
from .settings import VariantSettings
from .synth import StemJob, thread_synth
from .transform import CLICK_ACCENT_NOTE, CLICK_BEAT_NOTE, CLICK_LENGTH_S, DRUM_CHANNEL, Performance

__all__ = [
    "LoudnessProfile",
    "Publish",
    "measure_profile",
    "profile_for_stems",
    "stream_blocker",
    "stream_variant",
]

logger = logging.getLogger(__name__)

#: Receives the song's MP3 audio frames as they are encoded: (index of the first frame, whole frames).
#: Frame ``k`` holds input samples from about ``k * 1152 - DECODER_DELAY``.
Publish = Callable[[int, bytes], None]

PROFILE_VERSION = 1
PROFILE_FILE = "loudness.npz"
STREAM_BITRATE = "192k"
# Samples between the encoder's input and its decoded output: LAME's 576 plus the decoder's 529.
DECODER_DELAY = mp3frames.ENCODER_DELAY + 529
_TEMPO_DENSITY_EXPONENT = 0.77  # energy density ~ tempo ** this (fit on POP909 songs, TimGM6mb)
_DB_PER_SEMITONE = 0.07
_POLL_S = 0.004
_RELEASE_CONTEXT = 2 * SAMPLE_RATE  # peaks read before a stretch, for the limiter's release
# Raw float input needs no probing; by default ffmpeg reads 1.5 s of audio before it writes a frame.
_LAME_INPUT = ("-probesize", "32", "-analyzeduration", "0")
_STREAM_CHUNK = 8192  # frames mastered and encoded at a time: one synth block, 186 ms
_MAX_STREAM_SYNTHS = 8  # more groups than this (many distinct part gains) render the whole-song way
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _synth_executor() -> ThreadPoolExecutor:
    """Threads that keep their synths between streaming renders (every group synthesizes at once)."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=_MAX_STREAM_SYNTHS, thread_name_prefix="stream-synth")
        return _executor


@dataclass
class LoudnessProfile:
    """What a mix of one revision's parts will measure, kept small: per 100 ms step, the K-weighted
    energy of every part alone and of all parts together at unity gain (their correlations
    included), and the sample peak of all parts together."""

    parts: np.ndarray  # (parts, steps) float64
    total: np.ndarray  # (steps,)
    peak: np.ndarray  # (steps,)
    tempo: float = 1.0  # the variant it was measured on
    transpose: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: log10 of each value as base64 float16 (0.1 dB steps, a few KB a minute)."""

        def pack(values: np.ndarray) -> str:
            logs = np.log10(np.maximum(values, 1e-20)).astype(np.float16)
            return base64.b64encode(logs.tobytes()).decode()

        return {
            "version": PROFILE_VERSION,
            "steps": int(self.total.size),
            "parts": [pack(row) for row in self.parts],
            "total": pack(self.total),
            "peak": pack(self.peak),
            "tempo": self.tempo,
            "transpose": self.transpose,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoudnessProfile | None:
        """The profile, or None for data of another version or shape."""

        def unpack(text: str) -> np.ndarray:
            logs = np.frombuffer(base64.b64decode(text), dtype=np.float16).astype(np.float64)
            return np.asarray(10**logs)

        try:
            if data.get("version") != PROFILE_VERSION:
                return None
            total, peak = unpack(data["total"]), unpack(data["peak"])
            parts = np.array([unpack(text) for text in data["parts"]]).reshape(-1, total.size)
            tempo, transpose = float(data.get("tempo", 1.0)), int(data.get("transpose", 0))
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
        if peak.size != total.size or not 0.1 <= tempo <= 10:
            return None
        return cls(parts=parts, total=total, peak=peak, tempo=tempo, transpose=transpose)

    def predict(
        self, part_gains: list[float], *, tempo: float = 1.0, transpose: int = 0, offset_steps: int = 0
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Step energies and peaks of the mix at ``part_gains`` for a variant at ``tempo`` and
        ``transpose`` whose music starts ``offset_steps`` in (a count-in); None when the parts do not
        match.

        Each step keeps the ratio of the true sum to the sum of the parts' energies, so parts that
        double each other (which add more than their energies) stay as loud as measured. The time
        axis follows the tempo; notes that decay get denser with it (measured on pop songs: about
        +2.3 dB per doubling of the tempo) and a little brighter higher up (+0.07 dB a semitone).
        """
        if len(part_gains) != self.parts.shape[0]:
            return None
        squares = np.asarray(part_gains, dtype=np.float64) ** 2
        alone = self.parts.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(alone > 0, self.total / alone, 1.0)
        energy = ratio * (squares[:, np.newaxis] * self.parts).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(self.total > 0, np.sqrt(energy / self.total), 0.0)
        peak = self.peak * scale
        speed = tempo / self.tempo
        steps = max(1, round(energy.size / speed))
        index = np.minimum((np.arange(steps) * speed).astype(np.int64), energy.size - 1)
        density = speed**_TEMPO_DENSITY_EXPONENT * 10 ** (
            _DB_PER_SEMITONE * (transpose - self.transpose) / 10
        )
        energy, peak = energy[index] * density, peak[index]
        if offset_steps > 0:
            energy = np.concatenate([np.zeros(offset_steps), energy])
            peak = np.concatenate([np.zeros(offset_steps), peak])
        return energy, peak


def predicted_master_gain_db(
    profile: LoudnessProfile,
    part_gains: list[float],
    *,
    settings: VariantSettings,
    performance: Performance,
    music_s: float,
    soundfont: Path,
) -> float | None:
    """The static gain that takes the variant to the target loudness through the limiter, or None.

    ``music_s`` is the arranged song's length at its written tempo (what is not music at the start
    of the performance is the count-in). The click is added from two hits synthesized once per
    SoundFont: its peaks make the limiter work on every beat, which the gain must make up for.
    """
    hop = row_frames(SAMPLE_RATE) * HOP_ROWS
    count_in = max(0, performance.end_frame - round(music_s / settings.tempo * SAMPLE_RATE))
    predicted = profile.predict(
        part_gains, tempo=settings.tempo, transpose=settings.transpose, offset_steps=round(count_in / hop)
    )
    if predicted is None:
        return None
    energy, peak = predicted
    if performance.has_click:
        hits = _click_hits(str(soundfont.resolve()))
        onsets = (performance.part == performance.click_part) & ((performance.status & 0xF0) == 0x90)
        steps = performance.frame[onsets] // hop
        notes = performance.d1[onsets]
        size = max(energy.size, int(steps.max()) + 1 if steps.size else 0)
        energy = np.pad(energy, (0, size - energy.size))
        peak = np.pad(peak, (0, size - peak.size))
        for note, (hit_energy, hit_peak) in hits.items():
            at = steps[notes == note]
            np.add.at(energy, at, hit_energy)
            peak[at] = np.maximum(peak[at], hit_peak)
    if not math.isfinite(gated_loudness(energy)):
        return None
    try:
        plan = plan_gain(
            hop_energy=energy,
            row_peak=np.repeat(peak, HOP_ROWS),
            row=row_frames(SAMPLE_RATE),
            target_lufs=TARGET_LUFS,
            ceiling_dbtp=CEILING_DBTP,
        )
    except RenderFailed:
        return None
    return plan.gain_db


_CLICK_HIT_CACHE: dict[str, dict[int, tuple[float, float]]] = {}
_CLICK_HIT_LOCK = threading.Lock()


def _click_hits(soundfont: str) -> dict[int, tuple[float, float]]:
    """Energy (summed over its 100 ms steps) and peak of one click hit of each kind, per SoundFont."""
    with _CLICK_HIT_LOCK:
        cached = _CLICK_HIT_CACHE.get(soundfont)
    if cached is not None:
        return cached
    half = SAMPLE_RATE // 2  # five steps per hit
    notes = [(CLICK_ACCENT_NOTE, 127), (CLICK_BEAT_NOTE, 96)]
    frames, status, d1, d2 = [], [], [], []
    for number, (note, velocity) in enumerate(notes):
        frames += [number * half, number * half + round(CLICK_LENGTH_S * SAMPLE_RATE)]
        status += [0x90 | DRUM_CHANNEL, 0x80 | DRUM_CHANNEL]
        d1 += [note, note]
        d2 += [velocity, 0]
    with tempfile.TemporaryDirectory(prefix="backtrack-click-") as directory:
        path = Path(directory) / "click.npy"
        job = StemJob(
            out_path=str(path),
            n_frames=half * len(notes),
            end_frame=half * len(notes),
            frame=np.array(frames, dtype=np.int64),
            status=np.array(status, dtype=np.uint8),
            d1=np.array(d1, dtype=np.int32),
            d2=np.array(d2, dtype=np.int16),
            sysex=[],
            effects=False,  # as the click is rendered (see StemJob)
        )
        _synth_executor().submit(lambda: thread_synth(soundfont).render(job)).result()
        audio = np.load(path)
    hits: dict[int, tuple[float, float]] = {}
    for number, (note, _velocity) in enumerate(notes):
        block = np.ascontiguousarray(audio[number * half : (number + 1) * half])
        meter = LoudnessMeter(SAMPLE_RATE)
        meter.add(block)
        hits[note] = (float(meter.hop_energy.sum()), float(np.abs(block).max(initial=0.0)))
    with _CLICK_HIT_LOCK:
        _CLICK_HIT_CACHE[soundfont] = hits
    return hits


def measure_profile(
    stem_paths: list[Path],
    stem_parts: list[list[int]],
    part_count: int,
    frames: int,
    *,
    tempo: float = 1.0,
    transpose: int = 0,
    parallel: int = 1,
) -> LoudnessProfile:
    """The profile of per-part stems (one part each; a click stem, holding ``part_count``, is left out)."""
    summaries: dict[int, np.ndarray] = {}
    for path, parts in zip(stem_paths, stem_parts, strict=True):
        if len(parts) == 1 and parts[0] < part_count:
            summaries[parts[0]] = summarise_stems(
                [path], [1.0], frames, SAMPLE_RATE, parallel=parallel
            ).hop_energy
    paths = [path for path, parts in zip(stem_paths, stem_parts, strict=True) if parts[0] < part_count]
    whole = summarise_stems(paths, [1.0] * len(paths), frames, SAMPLE_RATE, parallel=parallel)
    steps = whole.hop_energy.size
    rows = whole.row_peak[: steps * HOP_ROWS]
    rows = np.pad(rows, (0, steps * HOP_ROWS - rows.size))
    matrix = np.zeros((part_count, steps))
    for index, energy in summaries.items():
        matrix[index, : min(steps, energy.size)] = energy[:steps]
    return LoudnessProfile(
        parts=matrix,
        total=whole.hop_energy,
        peak=rows.reshape(steps, HOP_ROWS).max(axis=1),
        tempo=tempo,
        transpose=transpose,
    )


def profile_for_stems(
    arrangement: Arrangement,
    settings: VariantSettings,
    *,
    soundfont: str | os.PathLike[str],
    stem_dir: str | os.PathLike[str],
) -> LoudnessProfile | None:
    """The profile kept beside the cached per-part stems of ``settings.stem_key()`` (measured when
    :func:`~tracks.engine.render.prepare_stems` built them), or None when those stems are not cached."""
    settings = settings.normalised()
    arranged = arranged_song(arrangement, settings.arrangement, tempo=settings.tempo)
    directory = _stem_directory(arranged, settings, Path(soundfont), stem_dir)
    stems = _load_manifest(directory)
    if stems is None:
        return None
    return load_profile(directory)


def load_profile(directory: Path) -> LoudnessProfile | None:
    """The profile saved beside a stem set by :func:`save_profile`, or None."""
    try:
        with np.load(directory / PROFILE_FILE) as saved:
            return LoudnessProfile(
                parts=saved["parts"],
                total=saved["total"],
                peak=saved["peak"],
                tempo=float(saved["variant"][0]),
                transpose=int(saved["variant"][1]),
            )
    except (OSError, ValueError, KeyError):
        return None


def save_profile(directory: Path, profile: LoudnessProfile) -> None:
    with (directory / PROFILE_FILE).open("wb") as handle:
        np.savez(
            handle,
            parts=profile.parts,
            total=profile.total,
            peak=profile.peak,
            variant=np.array([profile.tempo, profile.transpose]),
        )


def stream_blocker(settings: VariantSettings, suffix: str) -> str | None:
    """Why a variant cannot be streamed (it needs the whole song first), or None when it can."""
    if suffix != ".mp3" or settings.format not in ("", "mp3"):
        return "only MP3 renders stream"
    if settings.layout not in ("", "stereo"):
        return "the split layout renders whole"
    if settings.cues:
        return "spoken cues render whole"
    if settings.space_for_voice:
        return "the space for the voice renders whole"
    if settings.dynamics:
        return "dynamics per section render whole"
    return None


def stream_variant(
    arrangement: Arrangement,
    settings: VariantSettings,
    *,
    out_path: str | os.PathLike[str],
    soundfont: str | os.PathLike[str],
    stem_dir: str | os.PathLike[str],
    profile: LoudnessProfile | None,
    publish: Publish,
    start_s: float = 0.0,
    tags: dict[str, str] | None = None,
    progress: Callable[[float], None] | None = None,
    config: EngineConfig = DEFAULT_CONFIG,
) -> RenderResult | None:
    """Render ``settings`` to the MP3 ``out_path`` while publishing its frames; None when it cannot.

    None (nothing written, nothing published) when :func:`stream_blocker` objects or no loudness
    profile says what gain to master at: the caller renders the whole-song way instead. The profile
    of the cached stems of this key and tempo wins over ``profile`` (the revision's). ``start_s`` is
    where a listener waits: with cached stems it is encoded first.
    """
    out = Path(out_path)
    if stream_blocker(settings, out.suffix.lower()) is not None:
        return None
    arranged = arranged_song(arrangement, settings.arrangement, tempo=settings.tempo)
    settings.validate(len(arranged.parts))
    settings = settings.normalised()
    soundfont_path = Path(soundfont)
    if not soundfont_path.is_file():
        raise RenderFailed(f"SoundFont not found: {soundfont_path}")
    Path(stem_dir).mkdir(parents=True, exist_ok=True)
    part_gains = effective_part_gains(arranged, settings)
    # Cached per-part stems of this key and tempo: nothing to synthesize, and their own profile.
    directory = _stem_directory(arranged, settings, soundfont_path, stem_dir)
    cached = _load_manifest(directory)
    cached_profile = load_profile(directory) if cached is not None else None
    performance = _perform(arranged, settings)
    gain_db = None
    for candidate in (cached_profile, profile):
        if candidate is not None:
            gain_db = predicted_master_gain_db(
                candidate,
                part_gains,
                settings=settings,
                performance=performance,
                music_s=float(arranged.end_s),
                soundfont=soundfont_path,
            )
            if gain_db is not None:
                break
    if gain_db is None:
        return None
    report = progress or (lambda _fraction: None)
    report(0.0)
    scratch = Path(tempfile.mkdtemp(prefix="backtrack-stream-", dir=stem_dir))
    try:
        source: _Source | None
        if cached is not None:
            paths, gains = _mix_inputs(cached, part_gains)
            source = _Source(paths, gains, cached.frames, cached.end_frame, cached.warnings, None)
        else:
            source = _synthesize_live(arranged, performance, part_gains, soundfont_path, scratch, config)
        if source is None:
            return None
        with source:
            master = _StreamMaster(source, gain_db=gain_db, publish=publish, report=report)
            start = 0 if cached is None else _start_frame(start_s, source.end_frame)
            master.run(out, tags or {}, start=start, config=config)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    analysis = arranged.analysis
    key = analysis.get("key", "C major")
    mix = effective_mix(arranged.analysis.get("parts", []), settings, _melody_part(arranged))
    return RenderResult(
        duration_s=round(master.frames / SAMPLE_RATE, 3),
        tempo_bpm=round(float(analysis.get("tempo_bpm", 120.0)) * settings.tempo, 2),
        key=transpose_key(key, settings.transpose) if key else key,
        lufs=round(master.lufs, 2),
        true_peak_dbtp=round(master.true_peak_dbtp, 2),
        peaks=master.waveform(),
        stems_reused=cached is not None,
        warnings=list(source.warnings),
        effective_mix=mix_to_dict(mix),
    )


def _start_frame(start_s: float, end_frame: int) -> int:
    """The song frame (on the MP3 frame grid) a listener at ``start_s`` waits for; 0 near the start."""
    step = mp3frames.SAMPLES_PER_FRAME
    frame = int(max(0.0, start_s) * SAMPLE_RATE) // step * step
    # A stretch worth encoding separately: both encodes need their warm-up and overlap frames.
    margin = (SegmentedMp3Encoder.WARMUP_FRAMES + SegmentedMp3Encoder.OVERLAP_FRAMES) * 4 * step
    if frame < margin or frame > end_frame - margin:
        return 0
    return frame


class _Source:
    """The stems a streaming render mixes, and how far each has been written."""

    def __init__(
        self,
        paths: list[Path],
        gains: list[float],
        frames: int,
        end_frame: int,
        warnings: list[str],
        futures: list[Future[Any]] | None,
    ) -> None:
        self.paths = paths
        self.gains = gains
        self.frames = frames
        self.end_frame = end_frame
        self.warnings = warnings
        self._futures = futures
        self._cancel = threading.Event()
        self._offsets: list[int] | None = None
        self._release: Callable[[], None] | None = None  # gives back the core slots synthesis held

    def cancel_event(self) -> threading.Event:
        return self._cancel

    def available(self) -> int:
        """Frames every stem holds by now (all of them once synthesis is over); raises its errors."""
        if self._futures is None:
            return self.frames
        for future in self._futures:
            if future.done() and future.exception() is not None:
                raise RenderFailed(f"synthesis failed: {future.exception()}")
        if all(future.done() for future in self._futures):
            return self.frames
        if self._offsets is None:
            try:
                self._offsets = [npy_data_offset(path) for path in self.paths]
            except (OSError, ValueError):
                return 0  # a header not written yet
        written = []
        for path, offset in zip(self.paths, self._offsets, strict=True):
            try:
                written.append(max(0, (path.stat().st_size - offset) // 8))
            except OSError:
                written.append(0)
        return min(self.frames, *written) if written else self.frames

    def wait_for(self, frame: int) -> None:
        """Block until every stem holds ``frame`` frames."""
        while self.available() < frame:
            time.sleep(_POLL_S)

    def __enter__(self) -> _Source:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._futures is not None:
            self._cancel.set()
            for future in self._futures:
                # Failures were raised through available() already (or the job was cancelled).
                with contextlib.suppress(Exception):
                    future.result()
        if self._release is not None:
            self._release()
            self._release = None


class _CancelledError(Exception):
    pass


def _synthesize_live(
    arrangement: Arrangement,
    performance: Performance,
    part_gains: list[float],
    soundfont: Path,
    scratch: Path,
    config: EngineConfig,
) -> _Source | None:
    """Start every group's synth at once, each writing its stem file block by block.

    The machine's core slots (see :func:`pool.cpu_share`) are held until the source is closed (the
    stream is over), so another render on this machine meanwhile synthesizes on one core, as it
    would beside a whole-song render.
    """
    share = contextlib.ExitStack()
    lanes = share.enter_context(pool.cpu_share(config=config))
    try:
        groups, gains = _balanced_groups(arrangement, performance, part_gains, lanes)
        if len(groups) > _MAX_STREAM_SYNTHS:
            share.close()
            return None
        frames = _stem_frames(performance)
        _check_scratch(len(groups), frames, config)
    except BaseException:
        share.close()
        raise
    paths, jobs = stem_jobs(performance, groups, scratch, prefix="live")
    source = _Source(paths, gains, frames, performance.end_frame, performance.warnings, None)
    cancel = source.cancel_event()
    resolved = str(soundfont.resolve())

    def run(job: StemJob) -> None:
        if cancel.is_set():
            raise _CancelledError
        thread_synth(resolved).render(job)

    executor = _synth_executor()
    source._futures = [executor.submit(run, job) for job in jobs]
    source._release = share.close
    return source


class _StreamMaster:
    """Masters a growing mix at a fixed gain under the streaming limiter and encodes it."""

    def __init__(self, source: _Source, *, gain_db: float, publish: Publish, report: Callable[[float], None]):
        self.source = source
        self.gain_db = gain_db
        self.publish = publish
        self.report = report
        self.row = row_frames(SAMPLE_RATE)
        self.frames = source.frames
        self.lufs = -math.inf
        self.true_peak_dbtp = -math.inf
        self._row_peak = np.zeros(-(-source.frames // self.row))
        self._row_gain = np.ones_like(self._row_peak)
        self._assigned = 0  # rows whose gains _settle has computed

    def run(self, out: Path, tags: dict[str, str], *, start: int, config: EngineConfig) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        temporary = _temporary_beside(out)
        try:
            if start == 0:
                self._encode_one(temporary, config)
            else:
                self._encode_from(temporary, start, config)
            if tags:
                tag_audio(temporary, tags)
            _commit(temporary, out)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    # -- mastering -------------------------------------------------------------------------------

    def _read_peaks(self, block: np.ndarray, position: int) -> None:
        """Record the sample peak of every row ``block`` (frames from ``position``) touches."""
        if block.shape[0] == 0:
            return
        first, last = position // self.row, -(-(position + block.shape[0]) // self.row)
        padded = np.zeros(((last - first) * self.row, 2), dtype=np.float32)
        offset = position - first * self.row
        padded[offset : offset + block.shape[0]] = np.abs(block)
        peaks = padded.reshape(last - first, -1).max(axis=1)
        self._row_peak[first:last] = np.maximum(self._row_peak[first:last], peaks)

    def _settle(self, rows: int) -> None:
        """Gains of the rows before ``rows`` from the peaks so far (final up to the look-ahead).

        Only the rows since the last call are recomputed, over a window that starts a release time
        earlier: a reduction older than that has released fully, so the window gives the gains a
        whole-song limiter would.
        """
        rows = min(rows, self._row_peak.size)
        low = max(0, min(self._assigned, rows) - 2 * LIMITER_LOOKAHEAD_ROWS)
        window = max(0, low - _RELEASE_CONTEXT // self.row)
        gains = limiter_gains(self._row_peak[window:rows], gain_db=self.gain_db, ceiling_dbtp=CEILING_DBTP)
        self._row_gain[low:rows] = gains[low - window :]
        self._assigned = rows

    def _apply(self, block: np.ndarray, start: int) -> np.ndarray:
        plan = GainPlan(
            row=self.row,
            row_gain=self._row_gain,
            gain_db=self.gain_db,
            lufs_in=math.nan,
            predicted_lufs=math.nan,
            limited=False,
        )
        return plan.apply(block, start)

    def _mastered_stretch(
        self, start: int, end: int, sink: Callable[[np.ndarray], None], *, share: tuple[float, float]
    ) -> None:
        """Mix, master and hand ``sink`` the frames ``start`` .. ``end`` as the stems fill up.

        Peaks are read a look-ahead past what is mastered (and a release time before ``start``), so
        every row gets the gain the whole-song limiter would give it.
        """
        lookahead = (LIMITER_LOOKAHEAD_ROWS + 2) * self.row
        primed = max(0, start - _RELEASE_CONTEXT)
        if primed < start:
            self.source.wait_for(start)
            context = StemMixer(self.source.paths, self.source.gains, start=primed)
            try:
                self._read_peaks(context.read(start - primed), primed)
            finally:
                context.close()
        self._assigned = primed // self.row
        read_end = min(self.frames, end + lookahead)
        reader: StemMixer | None = None  # opened once every stem file has its header
        pending: list[tuple[int, np.ndarray]] = []
        read_to = done_to = start
        try:
            while done_to < end:
                if read_to < read_end:
                    target = min(read_end, read_to + _STREAM_CHUNK)
                    self.source.wait_for(target)
                    if reader is None:
                        reader = StemMixer(self.source.paths, self.source.gains, start=start)
                    block = reader.read(target - read_to)
                    self._read_peaks(block, read_to)
                    pending.append((read_to, block))
                    read_to = target
                complete = read_to >= read_end
                self._settle(self._row_peak.size if read_to >= self.frames else read_to // self.row)
                safe = end if complete else min(end, read_to - lookahead)
                while pending and pending[0][0] < safe:
                    position, chunk = pending.pop(0)
                    stop = min(position + chunk.shape[0], safe)
                    sink(self._apply(chunk[: stop - position], position))
                    if stop < position + chunk.shape[0] and stop < end:
                        pending.insert(0, (stop, chunk[stop - position :]))
                    done_to = stop
                base, span = share
                self.report(base + span * (done_to - start) / max(1, end - start))
        finally:
            if reader is not None:
                reader.close()

    def _song_length(self) -> int:
        """Frames of the finished song: the sound's end plus a margin, never before the music's end.

        The same rule as the whole-song render, decided once synthesis is over (only the tail after
        the music's end is looked at).
        """
        source = self.source
        source.wait_for(source.frames)
        start = min(source.end_frame, source.frames)
        mixer = StemMixer(source.paths, source.gains, start=start)
        try:
            tail = mixer.read(source.frames - start)
        finally:
            mixer.close()
        loud = np.flatnonzero(np.abs(tail).max(axis=1) > SILENCE)
        last_sound = start + int(loud[-1]) + 1 if loud.size else 0
        return min(source.frames, max(source.end_frame, last_sound) + round(END_MARGIN_S * SAMPLE_RATE))

    # -- encoding ----------------------------------------------------------------------------------

    def _encode_one(self, temporary: Path, config: EngineConfig) -> None:
        """One LAME, its file published as it grows."""
        lame = _Lame(
            temporary,
            SAMPLE_RATE,
            channels=2,
            kbps=parse_bitrate(STREAM_BITRATE),
            quality=MP3_QUALITY,
            ffmpeg=config.ffmpeg,
            options=("-write_xing", "1", "-id3v2_version", "0", "-flush_packets", "1"),
            input_options=_LAME_INPUT,
        )
        tailer = _FileTail(temporary, self.publish, first_frame=0, skip_info=True)
        meter = _OutputMeter(self.row)
        try:
            # The music up to its end streams at once; the tail waits for the end of synthesis.
            body_end = min(self.source.end_frame, self.frames)

            def sink(block: np.ndarray) -> None:
                meter.add(block)
                lame.write(np.ascontiguousarray(block, dtype=np.float32).tobytes())
                tailer.poll()

            self._mastered_stretch(0, body_end, sink, share=(0.0, 0.93))
            self.frames = self._song_length()
            if self.frames > body_end:
                self._mastered_stretch(body_end, self.frames, sink, share=(0.93, 0.05))
            lame.finish()
            tailer.poll(final=True)
        except BaseException:
            lame.stop()
            raise
        self.lufs, self.true_peak_dbtp = meter.lufs, meter.dbtp
        self.report(1.0)

    def _encode_from(self, temporary: Path, start: int, config: EngineConfig) -> None:
        """Two LAMEs: ``start`` .. end first (published as it grows), then 0 .. ``start``; spliced."""
        step = mp3frames.SAMPLES_PER_FRAME
        splice = start // step
        warmup, overlap = SegmentedMp3Encoder.WARMUP_FRAMES, SegmentedMp3Encoder.OVERLAP_FRAMES
        later_first = splice - warmup
        pieces = [_temporary_beside(temporary), _temporary_beside(temporary)]
        options = (*SegmentedMp3Encoder.LAME_OPTIONS, "-flush_packets", "1")
        kbps = parse_bitrate(STREAM_BITRATE)

        def spawn(piece: Path) -> _Lame:
            return _Lame(
                piece,
                SAMPLE_RATE,
                channels=2,
                kbps=kbps,
                quality=MP3_QUALITY,
                ffmpeg=config.ffmpeg,
                options=options,
                input_options=_LAME_INPUT,
            )

        lames: dict[str, _Lame] = {}
        later_meter, earlier_meter = _OutputMeter(self.row), _OutputMeter(self.row)
        try:
            # The listener's encoder first: ffmpeg takes 0.1-0.2 s to start, long enough to find
            # the song's length meanwhile; the other one starts once the listener is served.
            lames["later"] = spawn(pieces[1])
            self.frames = self._song_length()  # cached stems: the whole song is there already
            tailer = _FileTail(
                pieces[1], self.publish, first_frame=later_first, skip_info=True, skip_frames=warmup
            )

            def later(block: np.ndarray) -> None:
                lames["later"].write(np.ascontiguousarray(block, dtype=np.float32).tobytes())
                tailer.poll()

            # The listener's stretch first; its meter starts at the splice (the warm-up is the earlier's).
            warm = [later_first * step]

            def later_metered(block: np.ndarray) -> None:
                begin = warm[0]
                warm[0] += block.shape[0]
                keep = max(0, start - begin)
                if keep < block.shape[0]:
                    later_meter.add(block[keep:])
                later(block)

            self._mastered_stretch(later_first * step, self.frames, later_metered, share=(0.0, 0.6))
            lames["later"].finish()
            tailer.poll(final=True)
            lames["earlier"] = spawn(pieces[0])
            earlier_stop = min(self.frames, (splice + overlap) * step)

            def earlier(block: np.ndarray) -> None:
                lames["earlier"].write(np.ascontiguousarray(block, dtype=np.float32).tobytes())

            measured = [0]

            def earlier_metered(block: np.ndarray) -> None:
                keep = max(0, min(block.shape[0], start - measured[0]))
                if keep:
                    earlier_meter.add(block[:keep])
                measured[0] += block.shape[0]
                earlier(block)

            self._mastered_stretch(0, earlier_stop, earlier_metered, share=(0.6, 0.38))
            lames["earlier"].finish()
            segments = [
                mp3frames.read_segment(pieces[0], first_frame=0),
                mp3frames.read_segment(pieces[1], first_frame=later_first),
            ]
            cut = mp3frames.splice_frame(segments[0], segments[1], splice, overlap - 2)
            cuts = [0, cut, segments[1].first_frame + segments[1].audio_frames]
            with temporary.open("wb") as handle:
                mp3frames.splice(segments, cuts, handle, total_samples=self.frames)
        except mp3frames.Mp3FormatError as exc:
            raise RenderFailed(f"could not splice the MP3 segments: {exc}") from exc
        finally:
            for lame in lames.values():
                lame.stop()
            for piece in pieces:
                piece.unlink(missing_ok=True)
        energy = np.concatenate([earlier_meter.energy, later_meter.energy])
        self.lufs = gated_loudness(energy)
        self.true_peak_dbtp = max(earlier_meter.dbtp, later_meter.dbtp)
        self.report(1.0)

    def waveform(self) -> list[float]:
        rows = -(-self.frames // self.row)
        return waveform_peaks(self._row_peak[:rows], self._row_gain[:rows])


class _OutputMeter:
    """Loudness and true peak of the mastered output, measured as it is encoded."""

    def __init__(self, row: int) -> None:
        self._loudness = LoudnessMeter(SAMPLE_RATE)
        self._peak = TruePeakMeter(10 ** (CEILING_DBTP / 20), row)
        self._held = np.zeros((0, 2), dtype=np.float32)
        self._hop = self._loudness.hop

    def add(self, block: np.ndarray) -> None:
        self._peak.add(block)
        self._held = np.concatenate([self._held, block]) if self._held.size else block
        whole = self._held.shape[0] // self._hop * self._hop
        if whole:
            self._loudness.add(self._held[:whole])
            self._held = self._held[whole:]

    @property
    def energy(self) -> np.ndarray:
        return self._loudness.hop_energy

    @property
    def lufs(self) -> float:
        return gated_loudness(self._loudness.hop_energy)

    @property
    def dbtp(self) -> float:
        return self._peak.dbtp


class _FileTail:
    """Publishes the whole MP3 frames a growing file gains (LAME writes it front to back)."""

    def __init__(
        self, path: Path, publish: Publish, *, first_frame: int, skip_info: bool, skip_frames: int = 0
    ) -> None:
        self.path = path
        self.publish = publish
        self._offset = 0
        self._frame = first_frame  # song index of the next frame to read
        self._skip_info = skip_info
        self._skip = skip_frames
        self._handle: Any = None

    def poll(self, *, final: bool = False) -> None:
        if self._handle is None:
            try:
                self._handle = self.path.open("rb")
            except OSError:
                return
        self._handle.seek(self._offset)
        data = self._handle.read()
        if not data:
            if final:
                self._handle.close()
            return
        position = 0
        first_index = self._frame
        out = bytearray()
        while position + 4 <= len(data):
            try:
                header = mp3frames.parse_header(data[position : position + 4])
            except mp3frames.Mp3FormatError:
                if position == 0 and self._offset == 0 and data[:3] == b"ID3":
                    raise RenderFailed("the streaming encoder wrote an ID3 tag") from None
                raise RenderFailed("the streaming encoder wrote something that is not an MP3 frame") from None
            length = header.length
            if position + length > len(data):
                break
            frame = data[position : position + length]
            position += length
            if self._skip_info:
                self._skip_info = False
                if mp3frames.info_offset(frame) is not None:
                    first_index = self._frame
                    continue
            if self._skip:
                self._skip -= 1
                self._frame += 1
                first_index = self._frame
                continue
            out += frame
            self._frame += 1
        self._offset += position
        if out:
            self.publish(first_index, bytes(out))
        if final:
            self._handle.close()
