"""Spoken cues: the count-in counted aloud and each section's name in the bar before it (espeak-ng).

The cue track is one more stem (mono speech on both channels) mixed like the click: it goes into the
left ear in the split layout and is ``Cues.wav`` in a stems ZIP. Words are synthesized once per
process and text (and, given a folder, once per machine), trimmed of espeak's leading and trailing
silence, and fitted to their slot: each count word starts on its beat and ends before the next one,
so the last ends before the song's first downbeat; a section name starts at the downbeat of the bar
before its section and ends before the section's downbeat. A word too long for its slot is spoken
faster, then, if still too long, cut with a short fade.
"""

import hashlib
import os
import struct
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import dsp
from .arrangement import Arrangement
from .errors import RenderFailed
from .timeline import Timeline
from .transform import beat_grid

ESPEAK = "espeak-ng"
NUMBERS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
CUE_PEAK = 10 ** (-6 / 20)  # every word peaks at -6 dBFS before the mix
SLOT_FILL = 0.9  # a word takes at most this much of its slot, so it ends clearly before the next beat
_RATES = (175, 260, 380)  # espeak words per minute: normal, then faster for short slots
_SILENCE = 10 ** (-50 / 20)
_FADE_S = 0.01
_cache: dict[tuple[str, int], np.ndarray] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Cue:
    """One spoken word or phrase: ``text`` from ``start_s`` (render seconds) ending before ``end_s``."""

    text: str
    start_s: float
    end_s: float


def plan_cues(arrangement: Arrangement, *, tempo: float, count_in: int) -> list[Cue]:
    """The count-in words (one per click of every count-in bar) and the section names after the first."""
    analysis = arrangement.analysis
    numerator, denominator = 4, 4
    for tick, num, den in arrangement.raw.time_signatures:
        if tick == 0 and num > 0:
            numerator, denominator = num, den
            break
    per_bar, quarters = beat_grid(numerator, denominator)
    first_tempo_s = float(arrangement.tempo_map.tempos[0]) / 1e6
    beat_s = quarters * first_tempo_s / tempo
    cues = [
        Cue(
            NUMBERS[beat % per_bar] if beat % per_bar < len(NUMBERS) else "and",
            beat * beat_s,
            (beat + 1) * beat_s,
        )
        for beat in range(count_in * per_bar)
    ]
    timeline = Timeline.from_analysis(analysis)
    for section in (analysis.get("sections") or [])[1:]:
        try:
            bar = int(section["start_bar"])
            name = str(section["name"]).strip()
        except (KeyError, TypeError, ValueError):
            continue
        if bar < 2 or not name:
            continue
        start = timeline.seconds_at(bar - 1, 1.0, tempo_ratio=tempo, count_in_bars=count_in)
        end = timeline.seconds_at(bar, 1.0, tempo_ratio=tempo, count_in_bars=count_in)
        cues.append(Cue(name, start, end))
    return cues


def _read_stream_wav(data: bytes) -> tuple[int, np.ndarray]:
    """A 16-bit PCM WAV as espeak-ng streams it (its header cannot know the length): rate, mono float32."""
    marker = data.find(b"data", 12)
    if not data.startswith(b"RIFF") or marker < 0:
        raise RenderFailed("espeak-ng did not produce a WAV stream")
    channels, rate = struct.unpack("<HI", data[22:28])
    body = data[marker + 8 :]
    samples = np.frombuffer(body[: len(body) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
    if channels > 1:
        samples = samples[: samples.size // channels * channels].reshape(-1, channels).mean(axis=1)
    return int(rate), samples


def _synthesize(text: str, rate: int, *, espeak: str, cache_dir: Path | None, sample_rate: int) -> np.ndarray:
    """``text`` spoken at ``rate`` words per minute: mono float32 at ``sample_rate``, silence trimmed."""
    key = (text, rate)
    with _lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    disk = None
    if cache_dir is not None:
        digest = hashlib.sha256(f"{text}\0{rate}\0{sample_rate}".encode()).hexdigest()[:24]
        disk = cache_dir / f"cue-{digest}.npy"
        if disk.is_file():
            word = np.load(disk)
            with _lock:
                _cache[key] = word
            return word
    try:
        done = subprocess.run(
            [espeak, "-v", "en", "-s", str(rate), "--stdout", text],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RenderFailed(f"spoken cues need espeak-ng, which could not run: {exc}") from exc
    if done.returncode != 0 or not done.stdout:
        raise RenderFailed(f"espeak-ng could not speak {text!r}")
    rate_in, samples = _read_stream_wav(done.stdout)
    if rate_in != sample_rate:
        samples = dsp.resample(samples, rate_in, sample_rate).astype(np.float32)
    loud = np.flatnonzero(np.abs(samples) > _SILENCE)
    word = samples[loud[0] : loud[-1] + 1] if loud.size else samples[:0]
    peak = float(np.max(np.abs(word))) if word.size else 0.0
    if peak > 0:
        word = (word * (CUE_PEAK / peak)).astype(np.float32)
    if disk is not None:
        disk.parent.mkdir(parents=True, exist_ok=True)
        temporary = disk.with_suffix(f".{threading.get_ident()}.tmp.npy")
        np.save(temporary, word)
        temporary.replace(disk)
    with _lock:
        _cache[key] = word
    return word


def _fitted(text: str, slot_s: float, *, espeak: str, cache_dir: Path | None, sample_rate: int) -> np.ndarray:
    limit = max(1, int(slot_s * SLOT_FILL * sample_rate))
    word = np.zeros(0, dtype=np.float32)
    for rate in _RATES:
        word = _synthesize(text, rate, espeak=espeak, cache_dir=cache_dir, sample_rate=sample_rate)
        if word.size <= limit:
            return word
    cut = word[:limit].copy()
    fade = min(limit, round(_FADE_S * sample_rate))
    cut[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return cut


def write_cue_stem(
    cues: list[Cue],
    out_path: Path,
    frames: int,
    *,
    sample_rate: int,
    espeak: str = ESPEAK,
    cache_dir: Path | None = None,
) -> Path:
    """The cues as a (frames, 2) float32 .npy stem (what the mixer reads) at ``out_path``."""
    track = np.zeros(frames, dtype=np.float32)
    for cue in cues:
        word = _fitted(
            cue.text, cue.end_s - cue.start_s, espeak=espeak, cache_dir=cache_dir, sample_rate=sample_rate
        )
        start = round(cue.start_s * sample_rate)
        stop = min(frames, start + word.size)
        if start < 0 or stop <= start:
            continue
        track[start:stop] += word[: stop - start]
    np.save(out_path, np.repeat(track[:, np.newaxis], 2, axis=1))
    return out_path


def cue_stem(
    arrangement: Arrangement,
    *,
    tempo: float,
    count_in: int,
    frames: int,
    directory: Path,
    cache_dir: str | os.PathLike[str] | None = None,
    sample_rate: int = 44_100,
) -> Path:
    """The cues of a variant as ``directory/cues.npy``, ``frames`` long (words cached under ``cache_dir``)."""
    words = Path(cache_dir) / "cues" if cache_dir is not None else None
    cues = plan_cues(arrangement, tempo=tempo, count_in=count_in)
    return write_cue_stem(cues, directory / "cues.npy", frames, sample_rate=sample_rate, cache_dir=words)
