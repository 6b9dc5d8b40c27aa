"""Writing mastered audio to MP3 (LAME through ffmpeg) or WAV, atomically and streaming.

Renders are served straight from storage, so a reader must never see a half-written file: every
writer encodes into a hidden temporary file in the destination directory (``.name.partial-XXXX``),
fsyncs it and renames it over the final name, and on any failure deletes the temporary file and
raises :class:`RenderFailed` with the encoder's own last words.

Writers accept blocks, so a render streams its mastered mix into the encoder while it mixes and
masters it, and never holds a whole song in memory. Synthesis is finished by then: the stems must
exist before the mix can be measured. A long MP3 is encoded as one segment per core, and the segments
are spliced into one stream (:class:`SegmentedMp3Encoder`); should the splice fail on an unexpected
LAME tag layout, :class:`SpliceFailed` tells the caller to encode that audio again as one segment.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import shutil
import struct
import subprocess
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import numpy as np

from tracks.engine import mp3frames
from tracks.engine.config import DEFAULT_CONFIG, EngineConfig
from tracks.engine.errors import InvalidSettings, RenderFailed

logger = logging.getLogger(__name__)

#: The ffmpeg executable when the caller names none (``EngineConfig.ffmpeg`` carries a deployment's).
FFMPEG = DEFAULT_CONFIG.ffmpeg

# MPEG-1 Layer III bitrates LAME can write as CBR; the product promises 192 kbps or better, but the
# lower ones are allowed for previews and tests.
MP3_BITRATES_KBPS = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_BLOCK_FRAMES = 1 << 16
# Shortest stretch worth its own encoder process when an MP3 is encoded in parallel segments.
MIN_SEGMENT_S = 10.0

# ffmpeg executables whose segments failed to splice in this process: later MP3s from them are encoded
# as one segment straight away instead of failing (or being encoded twice) every time.
_UNSPLICEABLE: set[str] = set()

# Tag names callers use -> ID3v2 text frames. TKEY and TBPM are what DJ and practice apps read.
_ID3_FRAMES = {
    "title": "TIT2",
    "artist": "TPE1",
    "album": "TALB",
    "key": "TKEY",
    "bpm": "TBPM",
    "genre": "TCON",
    "date": "TDRC",
}


def parse_bitrate(bitrate: str | int) -> int:
    """``"192k"``, ``"192"`` or ``192`` -> 192 (kbps); raises InvalidSettings for anything LAME can't do."""
    text = str(bitrate).strip().lower()
    match = re.fullmatch(r"(\d{2,3})k?", text)
    if match is None or int(match.group(1)) not in MP3_BITRATES_KBPS:
        allowed = ", ".join(f"{b}k" for b in MP3_BITRATES_KBPS)
        raise InvalidSettings(f"MP3 bitrate {bitrate!r} is not one of {allowed}")
    return int(match.group(1))


class SpliceFailed(RenderFailed):
    """The segments were encoded but could not be spliced into one MP3.

    The splicer relies on the exact layout of ffmpeg's LAME Info tag; another ffmpeg build may lay it
    out differently. The audio itself is fine, so a caller that can feed the signal again should
    encode it as one segment (:func:`open_audio_writer` then chooses one by itself).
    """


def _check_quality(quality: int) -> int:
    if isinstance(quality, bool) or not isinstance(quality, int) or not 0 <= quality <= 9:
        raise InvalidSettings(
            f"MP3 quality must be an integer 0 (best, slowest) to 9 (fastest), got {quality!r}"
        )
    return quality


def _frames(block: np.ndarray, channels: int) -> np.ndarray:
    """``block`` as (n, channels); mono blocks are accepted for a mono writer."""
    array = np.asarray(block)
    if array.ndim == 1:
        array = array[:, np.newaxis]
    if array.ndim != 2 or array.shape[1] != channels:
        raise ValueError(f"expected a block shaped (n, {channels}), got {np.shape(block)}")
    return array


def _float_bytes(block: np.ndarray) -> bytes:
    """Interleaved little-endian float32, clipped to full scale so no encoder wraps around."""
    return np.clip(block, -1.0, 1.0).astype("<f4", copy=False).tobytes()


