"""render_variant: an arrangement plus variant settings in, a mastered MP3 or WAV out.

Pipeline: transform events -> synthesize stems (parts or part groups) in parallel worker processes
into float32 files -> stream the mix through loudness measurement -> plan gain and limiter -> stream
the mastered mix into the encoder (which runs alongside as its own process) -> atomic rename.
With ``stem_dir`` every part is its own cached stem, so a later mix change only re-runs the cheap
streaming stages.
"""

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import pool
from .arrangement import Arrangement
from .encode import open_audio_writer
from .errors import InvalidSettings, RenderFailed
from .mix import (
    GainPlan,
    StemMixer,
    TruePeakMeter,
    plan_gain,
    read_chunks,
    summarise_mix,
    waveform_peaks,
)
from .notes import transpose_key
from .settings import PartMix, VariantSettings
from .synth import StemJob, StemResult
from .transform import Performance, perform

__all__ = ["PartMix", "RenderResult", "VariantSettings", "render_variant"]

SAMPLE_RATE = 44_100
TAIL_S = 3.0  # rendered after the last event so releases and reverb can fade
END_MARGIN_S = 0.25
TARGET_LUFS = -14.0
CEILING_DBTP = -1.0
MP3_QUALITY = 7  # LAME -q: 3x faster than -q 2 and transparent enough at 192 kbps
STEM_LAYOUT_VERSION = 1
_CHUNK_FRAMES = 441_000


@dataclass
class RenderResult:
    duration_s: float
    tempo_bpm: float
    key: str
    lufs: float
    true_peak_dbtp: float
    peaks: list[float]
    stems_reused: bool
    warnings: list[str] = field(default_factory=list)


@dataclass
class _StemSet:
    directory: Path
    paths: list[Path]  # one per stem
    parts: list[list[int]]  # the part indices (the click is ``part_count``) each stem holds
    frames: int
    end_frame: int
    warnings: list[str]


