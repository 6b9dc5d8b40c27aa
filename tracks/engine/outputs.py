"""Outputs beyond the stereo MP3: WAV/FLAC masters, a stems ZIP, a Standard MIDI File, the split layout.

Every output is cut from the same performance (transposed, tempo-scaled, count-in and click) as the
MP3, so a stem, a MIDI note and the master agree to the sample:

- ``stems`` (``.zip``): one WAV per audible part (and ``Click.wav``, ``Cues.wav``) as synthesized, before
  fader and mastering, all of the master's length, plus ``manifest.json`` with each stem's fader gain and the
  master gain: their sum is the master before its limiter. Built from the render's cached per-part
  stems when they exist, else only the audible parts are synthesized, for this ZIP alone (caching every
  part, their sum and profile is ``prepare_stems``' background job, as after a first MP3). The WAVs are
  written straight into the ZIP (stored, not deflated), converted to 16-bit in parallel. With ``dynamics``
  each band stem is written with the sections' gain envelope applied (the click and the cues are not),
  so the property holds; the velocity share is in the synthesis itself.
- ``midi`` (``.mid``): a type-1 SMF of the variant (one track per audible part, a conductor track
  with scaled tempos, meters, the transposed key signature and section markers, a click track on
  channel 10, which also carries the spoken cues as lyric and cue-point events); no synthesis at all.
- ``layout: split``: left = the click (and the spoken cues) at a fixed level, right = the band in mono
  mastered to the loudness target. The two never share a stem, so nothing of one leaks into the other.
  With ``dynamics`` the band follows the sections' gain envelope, the click keeps its level.
- ``flac``: the WAV master converted by ffmpeg (lossless, so the same loudness and dynamics).
"""

import functools
import io
import json
import math
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import mido
import numpy as np

from . import pool
from . import render as _render
from .arrangement import Arrangement
from .config import DEFAULT_CONFIG, EngineConfig
from .cues import cue_stem, plan_cues
from .dynamics import DynamicsEnvelope, dynamics_envelope, dynamics_summary, with_dynamics
from .encode import AudioWriter, SpliceFailed, open_audio_writer
from .errors import InvalidSettings, RenderFailed
from .master import TruePeakMeter
from .mix import StemMixer, waveform_peaks
from .notes import transpose_key
from .settings import VariantSettings
from .smf import STATUS_SYSEX
from .transform import Performance

__all__ = [
    "CONTENT_TYPES",
    "FORMAT_SUFFIXES",
    "format_for_path",
    "handles",
    "render_output",
    "variant_midi",
]

FORMAT_SUFFIXES = {"mp3": ".mp3", "wav": ".wav", "flac": ".flac", "stems": ".zip", "midi": ".mid"}
CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "flac": "audio/flac",
    "stems": "application/zip",
    "midi": "audio/midi",
}
_SUFFIX_FORMATS = {suffix: name for name, suffix in FORMAT_SUFFIXES.items()} | {".midi": "midi"}
# The click in the split layout: a fixed gain over the synthesized woodblock (peaks near -9 dBFS),
# whatever the band's loudness, so a singer's in-ear click does not change from song to song.
SPLIT_CLICK_GAIN_DB = 12.0
_CHUNK_FRAMES = 110_250
# A dither table of about 12 s of stereo samples, longer than a chunk; each stem starts elsewhere in it.
_DITHER_SIZE = 1 << 20
_DITHER_STRIDE = 104_729
_UNSAFE_NAME = re.compile(r"[^\w \-()&+,.']+")
_MAJOR_SIGNATURES = dict(enumerate(("C", "G", "D", "A", "E", "B", "F#"))) | {
    -1: "F",
    -2: "Bb",
    -3: "Eb",
    -4: "Ab",
    -5: "Db",
}
_MINOR_SIGNATURES = dict(enumerate(("Am", "Em", "Bm", "F#m", "C#m", "G#m", "D#m"))) | {
    -1: "Dm",
    -2: "Gm",
    -3: "Cm",
    -4: "Fm",
    -5: "Bbm",
}


def format_for_path(path: str | os.PathLike[str]) -> str:
    """The output format a file name asks for (``.mp3 .wav .flac .zip .mid``); raises InvalidSettings."""
    suffix = Path(path).suffix.lower()
    if suffix not in _SUFFIX_FORMATS:
        raise InvalidSettings(
            f"output must end in .mp3, .wav, .flac, .zip (stems) or .mid, not {Path(path).name!r}"
        )
    return _SUFFIX_FORMATS[suffix]