class _Int16Converter:
    """float -> int16 with TPDF dither of one LSB, then clipping.

    Dither turns the rounding error of quiet fades into benign noise instead of distortion; the seeded
    generator keeps a render's bytes identical when it is re-run with the same settings.
    """

    def __init__(self) -> None:
        self._rng = np.random.default_rng(0)

    def __call__(self, block: np.ndarray) -> bytes:
        scaled = np.asarray(block, dtype=np.float32) * np.float32(32767.0)
        scaled += self._rng.random(scaled.shape, dtype=np.float32)
        scaled -= self._rng.random(scaled.shape, dtype=np.float32)
        np.rint(scaled, out=scaled)
        np.clip(scaled, -32768.0, 32767.0, out=scaled)
        return scaled.astype("<i2").tobytes()


def _temporary_beside(out_path: Path) -> Path:
    """A fresh hidden file next to ``out_path`` (same filesystem, so the final rename is atomic)."""
    try:
        handle, name = tempfile.mkstemp(prefix=f".{out_path.name}.partial-", dir=out_path.parent)
    except OSError as exc:
        raise RenderFailed(f"cannot write {out_path}: {exc.strerror or exc}") from exc
    os.close(handle)
    return Path(name)


def _commit(temporary: Path, out_path: Path) -> None:
    """fsync the finished file and move it into place; the directory is fsynced so the name survives."""
    with temporary.open("rb+") as handle:
        os.fsync(handle.fileno())
    temporary.chmod(0o644)
    temporary.replace(out_path)
    with contextlib.suppress(OSError):
        directory = os.open(out_path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def tag_audio(path: str | os.PathLike[str], tags: dict[str, str]) -> None:
    """Write ID3v2 tags into an MP3 or WAV file in place.

    Known names (title, artist, album, key, bpm, genre, date) become their ID3 frames (TKEY, TBPM, ...),
    ``comment`` becomes COMM, anything else a TXXX frame. BPM is rounded to an integer as ID3 requires.
    """
    from mutagen.id3 import COMM, ID3, TXXX, Frames
    from mutagen.wave import WAVE

    target = Path(path)
    # Decide by content, not name: writers tag their hidden ``.partial-XXXX`` file before renaming it.
    with target.open("rb") as handle:
        is_wave = handle.read(4) == b"RIFF"
    if is_wave:
        wave = WAVE(target)
        if wave.tags is None:
            wave.add_tags()
        id3 = wave.tags
    else:
        id3 = ID3()
    assert id3 is not None
    for name, value in tags.items():
        text = str(value)
        key = name.lower()
        if key == "bpm":
            with contextlib.suppress(ValueError):
                text = str(round(float(text)))
        if key == "comment":
            id3.add(COMM(encoding=3, lang="eng", desc="", text=[text]))
        elif key in _ID3_FRAMES:
            id3.add(Frames[_ID3_FRAMES[key]](encoding=3, text=[text]))
        else:
            id3.add(TXXX(encoding=3, desc=name, text=[text]))
    if is_wave:
        wave.save()
    else:
        id3.save(target, v2_version=3)


class AudioWriter(ABC):
    """Common life cycle of the streaming writers: ``write`` blocks, then ``close`` or ``abort``.

    Used as a context manager it closes on success and aborts (leaving no file) on an exception.

    A writer takes its input as one or more ``segments``, ranges of frames ``(start, stop)`` of the
    whole signal (``stop`` None: open-ended). ``write`` feeds the signal in order and routes each part
    to the segments it belongs to; ``write_segment`` feeds one segment, and different segments may be
    fed from different threads at once, which is how a segmented encoder gets its parallelism.
    """

    out_path: Path
    channels: int

    def __init__(
        self,
        out_path: str | os.PathLike[str],
        *,
        channels: int,
        tags: dict[str, str] | None,
        segments: list[tuple[int, int | None]] | None = None,
    ) -> None:
        if channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, got {channels}")
        self.out_path = Path(out_path)
        self.channels = channels
        self.tags = dict(tags or {})
        self.segments: list[tuple[int, int | None]] = segments or [(0, None)]
        self._segment_frames = [0] * len(self.segments)
        self._position = 0
        self._temporary = _temporary_beside(self.out_path)
        self._finished = False

    @property
    def frames_written(self) -> int:
        """Frames of the signal received so far (the furthest any segment has got)."""
        return max(
            start + count for (start, _stop), count in zip(self.segments, self._segment_frames, strict=True)
        )

    def write(self, block: np.ndarray) -> None:
        """Append the next block of the signal, float samples shaped (n, channels), nominally -1..1."""
        frames = _frames(block, self.channels)
        first, last = self._position, self._position + frames.shape[0]
        end = self.segments[-1][1]  # segments are in order; the last one ends the signal
        if end is not None and last > end:
            self.abort()
            raise RenderFailed(f"{self.out_path.name} was opened for fewer frames than it was given")
        try:
            for index, (start, stop) in enumerate(self.segments):
                low, high = max(first, start), last if stop is None else min(last, stop)
                if low < high:
                    self.write_segment(index, frames[low - first : high - first])
        except RenderFailed:
            self.abort()
            raise
        self._position = last

    def write_segment(self, index: int, block: np.ndarray) -> None:
        """Append a block to segment ``index``; one thread per segment may call this concurrently."""
        frames = _frames(block, self.channels)
        if self._finished:
            raise RenderFailed(f"{self.out_path.name} is already finished")
        for start in range(0, frames.shape[0], _BLOCK_FRAMES):
            self._write_bytes(index, frames[start : start + _BLOCK_FRAMES])
        self._segment_frames[index] += frames.shape[0]

    def close(self) -> None:
        """Finish the file, tag it and move it to its final name."""
        if self._finished:
            return
        try:
            if self.frames_written == 0:
                raise RenderFailed("the render came out silent (no audio to encode)")
            for index, ((start, stop), count) in enumerate(
                zip(self.segments, self._segment_frames, strict=True)
            ):
                if stop is not None and count != stop - start:
                    raise RenderFailed(
                        f"segment {index} of {self.out_path.name} got {count} frames, not {stop - start}"
                    )
            self._finish()
            if self.tags:
                tag_audio(self._temporary, self.tags)
            _commit(self._temporary, self.out_path)
        except RenderFailed:
            self.abort()
            raise
        except Exception as exc:
            self.abort()
            raise RenderFailed(f"could not write {self.out_path.name}: {exc}") from exc
        self._finished = True

    def abort(self) -> None:
        """Stop and delete the partial file; safe to call more than once."""
        self._finished = True
        self._stop()
        self._temporary.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    @abstractmethod
    def _write_bytes(self, segment: int, frames: np.ndarray) -> None:
        """Hand one validated block of a segment to the format's sink."""

    @abstractmethod
    def _finish(self) -> None:
        """Flush and close the sink so the temporary file is complete."""

    @abstractmethod
    def _stop(self) -> None:
        """Stop the sink without finishing it (abort path)."""


class _Lame:
    """One ffmpeg/LAME process encoding interleaved float32 from its stdin into ``path``."""

    def __init__(
        self,
        path: Path,
        sample_rate: int,
        *,
        channels: int,
        kbps: int,
        quality: int,
        ffmpeg: str,
        options: tuple[str, ...] = (),
        input_options: tuple[str, ...] = (),
    ) -> None:
        if shutil.which(ffmpeg) is None:
            raise RenderFailed(f"ffmpeg is not installed (looked for {ffmpeg!r})")
        # stderr goes to a file, not a pipe: a chatty ffmpeg can then never block on a full pipe
        # while we block writing its stdin.
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as ffmpeg)
        command = [
            ffmpeg,
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "f32le",
            "-ar",
            str(sample_rate),
            "-ac",
            str(channels),
            *input_options,
            "-i",
            "pipe:0",
            "-c:a",
            "libmp3lame",
            "-b:a",
            f"{kbps}k",
            "-compression_level",
            str(quality),
            *options,
            "-f",
            "mp3",
            "-y",
            str(path),
        ]
        try:
            self._process: subprocess.Popen[bytes] | None = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._stderr
            )
        except OSError as exc:
            self._stderr.close()
            raise RenderFailed(f"ffmpeg failed to start: {exc}") from exc

    def _failure(self) -> RenderFailed:
        process = self._process
        code = process.wait() if process is not None else None
        self._stderr.seek(0)
        lines = [line.strip() for line in self._stderr.read().decode(errors="replace").splitlines()]
        last = next((line for line in reversed(lines) if line), f"exit status {code}")
        return RenderFailed(f"ffmpeg failed: {last}")

    def write(self, data: bytes) -> None:
        process = self._process
        if process is None or process.stdin is None:
            raise RenderFailed("the encoder has already stopped")
        try:
            process.stdin.write(data)
        except (BrokenPipeError, OSError, ValueError) as exc:
            raise self._failure() from exc

    def finish(self) -> None:
        process = self._process
        assert process is not None
        assert process.stdin is not None
        try:
            process.stdin.close()
        except (BrokenPipeError, OSError) as exc:
            raise self._failure() from exc
        if process.wait() != 0:
            raise self._failure()
        self._process = None
        self._stderr.close()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()
            if process.poll() is None:
                process.kill()
            process.wait()
        self._stderr.close()