def render_variant(
    arrangement: Arrangement,
    settings: VariantSettings,
    *,
    out_path: str | os.PathLike[str],
    soundfont: str | os.PathLike[str],
    stem_dir: str | os.PathLike[str] | None = None,
    tags: dict[str, str] | None = None,
    progress: Callable[[float], None] | None = None,
) -> RenderResult:
    """Render one variant to ``out_path`` (.mp3 or .wav); raises InvalidSettings or RenderFailed."""
    out = Path(out_path)
    suffix = out.suffix.lower()
    if suffix not in (".mp3", ".wav"):
        raise InvalidSettings(f"output must end in .mp3 or .wav, not {out.name!r}")
    settings.validate(len(arrangement.parts))
    settings = settings.normalised()
    soundfont_path = Path(soundfont)
    if not soundfont_path.is_file():
        raise RenderFailed(f"SoundFont not found: {soundfont_path}")
    report = progress or (lambda _fraction: None)
    report(0.0)

    if stem_dir is not None:
        Path(stem_dir).mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="backtrack-render-", dir=stem_dir))
    try:
        stems, reused = _stems(arrangement, settings, soundfont_path, stem_dir, scratch, report)
        part_gains = settings.part_gains(len(arrangement.parts))
        gains = [
            sum(part_gains[index] if index < len(part_gains) else 1.0 for index in parts) / len(parts)
            for parts in stems.parts
        ]
        mix_path = scratch / "mix.f32"
        mixer = StemMixer(stems.paths, gains)
        try:
            with mix_path.open("wb") as handle:
                summary = summarise_mix(mixer, stems.frames, SAMPLE_RATE, handle)
        finally:
            mixer.close()
        report(0.85)
        frames = min(
            stems.frames, max(stems.end_frame, summary.last_sound) + round(END_MARGIN_S * SAMPLE_RATE)
        )
        if summary.last_sound == 0:
            raise RenderFailed("the render came out silent (every audible part is muted or empty)")
        plan = plan_gain(summary, target_lufs=TARGET_LUFS, ceiling_dbtp=CEILING_DBTP)
        true_peak = _write_output(mix_path, frames, plan, out, tags or {})
        report(1.0)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    analysis = arrangement.analysis
    key = analysis.get("key", "C major")
    return RenderResult(
        duration_s=round(frames / SAMPLE_RATE, 3),
        tempo_bpm=round(float(analysis.get("tempo_bpm", 120.0)) * settings.tempo, 2),
        key=transpose_key(key, settings.transpose) if key else key,
        lufs=round(plan.predicted_lufs, 2),
        true_peak_dbtp=round(true_peak, 2),
        peaks=waveform_peaks(summary.row_peak[: -(-frames // summary.row)], plan.row_gain),
        stems_reused=reused,
        warnings=list(stems.warnings),
    )


def _stems(
    arrangement: Arrangement,
    settings: VariantSettings,
    soundfont: Path,
    stem_dir: str | os.PathLike[str] | None,
    scratch: Path,
    report: Callable[[float], None],
) -> tuple[_StemSet, bool]:
    """Cached per-part stems when ``stem_dir`` is given, else two part groups in a scratch folder."""
    if stem_dir is None:
        performance = perform(
            arrangement,
            transpose=settings.transpose,
            tempo=settings.tempo,
            count_in=settings.count_in,
            click=settings.click,
        )
        groups = _balanced_groups(arrangement, performance, pool.worker_count())
        return _synthesize(performance, groups, soundfont, scratch, report), False

    stat = soundfont.stat()
    identity = (
        f"{arrangement.sha256}:{settings.stem_key()}:{soundfont.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    )
    digest = hashlib.sha256(f"{identity}:{STEM_LAYOUT_VERSION}".encode()).hexdigest()[:32]
    directory = Path(stem_dir) / digest
    cached = _load_manifest(directory)
    if cached is not None:
        report(0.8)
        return cached, True
    performance = perform(
        arrangement,
        transpose=settings.transpose,
        tempo=settings.tempo,
        count_in=settings.count_in,
        click=settings.click,
    )
    groups = [[index] for index in range(performance.part_count)]
    if performance.has_click:
        groups.append([performance.click_part])
    building = Path(tempfile.mkdtemp(prefix=f".{digest}-", dir=stem_dir))
    try:
        stems = _synthesize(performance, groups, soundfont, building, report)
        _write_manifest(building, stems)
        try:
            building.rename(directory)
        except OSError:
            # Another worker finished the same stems first; theirs are identical, use them.
            shutil.rmtree(building, ignore_errors=True)
            cached = _load_manifest(directory)
            if cached is None:
                raise
            return cached, True
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return _load_manifest(directory) or stems, False


def _balanced_groups(arrangement: Arrangement, performance: Performance, count: int) -> list[list[int]]:
    """Split parts into ``count`` groups of similar synthesis cost (sounding note time)."""
    notes = arrangement.notes
    cost = np.bincount(notes.part, weights=notes.end - notes.start, minlength=len(arrangement.parts))
    bins: list[list[int]] = [[] for _ in range(max(1, count))]
    loads = [0.0] * len(bins)
    for index in np.argsort(-cost, kind="stable").tolist():
        target = loads.index(min(loads))
        bins[target].append(index)
        loads[target] += float(cost[index])
    groups = [sorted(group) for group in bins if group]
    if performance.has_click:
        groups.append([performance.click_part])
    return groups


def _synthesize(
    performance: Performance,
    groups: list[list[int]],
    soundfont: Path,
    directory: Path,
    report: Callable[[float], None],
) -> _StemSet:
    frames = performance.end_frame + round(TAIL_S * performance.sample_rate)
    channel = performance.status & 0x0F
    channel_wide = performance.part == -1
    sysex = performance.status == 0xF0
    jobs = []
    paths = []
    for number, group in enumerate(groups):
        mine = np.isin(performance.part, group)
        channels = np.unique(channel[mine & (performance.status < 0xF0)])
        if performance.click_part not in group:
            mine |= (channel_wide & np.isin(channel, channels)) | sysex
        path = directory / f"stem-{number:02d}.npy"
        paths.append(path)
        jobs.append(
            StemJob(
                out_path=str(path),
                n_frames=frames,
                end_frame=performance.end_frame,
                frame=performance.frame[mine],
                status=performance.status[mine],
                d1=performance.d1[mine],
                d2=performance.d2[mine],
                sysex=performance.sysex,
            )
        )
    done = 0

    def on_done(_result: StemResult) -> None:
        nonlocal done
        done += 1
        report(0.8 * done / len(jobs))

    pool.run_jobs(str(soundfont.resolve()), sorted(jobs, key=lambda job: -job.frame.size), on_done=on_done)
    return _StemSet(
        directory=directory,
        paths=paths,
        parts=groups,
        frames=frames,
        end_frame=performance.end_frame,
        warnings=performance.warnings,
    )


def _write_manifest(directory: Path, stems: _StemSet) -> None:
    manifest = {
        "stems": [path.name for path in stems.paths],
        "parts": stems.parts,
        "frames": stems.frames,
        "end_frame": stems.end_frame,
        "warnings": stems.warnings,
    }
    (directory / "manifest.json").write_text(json.dumps(manifest))


def _load_manifest(directory: Path) -> _StemSet | None:
    try:
        manifest = json.loads((directory / "manifest.json").read_text())
        paths = [directory / name for name in manifest["stems"]]
        if not all(path.is_file() for path in paths):
            return None
        return _StemSet(
            directory=directory,
            paths=paths,
            parts=[list(parts) for parts in manifest["parts"]],
            frames=int(manifest["frames"]),
            end_frame=int(manifest["end_frame"]),
            warnings=list(manifest["warnings"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_output(mix_path: Path, frames: int, plan: GainPlan, out: Path, tags: dict[str, str]) -> float:
    """Pass two: apply the plan while the encoder runs; redone with less gain on an intersample over."""
    out.parent.mkdir(parents=True, exist_ok=True)
    ceiling = 10 ** (CEILING_DBTP / 20)
    meter = TruePeakMeter(ceiling, plan.row)
    for _attempt in range(3):
        meter = TruePeakMeter(ceiling, plan.row)
        with (
            mix_path.open("rb") as source,
            open_audio_writer(out, SAMPLE_RATE, tags=tags, quality=MP3_QUALITY) as writer,
        ):
            for start, block in read_chunks(source, frames, _CHUNK_FRAMES):
                mastered = plan.apply(block, start)
                meter.add(mastered)
                writer.write(mastered)
            if meter.dbtp > CEILING_DBTP + 0.05:
                writer.abort()
        if meter.dbtp <= CEILING_DBTP + 0.05:
            break
        plan.row_gain = plan.row_gain * 10 ** ((CEILING_DBTP - meter.dbtp - 0.1) / 20)
    return meter.dbtp