def handles(out_path: str | os.PathLike[str], settings: VariantSettings) -> bool:
    """True when ``out_path`` and ``settings`` need this module rather than the plain MP3/WAV path."""
    suffix = Path(out_path).suffix.lower()
    return suffix in _SUFFIX_FORMATS and (suffix not in (".mp3", ".wav") or settings.layout == "split")


def render_output(
    arrangement: Arrangement,
    settings: VariantSettings,
    *,
    out_path: str | os.PathLike[str],
    soundfont: str | os.PathLike[str],
    stem_dir: str | os.PathLike[str] | None = None,
    tags: dict[str, str] | None = None,
    progress: Callable[[float], None] | None = None,
    config: EngineConfig = DEFAULT_CONFIG,
) -> "_render.RenderResult":
    """Render ``settings`` as the format ``out_path`` names (see the module); atomic, like render_variant."""
    out = Path(out_path)
    output_format = format_for_path(out)
    settings.validate(len(arrangement.parts))
    settings = settings.normalised()
    report = progress or (lambda _fraction: None)
    if output_format == "midi":
        report(0.0)
        performance = _render._perform(arrangement, settings)
        data = variant_midi(arrangement, settings, performance=performance)
        _write_atomically(out, data)
        report(1.0)
        # The velocity share of the dynamics is in the notes; a MIDI file has no gain envelope.
        return _result(arrangement, settings, performance.end_frame, False, performance.warnings)
    soundfont_path = Path(soundfont)
    if not soundfont_path.is_file():
        raise RenderFailed(f"SoundFont not found: {soundfont_path}")
    if stem_dir is not None:
        Path(stem_dir).mkdir(parents=True, exist_ok=True)
    report(0.0)
    if output_format == "flac":
        return _render_flac(arrangement, settings, out, soundfont_path, stem_dir, tags, report, config)
    scratch = Path(tempfile.mkdtemp(prefix="backtrack-output-", dir=stem_dir))
    try:
        if output_format == "stems":
            return _render_stems(
                arrangement, settings, out, soundfont_path, stem_dir, scratch, report, config
            )
        return _render_split(
            arrangement, settings, out, soundfont_path, stem_dir, scratch, tags, report, config
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _result(
    arrangement: Arrangement,
    settings: VariantSettings,
    frames: int,
    reused: bool,
    warnings: list[str],
    *,
    lufs: float = 0.0,
    true_peak: float = 0.0,
    peaks: list[float] | None = None,
) -> "_render.RenderResult":
    analysis = arrangement.analysis
    key = analysis.get("key", "C major")
    return _render.RenderResult(
        duration_s=round(frames / _render.SAMPLE_RATE, 3),
        tempo_bpm=round(float(analysis.get("tempo_bpm", 120.0)) * settings.tempo, 2),
        key=transpose_key(key, settings.transpose) if key else key,
        lufs=lufs,
        true_peak_dbtp=true_peak,
        peaks=peaks or [],
        stems_reused=reused,
        warnings=list(warnings),
        dynamics=dynamics_summary(arrangement, settings),
    )


def _write_atomically(out: Path, data: bytes) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{out.name}-", dir=out.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        Path(name).replace(out)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


# --- per-part stems -----------------------------------------------------------------------------------


def _part_stems(
    arrangement: Arrangement,
    settings: VariantSettings,
    soundfont: Path,
    stem_dir: str | os.PathLike[str] | None,
    scratch: Path,
    report: Callable[[float], None],
    config: EngineConfig,
) -> tuple["_render._StemSet", bool]:
    """One stem per audible part (and the click) for ``settings.stem_key()``, and whether they were cached.

    The render's cached per-part stems when ``stem_dir`` holds them; else only the audible parts are
    synthesized, in ``scratch``: building the cache (every part, their sum, a loudness profile) would
    cost this render several more passes over every stem, and a worker builds it in the background
    after any render that did not reuse stems.
    """
    if stem_dir is not None:
        cached = _render._load_manifest(_render._stem_directory(arrangement, settings, soundfont, stem_dir))
        if cached is not None:
            return cached, True
    performance = _render._perform(arrangement, settings)
    gains = _render.effective_part_gains(arrangement, settings)
    groups = [[index] for index, gain in enumerate(gains) if gain > 0.0]
    if performance.has_click:
        groups.append([performance.click_part])
    _render._check_scratch(len(groups), _render._stem_frames(performance), config)
    with pool.cpu_share(config=config) as parallel:
        stems = _render._synthesize(
            performance, groups, soundfont, scratch, report, parallel=parallel, config=config
        )
    return stems, False


def _cues(
    arrangement: Arrangement,
    settings: VariantSettings,
    frames: int,
    scratch: Path,
    stem_dir: str | os.PathLike[str] | None,
) -> Path:
    return cue_stem(
        arrangement,
        tempo=settings.tempo,
        count_in=settings.count_in,
        frames=frames,
        directory=scratch,
        cache_dir=Path(stem_dir) if stem_dir is not None else None,
    )


def _stem_gains(stems: "_render._StemSet", part_gains: list[float]) -> list[float]:
    """Each stem's fader gain (linear): its part's gain, 1 for the click."""
    return [part_gains[parts[0]] if parts[0] < len(part_gains) else 1.0 for parts in stems.parts]


def _file_name(text: str) -> str:
    return re.sub(r"\s+", " ", _UNSAFE_NAME.sub("", text)).strip(" .")[:60] or "Part"


def _render_stems(
    arrangement: Arrangement,
    settings: VariantSettings,
    out: Path,
    soundfont: Path,
    stem_dir: str | os.PathLike[str] | None,
    scratch: Path,
    report: Callable[[float], None],
    config: EngineConfig,
) -> "_render.RenderResult":
    part_gains = _render.effective_part_gains(arrangement, settings)
    stems, reused = _part_stems(arrangement, settings, soundfont, stem_dir, scratch, report, config)
    report(0.8)
    gains = _stem_gains(stems, part_gains)
    # (stem file, fader gain, part index or None, name): the audible parts, then the click and the cues
    entries: list[tuple[Path, float, int | None, str]] = []
    for number, gain in enumerate(gains):
        index = stems.parts[number][0]
        if gain > 0.0:
            is_part = index < len(arrangement.parts)
            name = arrangement.parts[index].name if is_part else "Click"
            entries.append((stems.paths[number], gain, index if is_part else None, name))
    paths, mix_gains = [entry[0] for entry in entries], [entry[1] for entry in entries]
    envelope = dynamics_envelope(arrangement, settings, sample_rate=_render.SAMPLE_RATE)
    if envelope is not None:  # mastered as the MP3 is: the band (not the click) follows the sections
        paths, mix_gains = with_dynamics(
            envelope,
            paths=paths,
            gains=mix_gains,
            unshaped=[entry[0] for entry in entries if entry[2] is None],
            sum_path=None,
            frames=stems.frames,
            scratch=scratch,
        )
    if settings.cues:
        cues = _cues(arrangement, settings, stems.frames, scratch, stem_dir)
        entries.append((cues, 1.0, None, "Cues"))
        paths, mix_gains = [*paths, cues], [*mix_gains, 1.0]
    summary, frames, plan = _render.plan_master(paths, mix_gains, stems, config)
    analysis = arrangement.analysis
    key = analysis.get("key", "C major")
    files = []
    number = 0
    for _path, gain, part, part_name in entries:
        if part is not None:
            number += 1
            file_name = f"{number:02d} {_file_name(part_name)}.wav"
        else:
            file_name = f"{part_name}.wav"
        gain_db = round(20 * math.log10(gain), 3)
        files.append({"file": file_name, "part": part, "name": part_name, "gain_db": gain_db})
    manifest = {
        "key": transpose_key(key, settings.transpose) if key else key,
        "tempo_bpm": round(float(analysis.get("tempo_bpm", 120.0)) * settings.tempo, 2),
        "sample_rate": _render.SAMPLE_RATE,
        "master_gain_db": round(plan.gain_db, 3),
        "files": files,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{out.name}-", dir=out.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        _write_stems_zip(
            temporary,
            [
                # Each band stem is written with the envelope the master's band got, so the sum holds.
                (entry[0], str(file["file"]), envelope if entry[2] is not None else None)
                for entry, file in zip(entries, files, strict=True)
            ],
            frames,
            json.dumps(manifest, indent=2),
            lambda done: report(0.8 + 0.2 * done / len(entries)),
            config.render_threads,
            # Stems synthesized for this ZIP alone go as soon as they are in it: the page cache then
            # never has to write them out, which on a 13-part song saved 0.7 s of the ZIP's 9.
            discard=set() if reused else set(stems.paths),
        )
        temporary.replace(out)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    report(1.0)
    return _result(
        arrangement,
        settings,
        frames,
        reused,
        stems.warnings,
        lufs=round(plan.predicted_lufs, 2),
        peaks=waveform_peaks(summary.row_peak[: -(-frames // summary.row)], plan.row_gain),
    )


def _write_stems_zip(
    out: Path,
    stems: list[tuple[Path, str, DynamicsEnvelope | None]],
    frames: int,
    manifest: str,
    report: Callable[[int], None],
    threads: int,
    *,
    discard: set[Path],
) -> None:
    """A ZIP of (stem .npy, WAV name, gain envelope or None) as 16-bit WAVs of ``frames`` frames,
    then ``manifest.json``; the stems in ``discard`` are deleted once written.

    Each WAV goes straight into its ZIP entry (no WAV file written and copied in); chunks are
    converted by ``threads`` threads a few chunks ahead of the writer, which takes them in order.
    """
    width = 2 * 2  # bytes per frame: stereo, 16-bit
    with (
        zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive,
        ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="stems-zip") as executor,
    ):
        for number, (path, file_name, envelope) in enumerate(stems, start=1):
            info = zipfile.ZipInfo(file_name, date_time=time.localtime()[:6])
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            info.file_size = 44 + frames * width
            source = np.load(path, mmap_mode="r")
            # Stored, not deflated: PCM barely compresses, and deflating it would cost more than the mix.
            with archive.open(info, "w") as entry:
                entry.write(_wav_header(frames, _render.SAMPLE_RATE))
                starts = range(0, frames, _CHUNK_FRAMES)
                ahead: list[Future[bytes]] = []
                for start in starts:
                    block = source[start : min(frames, start + _CHUNK_FRAMES)]
                    ahead.append(
                        executor.submit(_pcm16, block, number * _DITHER_STRIDE + start, envelope, start)
                    )
                    if len(ahead) > 2 * max(1, threads):
                        entry.write(ahead.pop(0).result())
                for future in ahead:
                    entry.write(future.result())
            del source
            if path in discard:
                path.unlink()
            report(number)
        archive.writestr("manifest.json", manifest)


def _wav_header(frames: int, sample_rate: int) -> bytes:
    """The 44-byte RIFF header of a stereo 16-bit PCM WAV of ``frames`` frames."""
    data_bytes = frames * 4
    if data_bytes > 0xFFFFFFFF - 36:
        raise RenderFailed("a stem would exceed the 4 GB of a WAV file; render MP3 instead")
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 2, sample_rate, sample_rate * 4, 4, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


@functools.cache
def _dither_table() -> np.ndarray:
    """TPDF dither of one LSB (a seeded table, so a ZIP's bytes do not change between runs)."""
    rng = np.random.default_rng(0)
    table = rng.random(_DITHER_SIZE, dtype=np.float32)
    table -= rng.random(_DITHER_SIZE, dtype=np.float32)
    return table


def _pcm16(
    block: np.ndarray, position: int, envelope: DynamicsEnvelope | None = None, start: int = 0
) -> bytes:
    """``block`` (frames, 2) float as dithered 16-bit PCM; ``position`` picks the dither's stretch;
    ``envelope`` (when given) is applied first, ``block`` starting at frame ``start`` of the render.

    The dither comes from a table rather than from a generator per sample: drawing random numbers
    was most of the conversion's time, and a stems ZIP converts every part of the song.
    """
    if envelope is not None:
        block = envelope.apply(block, start)
    samples = np.multiply(block, np.float32(32767.0), dtype=np.float32).reshape(-1)
    table = _dither_table()
    offset = (position * 2) % (table.size - samples.size)
    samples += table[offset : offset + samples.size]
    np.rint(samples, out=samples)
    np.clip(samples, -32768.0, 32767.0, out=samples)
    return samples.astype("<i2").tobytes()


# --- split layout ----------------------------------------------------------------------------------------


def _render_split(
    arrangement: Arrangement,
    settings: VariantSettings,
    out: Path,
    soundfont: Path,
    stem_dir: str | os.PathLike[str] | None,
    scratch: Path,
    tags: dict[str, str] | None,
    report: Callable[[float], None],
    config: EngineConfig,
) -> "_render.RenderResult":
    """Left: the click alone at a fixed level; right: the band in mono at the loudness target."""
    part_gains = _render.effective_part_gains(arrangement, settings)
    cached = None
    if stem_dir is not None:
        cached = _render._load_manifest(_render._stem_directory(arrangement, settings, soundfont, stem_dir))
    if cached is not None:
        stems, reused = cached, True
        gains = _stem_gains(stems, part_gains)
    else:
        stems = _render._render_groups(arrangement, settings, part_gains, soundfont, scratch, report, config)
        reused = False
        gains = list(stems.gains or [])
    click_part = len(arrangement.parts)
    is_click = [click_part in parts for parts in stems.parts]
    band_paths = [path for path, click in zip(stems.paths, is_click, strict=True) if not click]
    band_gains = [gain for gain, click in zip(gains, is_click, strict=True) if not click]
    click_paths = [path for path, click in zip(stems.paths, is_click, strict=True) if click]
    envelope = dynamics_envelope(arrangement, settings, sample_rate=_render.SAMPLE_RATE)
    if envelope is not None:  # the band follows the sections before it is mastered; the click does not
        band_paths, band_gains = with_dynamics(
            envelope,
            paths=band_paths,
            gains=band_gains,
            unshaped=[],
            sum_path=None,
            frames=stems.frames,
            scratch=scratch,
        )
    click_gain = 10 ** (SPLIT_CLICK_GAIN_DB / 20)
    left_gains = [click_gain] * len(click_paths)
    if settings.cues:
        click_paths.append(_cues(arrangement, settings, stems.frames, scratch, stem_dir))
        left_gains.append(1.0)  # the words already peak at -6 dBFS
    report(0.8)
    summary, frames, plan = _render.plan_master(band_paths, band_gains, stems, config)
    ceiling = 10 ** (_render.CEILING_DBTP / 20)

    def feed(writer: AudioWriter, index: int) -> float:
        """One segment of the output: mix the band and the click from their own stems, meter it."""
        start, stop = writer.segments[index]
        end = frames if stop is None else stop
        meter = TruePeakMeter(ceiling, plan.row)
        band = StemMixer(band_paths, band_gains, start=start)
        click = StemMixer(click_paths, left_gains, start=start)
        try:
            for position in range(start, end, _CHUNK_FRAMES):
                count = min(_CHUNK_FRAMES, end - position)
                right = plan.apply(band.read(count), position).mean(axis=1)
                left = np.clip(click.read(count).mean(axis=1), -ceiling, ceiling)
                block = np.stack((left, right), axis=1).astype(np.float32)
                meter.add(block)
                writer.write_segment(index, block)
        finally:
            band.close()
            click.close()
        return meter.dbtp

    parallel = config.render_threads
    while True:
        try:
            # A long MP3 is encoded in one segment per render thread, as render_variant does.
            with open_audio_writer(
                out,
                _render.SAMPLE_RATE,
                tags=tags or {},
                quality=_render.MP3_QUALITY,
                total_frames=frames,
                parallel=parallel,
                ffmpeg=config.ffmpeg,
            ) as writer:
                count = len(writer.segments)
                with ThreadPoolExecutor(max_workers=count, thread_name_prefix="split-feed") as executor:
                    true_peak = max(executor.map(lambda index: feed(writer, index), range(count)))
            break
        except SpliceFailed:
            if parallel == 1:
                raise
            parallel = 1  # an ffmpeg whose segments do not splice: one segment
    report(1.0)
    return _result(
        arrangement,
        settings,
        frames,
        reused,
        stems.warnings,
        lufs=round(plan.predicted_lufs, 2),
        true_peak=round(true_peak, 2),
        peaks=waveform_peaks(summary.row_peak[: -(-frames // summary.row)], plan.row_gain),
    )


# --- FLAC ------------------------------------------------------------------------------------------------


def _render_flac(
    arrangement: Arrangement,
    settings: VariantSettings,
    out: Path,
    soundfont: Path,
    stem_dir: str | os.PathLike[str] | None,
    tags: dict[str, str] | None,
    report: Callable[[float], None],
    config: EngineConfig,
) -> "_render.RenderResult":
    """The WAV master, losslessly converted (same samples, so the same loudness)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        wav = work / "master.wav"
        result = _render.render_variant(
            arrangement,
            settings,
            out_path=wav,
            soundfont=soundfont,
            stem_dir=stem_dir,
            progress=lambda fraction: report(0.95 * fraction),
            config=config,
        )
        flac = work / "master.flac"
        command = [config.ffmpeg, "-nostdin", "-v", "error", "-y", "-i", str(wav)]
        for name, value in (tags or {}).items():
            command += ["-metadata", f"{name}={value}"]
        command += ["-c:a", "flac", str(flac)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RenderFailed(f"ffmpeg could not write FLAC: {exc}") from exc
        if done.returncode != 0 or not flac.is_file():
            last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
            raise RenderFailed(f"ffmpeg could not write FLAC: {last}")
        flac.replace(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(1.0)
    return result


# --- MIDI ------------------------------------------------------------------------------------------------


def _ticks_at(arrangement: Arrangement, seconds: np.ndarray) -> np.ndarray:
    """Ticks of the original file at ``seconds`` of it (before 0: at the first tempo, negative)."""
    tempo_map = arrangement.tempo_map
    index = np.maximum(np.searchsorted(tempo_map.seconds, seconds, side="right") - 1, 0)
    beats = (seconds - tempo_map.seconds[index]) * 1e6 / tempo_map.tempos[index]
    return np.rint(tempo_map.ticks[index] + beats * tempo_map.ticks_per_beat).astype(np.int64)


def _channel_message(status: int, d1: int, d2: int) -> mido.Message:
    size = 2 if (status & 0xF0) in (0xC0, 0xD0) else 3
    return mido.Message.from_bytes([status, d1 & 0x7F, d2 & 0x7F][:size])


def _track(events: list[tuple[int, int, mido.Message]], name: str, end_tick: int) -> mido.MidiTrack:
    """A track from (tick, order, message) events: sorted, delta times, named, ended."""
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name=name, time=0))
    previous = 0
    for tick, _order, message in sorted(events, key=lambda event: (event[0], event[1])):
        tick = max(tick, 0)
        track.append(message.copy(time=tick - previous))
        previous = tick
    track.append(mido.MetaMessage("end_of_track", time=max(0, end_tick - previous)))
    return track


def _meta_text(text: str) -> str:
    """Text for a meta event: what MIDI's Latin-1 text can hold (others become "?"), at most 120."""
    return text[:120].encode("latin-1", "replace").decode("latin-1")


def _key_signature(sharps: int, minor: bool, transpose: int) -> str:
    tonic = (sharps * 7 + transpose) % 12  # the major tonic the signature stands for, transposed
    moved = (tonic * 7) % 12
    moved = moved - 12 if moved > 6 else moved
    return (_MINOR_SIGNATURES if minor else _MAJOR_SIGNATURES)[moved]


def variant_midi(
    arrangement: Arrangement, settings: VariantSettings, *, performance: Performance | None = None
) -> bytes:
    """The variant as a type-1 Standard MIDI File (bytes), at the file's own resolution.

    Events come from the same performance the audio is synthesized from, mapped back to ticks: the
    tempo map is written scaled by the tempo ratio, so every event keeps its tick and its time. A
    count-in of N bars shifts everything by N bars of the first meter. Muted parts are left out, a
    part's gain becomes CC7 (an initial value and its own volume events scaled); the click, count-in
    included, is its own track on channel 10; sections become marker events. With ``cues`` every
    spoken word (count-in numbers, section names) is a lyric and a cue point on the click track (a
    track of its own, "Cues", without a click) where the audio speaks it, so a DAW shows the cues.
    """
    settings = settings.normalised()
    if performance is None:
        performance = _render._perform(arrangement, settings)
    raw = arrangement.raw
    tpb = arrangement.ticks_per_beat
    signatures = [(t, n, d) for t, n, d in raw.time_signatures if n > 0]
    numerator, denominator = (
        (signatures[0][1], signatures[0][2]) if signatures and not signatures[0][0] else (4, 4)
    )
    shift = round(settings.count_in * numerator * 4 * tpb / denominator)
    original_s = (performance.frame / performance.sample_rate - performance.count_in_s) * performance.tempo
    ticks = (_ticks_at(arrangement, original_s) + shift).tolist()
    end_tick = int(
        _ticks_at(
            arrangement,
            np.asarray(
                [(performance.end_frame / performance.sample_rate - performance.count_in_s) * settings.tempo]
            ),
        )[0]
        + shift
    )
    gains = _render.effective_part_gains(arrangement, settings)
    audible = [index for index, gain in enumerate(gains) if gain > 0.0]
    # Channel-wide events (controllers, programs, bends) go with the first audible part on their channel.
    owner: dict[int, int] = {}
    for index in audible:
        owner.setdefault(arrangement.parts[index].channel, index)
    conductor: list[tuple[int, int, mido.Message]] = []
    part_events: dict[int, list[tuple[int, int, mido.Message]]] = {index: [] for index in audible}
    click_events: list[tuple[int, int, mido.Message]] = []
    click_part = performance.part_count
    for order, (tick, status, d1, d2, part) in enumerate(
        zip(
            ticks,
            performance.status.tolist(),
            performance.d1.tolist(),
            performance.d2.tolist(),
            performance.part.tolist(),
            strict=True,
        )
    ):
        if status == STATUS_SYSEX:
            data = performance.sysex[d1].rstrip(b"\xf7").lstrip(b"\xf0")
            conductor.append((tick, order, mido.Message("sysex", data=data)))
            continue
        if part == click_part:
            click_events.append((tick, order, _channel_message(status, d1, d2)))
            continue
        if part < 0:
            part = owner.get(status & 0x0F, -1)
        if part not in part_events:
            continue
        if (status & 0xF0) == 0xB0 and d1 == 7:
            d2 = min(127, round(d2 * gains[part]))
        part_events[part].append((tick, order, _channel_message(status, d1, d2)))

    tempo_points = [(0, int(raw.tempos[0][1]) if raw.tempos and raw.tempos[0][0] == 0 else 500_000)]
    tempo_points += [(tick + shift, tempo) for tick, tempo in raw.tempos if tick > 0]
    for tick, tempo in tempo_points:
        scaled = min(0xFFFFFF, max(1, round(tempo / settings.tempo)))
        conductor.append((tick, -3, mido.MetaMessage("set_tempo", tempo=scaled)))
    meters = signatures if signatures and not signatures[0][0] else [(0, 4, 4), *signatures]
    for number, (tick, num, den) in enumerate(meters):
        at = 0 if number == 0 else tick + shift
        conductor.append((at, -2, mido.MetaMessage("time_signature", numerator=num, denominator=den)))
    for tick, sharps, minor in raw.key_signatures[:1] + [k for k in raw.key_signatures[1:] if k[0] > 0]:
        key = _key_signature(sharps, bool(minor), settings.transpose)
        conductor.append((0 if tick == 0 else tick + shift, -1, mido.MetaMessage("key_signature", key=key)))
    for section in arrangement.analysis.get("sections") or []:
        try:
            start = int(_ticks_at(arrangement, np.asarray([float(section["start_s"])]))[0]) + shift
            name = str(section["name"])
        except (KeyError, TypeError, ValueError):
            continue
        conductor.append((start, 0, mido.MetaMessage("marker", text=_meta_text(name))))
    if settings.cues:
        cues = plan_cues(arrangement, tempo=settings.tempo, count_in=settings.count_in)
        seconds = np.asarray([(cue.start_s - performance.count_in_s) * settings.tempo for cue in cues])
        for tick, cue in zip((_ticks_at(arrangement, seconds) + shift).tolist(), cues, strict=True):
            text = _meta_text(cue.text)
            click_events.append((tick, -2, mido.MetaMessage("lyrics", text=text)))
            click_events.append((tick, -1, mido.MetaMessage("cue_marker", text=text)))

    midi = mido.MidiFile(type=1, ticks_per_beat=tpb)
    midi.tracks.append(_track(conductor, "Backtrack", end_tick))
    for index in audible:
        part = arrangement.parts[index]
        events = part_events[index]
        if gains[index] != 1.0:
            volume = min(127, round(100 * gains[index]))
            events.append(
                (0, -1, mido.Message("control_change", channel=part.channel, control=7, value=volume))
            )
        midi.tracks.append(_track(events, part.name, end_tick))
    if click_events:
        track_name = "Click" if performance.has_click else "Cues"
        midi.tracks.append(_track(click_events, track_name, end_tick))
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()