class Mp3Encoder(AudioWriter):
    """A running ffmpeg/LAME process fed float32 blocks through its stdin."""

    def __init__(
        self,
        out_path: str | os.PathLike[str],
        sample_rate: int,
        *,
        tags: dict[str, str] | None = None,
        bitrate: str = "192k",
        quality: int = 7,
        channels: int = 2,
        ffmpeg: str = FFMPEG,
    ) -> None:
        kbps = parse_bitrate(bitrate)
        level = _check_quality(quality)
        super().__init__(out_path, channels=channels, tags=tags)
        try:
            self._lame = _Lame(
                self._temporary, sample_rate, channels=channels, kbps=kbps, quality=level, ffmpeg=ffmpeg
            )
        except RenderFailed:
            self._temporary.unlink(missing_ok=True)
            raise

    def _write_bytes(self, segment: int, frames: np.ndarray) -> None:
        self._lame.write(_float_bytes(frames))

    def _finish(self) -> None:
        self._lame.finish()

    def _stop(self) -> None:
        self._lame.stop()


class SegmentedMp3Encoder(AudioWriter):
    """MP3 encoded as a few overlapping segments at once, one LAME each, spliced into one stream.

    LAME uses one core, so on a long render it is the step that keeps the others waiting; with one
    segment per core the encode takes about 1/n of the time. The segments overlap by a few frames
    (``WARMUP_FRAMES`` before each splice, ``OVERLAP_FRAMES`` after), are encoded without the bit
    reservoir, and are spliced by :mod:`tracks.engine.mp3frames` (which explains why that is clean).
    Feed each of ``segments`` with ``write_segment`` from its own thread, or everything with ``write``.
    """

    WARMUP_FRAMES = 8
    OVERLAP_FRAMES = 8
    # No bit reservoir: a spliced frame must not borrow bytes from another encode. No ID3 tag and an
    # Info frame first: the splicer reads and patches that frame (tags are added after splicing).
    LAME_OPTIONS = ("-reservoir", "0", "-id3v2_version", "0", "-write_xing", "1")

    def __init__(
        self,
        out_path: str | os.PathLike[str],
        sample_rate: int,
        *,
        total_frames: int,
        count: int,
        tags: dict[str, str] | None = None,
        bitrate: str = "192k",
        quality: int = 7,
        ffmpeg: str = FFMPEG,
    ) -> None:
        kbps = parse_bitrate(bitrate)
        level = _check_quality(quality)
        if sample_rate not in mp3frames.MPEG1_SAMPLE_RATES:
            raise InvalidSettings(f"segmented MP3 needs 32, 44.1 or 48 kHz, not {sample_rate} Hz")
        step = mp3frames.SAMPLES_PER_FRAME
        song_frames = total_frames // step
        if count < 2 or song_frames < count * (self.WARMUP_FRAMES + self.OVERLAP_FRAMES) * 2:
            raise InvalidSettings(f"{total_frames} frames are too few for {count} MP3 segments")
        # Splices fall on the song's MP3 frame grid, so every segment's frames line up with the rest.
        self._splices = [round(song_frames * index / count) for index in range(1, count)]
        starts = [0] + [frame - self.WARMUP_FRAMES for frame in self._splices]
        stops = [(frame + self.OVERLAP_FRAMES) * step for frame in self._splices] + [total_frames]
        self._first_frames = starts
        self.total_frames = total_frames
        self.ffmpeg = ffmpeg
        super().__init__(
            out_path,
            channels=2,
            tags=tags,
            segments=[(start * step, stop) for start, stop in zip(starts, stops, strict=True)],
        )
        self._pieces: list[Path] = []
        self._lames: list[_Lame] = []
        try:
            for _ in range(count):
                self._pieces.append(_temporary_beside(self.out_path))
                self._lames.append(
                    _Lame(
                        self._pieces[-1],
                        sample_rate,
                        channels=2,
                        kbps=kbps,
                        quality=level,
                        ffmpeg=ffmpeg,
                        options=self.LAME_OPTIONS,
                    )
                )
        except RenderFailed:
            self._stop()
            self._temporary.unlink(missing_ok=True)
            raise

    def _write_bytes(self, segment: int, frames: np.ndarray) -> None:
        self._lames[segment].write(_float_bytes(frames))

    def _finish(self) -> None:
        for lame in self._lames:
            lame.finish()
        try:
            segments = [
                mp3frames.read_segment(path, first_frame=first)
                for path, first in zip(self._pieces, self._first_frames, strict=True)
            ]
            cuts = [0]
            for index, nominal in enumerate(self._splices):
                cuts.append(
                    mp3frames.splice_frame(
                        # the earlier segment's frames stay clear of its end-of-input flush here
                        segments[index],
                        segments[index + 1],
                        nominal,
                        self.OVERLAP_FRAMES - 2,
                    )
                )
            cuts.append(segments[-1].first_frame + segments[-1].audio_frames)
            with self._temporary.open("wb") as out:
                mp3frames.splice(segments, cuts, out, total_samples=self.total_frames)
        except mp3frames.Mp3FormatError as exc:
            _UNSPLICEABLE.add(self.ffmpeg)
            logger.warning(
                "could not splice the MP3 segments of %s (%s); MP3s from %s are encoded in one segment "
                "from now on",
                self.out_path.name,
                exc,
                self.ffmpeg,
            )
            raise SpliceFailed(f"could not splice the MP3 segments: {exc}") from exc
        finally:
            for path in self._pieces:
                path.unlink(missing_ok=True)

    def _stop(self) -> None:
        for lame in self._lames:
            lame.stop()
        for path in self._pieces:
            path.unlink(missing_ok=True)


class WavWriter(AudioWriter):
    """RIFF/WAVE, 16-bit PCM (dithered) or 32-bit float, streamed; sizes are patched in at the end."""

    def __init__(
        self,
        out_path: str | os.PathLike[str],
        sample_rate: int,
        *,
        tags: dict[str, str] | None = None,
        channels: int = 2,
        float_samples: bool = False,
    ) -> None:
        super().__init__(out_path, channels=channels, tags=tags)
        self.sample_rate = sample_rate
        self._float = float_samples
        self._convert = _float_bytes if float_samples else _Int16Converter()
        self._width = 4 if float_samples else 2
        self._handle: IO[bytes] | None = self._temporary.open("wb")
        self._handle.write(self._header(0))

    def _header(self, frames: int) -> bytes:
        data_bytes = frames * self.channels * self._width
        if data_bytes > 0xFFFFFFFF - 36:
            raise RenderFailed("the WAV file would exceed 4 GB; render MP3 instead")
        block_align = self.channels * self._width
        audio_format = 3 if self._float else 1  # WAVE_FORMAT_IEEE_FLOAT / WAVE_FORMAT_PCM
        return (
            b"RIFF"
            + struct.pack("<I", 36 + data_bytes)
            + b"WAVEfmt "
            + struct.pack(
                "<IHHIIHH",
                16,
                audio_format,
                self.channels,
                self.sample_rate,
                self.sample_rate * block_align,
                block_align,
                self._width * 8,
            )
            + b"data"
            + struct.pack("<I", data_bytes)
        )

    def _write_bytes(self, segment: int, frames: np.ndarray) -> None:
        assert self._handle is not None
        try:
            self._handle.write(self._convert(frames))
        except OSError as exc:
            raise RenderFailed(f"could not write {self.out_path.name}: {exc.strerror or exc}") from exc

    def _finish(self) -> None:
        handle = self._handle
        assert handle is not None
        try:
            handle.seek(0)
            handle.write(self._header(self.frames_written))
            handle.close()
        except OSError as exc:
            raise RenderFailed(f"could not write {self.out_path.name}: {exc.strerror or exc}") from exc
        self._handle = None

    def _stop(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()


def open_mp3_encoder(
    out_path: str | os.PathLike[str],
    sample_rate: int,
    *,
    tags: dict[str, str] | None = None,
    bitrate: str = "192k",
    quality: int = 7,
    channels: int = 2,
    ffmpeg: str = FFMPEG,
) -> Mp3Encoder:
    """Start ffmpeg/LAME writing ``out_path`` atomically; feed it with ``.write(block)``, then ``.close()``.

    ``quality`` is LAME's algorithm quality (0 best .. 9 fastest; 7 encodes 180 s in about 1 s).
    """
    return Mp3Encoder(
        out_path, sample_rate, tags=tags, bitrate=bitrate, quality=quality, channels=channels, ffmpeg=ffmpeg
    )


def open_audio_writer(
    out_path: str | os.PathLike[str],
    sample_rate: int,
    *,
    tags: dict[str, str] | None = None,
    bitrate: str = "192k",
    quality: int = 7,
    channels: int = 2,
    float_wav: bool = False,
    total_frames: int | None = None,
    parallel: int = 1,
    ffmpeg: str = FFMPEG,
) -> AudioWriter:
    """A streaming writer chosen by the suffix of ``out_path`` (``.mp3`` or ``.wav``).

    With ``parallel`` > 1 and a known ``total_frames``, a stereo MP3 of at least
    ``MIN_SEGMENT_S`` per segment gets a :class:`SegmentedMp3Encoder` with up to ``parallel``
    segments; feed its ``segments`` from one thread each to encode on that many cores. Once the
    segments of an ``ffmpeg`` have failed to splice (:class:`SpliceFailed`), its MP3s get one segment.
    """
    suffix = Path(out_path).suffix.lower()
    if suffix == ".mp3":
        count = 1
        if (
            total_frames is not None
            and channels == 2
            and sample_rate in mp3frames.MPEG1_SAMPLE_RATES
            and ffmpeg not in _UNSPLICEABLE
        ):
            count = min(parallel, total_frames // round(MIN_SEGMENT_S * sample_rate))
        if count >= 2:
            return SegmentedMp3Encoder(
                out_path,
                sample_rate,
                total_frames=total_frames or 0,
                count=count,
                tags=tags,
                bitrate=bitrate,
                quality=quality,
                ffmpeg=ffmpeg,
            )
        return open_mp3_encoder(
            out_path,
            sample_rate,
            tags=tags,
            bitrate=bitrate,
            quality=quality,
            channels=channels,
            ffmpeg=ffmpeg,
        )
    if suffix == ".wav":
        return WavWriter(out_path, sample_rate, tags=tags, channels=channels, float_samples=float_wav)
    raise InvalidSettings(f"output must end in .mp3 or .wav, not {suffix or 'nothing'!r}")


def write_audio(
    samples: np.ndarray,
    sample_rate: int,
    out_path: str | os.PathLike[str],
    *,
    tags: dict[str, str] | None = None,
    bitrate: str = "192k",
    quality: int = 7,
    float_wav: bool = False,
    config: EngineConfig = DEFAULT_CONFIG,
) -> None:
    """Write float ``samples`` (n, 2) or (n,) as .mp3 or .wav at ``out_path``, atomically.

    MP3s are encoded by ``config.ffmpeg``. Raises InvalidSettings for a bad suffix/bitrate/quality
    and RenderFailed when encoding fails (the message carries ffmpeg's last error line); in both
    cases no file is left at ``out_path``.
    """
    array = np.asarray(samples)
    channels = 1 if array.ndim == 1 else array.shape[1]
    with open_audio_writer(
        out_path,
        sample_rate,
        tags=tags,
        bitrate=bitrate,
        quality=quality,
        channels=channels,
        float_wav=float_wav,
        ffmpeg=config.ffmpeg,
    ) as writer:
        writer.write(array)


def probe_duration(path: str | os.PathLike[str], *, config: EngineConfig = DEFAULT_CONFIG) -> float:
    """Duration in seconds as ``config.ffprobe`` reports it; raises RenderFailed if it is not decodable."""
    command = [
        config.ffprobe,
        "-v",
        "error",
        "-show_entries",
        "format=duration",
        "-of",
        "default=noprint_wrappers=1:nokey=1",
        str(path),
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RenderFailed(f"ffprobe failed: {exc}") from exc
    text = result.stdout.strip()
    try:
        duration = float(text)
    except ValueError:
        last = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        raise RenderFailed(f"ffprobe failed: {last}") from None
    if not math.isfinite(duration):
        raise RenderFailed(f"ffprobe could not tell the duration of {Path(path).name}")
    return duration
