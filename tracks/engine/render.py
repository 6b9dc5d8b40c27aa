"""render_variant: an arrangement plus variant settings in, a mastered MP3 or WAV out.

Pipeline: transform events -> synthesize stems (parts or part groups) in parallel render threads
into float32 files -> sum the stems and stream the mix through loudness measurement (one thread per
stretch of the song) -> plan gain and limiter -> sum the stems again and stream the mastered mix into
the encoder (a long MP3 as one LAME segment per render thread, spliced afterwards) -> atomic rename.

A render synthesizes the audible parts as a few balanced groups (one per render thread it may use,
split further only where parts need different gains), because every FluidSynth instance pays reverb
and chorus over the whole song whatever it plays: eighteen per-part synths cost several times one
mix. Per-part stems are built separately by ``prepare_stems`` (a background job after a first render)
and cached in ``stem_dir``; once they exist, ``render_variant`` serves a mix change from them without
synthesis, reading the cached unity mix plus the stems whose gain changed (or every stem, when half or
more of them changed).

How many threads, which ffmpeg and how much scratch disk a render may use come from an
:class:`~tracks.engine.config.EngineConfig` passed by the caller.
"""

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import pool
from .arrange import arranged_song
from .arrangement import Arrangement
from .config import DEFAULT_CONFIG, EngineConfig
from .cues import cue_stem
from .dynamics import dynamics_envelope, dynamics_summary, plan_dynamics, with_dynamics
from .encode import AudioWriter, SpliceFailed, open_audio_writer
from .errors import InvalidSettings, RenderFailed
from .master import GainPlan, TruePeakMeter, plan_gain
from .mix import MixSummary, StemMixer, summarise_stems, waveform_peaks
from .notes import transpose_key
from .presets import effective_mix, mix_to_dict
from .settings import PartMix, VariantSettings
from .synth import StemJob, StemResult, synth_identity
from .transform import Performance, perform
from .voice_space import make_space

__all__ = ["PartMix", "RenderResult", "VariantSettings", "prepare_stems", "render_variant"]

logger = logging.getLogger(__name__)

SAMPLE_RATE = 44_100
TAIL_S = 3.0  # rendered after the last event so releases and reverb can fade
END_MARGIN_S = 0.25
TARGET_LUFS = -14.0
CEILING_DBTP = -1.0
MP3_QUALITY = 7  # LAME -q: 3x faster than -q 2 and transparent enough at 192 kbps
STEM_LAYOUT_VERSION = 3  # 2: stems add up to the group render (no mid-song quiet skipping); 3: dry click
_MAX_OUTPUT_ATTEMPTS = 3  # passes two with less gain after an intersample over
_CHUNK_FRAMES = 110_250  # 2.5 s: small enough that one per encoder thread stays a few MB


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
    effective_mix: dict[str, dict[str, Any]] = field(default_factory=dict)  # the preset with the mix over it
    dynamics: dict[str, Any] = field(default_factory=dict)  # the section levels played (see .dynamics)


@dataclass
class _StemSet:
    directory: Path
    paths: list[Path]  # one per stem
    parts: list[list[int]]  # the part indices (the click is ``part_count``) each stem holds
    frames: int
    end_frame: int
    warnings: list[str]
    gains: list[float] | None = None  # linear gain each stem was synthesized for (None: unity)
    sum_path: Path | None = None  # every stem summed at unity gain (cached per-part stems only)


def render_variant(
    arrangement: Arrangement,
    settings: VariantSettings,
    *,
    out_path: str | os.PathLike[str],
    soundfont: str | os.PathLike[str],
    stem_dir: str | os.PathLike[str] | None = None,
    tags: dict[str, str] | None = None,
    progress: Callable[[float], None] | None = None,
    config: EngineConfig = DEFAULT_CONFIG,
) -> RenderResult:
    """Render one variant to ``out_path`` (.mp3 .wav .flac .zip .mid); raises InvalidSettings, RenderFailed.

    ``stem_dir`` caches per-part stems (see :func:`prepare_stems`) and holds the render's scratch
    files; ``progress`` is called with the fraction done (0..1); ``config`` says how many threads,
    which ffmpeg and how much scratch space the render may use. RenderFailed before any synthesis
    when the render would need more than ``config.max_scratch_bytes`` of stems.
    """
    out = Path(out_path)
    suffix = out.suffix.lower()
    # The arrangement comes before every other transform (tempo, key, click, outputs act on it).
    arrangement = arranged_song(arrangement, settings.arrangement, tempo=settings.tempo)
    from . import outputs  # here, not at the top: outputs builds on this module

    if outputs.handles(out, settings):  # FLAC, stems ZIP, MIDI, split layout
        return outputs.render_output(
            arrangement,
            settings,
            out_path=out,
            soundfont=soundfont,
            stem_dir=stem_dir,
            tags=tags,
            progress=progress,
            config=config,
        )
    if suffix not in (".mp3", ".wav"):
        raise InvalidSettings(f"output must end in .mp3, .wav, .flac, .zip or .mid, not {out.name!r}")
    settings.validate(len(arrangement.parts))
    settings = settings.normalised()
    soundfont_path = Path(soundfont)
    if not soundfont_path.is_file():
        raise RenderFailed(f"SoundFont not found: {soundfont_path}")
    report = progress or (lambda _fraction: None)
    report(0.0)

    if stem_dir is not None:
        Path(stem_dir).mkdir(parents=True, exist_ok=True)
    mix = effective_mix(arrangement.analysis.get("parts", []), settings, _melody_part(arrangement))
    part_gains = effective_part_gains(arrangement, settings)
    scratch = Path(tempfile.mkdtemp(prefix="backtrack-render-", dir=stem_dir))
    try:
        cached = None
        if stem_dir is not None:
            cached = _load_manifest(_stem_directory(arrangement, settings, soundfont_path, stem_dir))
        if cached is not None:
            report(0.8)
            stems, reused = cached, True
        else:
            # Not cached yet: render the fast way now; prepare_stems builds per-part stems later.
            stems = _render_groups(arrangement, settings, part_gains, soundfont_path, scratch, report, config)
            reused = False
        # The mix is summed from the stems in both passes instead of being written out between
        # them: summing the few inputs again is cheaper than writing and reading a whole mix file.
        paths, gains = _mix_inputs(stems, part_gains)
        if settings.space_for_voice and _voice_part(arrangement, settings) is not None:
            paths, gains = _with_space_for_voice(arrangement, settings, stems, part_gains, scratch)
        envelope = dynamics_envelope(arrangement, settings, sample_rate=SAMPLE_RATE)
        if envelope is not None:  # the band (not the click, nor the cues after it) follows the sections
            clicks = [
                path
                for path, parts in zip(stems.paths, stems.parts, strict=True)
                if len(arrangement.parts) in parts
            ]
            paths, gains = with_dynamics(
                envelope,
                paths=paths,
                gains=gains,
                unshaped=clicks,
                sum_path=stems.sum_path,
                frames=stems.frames,
                scratch=scratch,
            )
        if settings.cues:  # spoken cues: one more stem, mixed like the click
            cues = cue_stem(
                arrangement,
                tempo=settings.tempo,
                count_in=settings.count_in,
                frames=stems.frames,
                directory=scratch,
                cache_dir=stem_dir,
            )
            paths, gains = [*paths, cues], [*gains, 1.0]
        summary, frames, plan = plan_master(paths, gains, stems, config)
        report(0.85)
        true_peak = _write_output(paths, gains, frames, plan, out, tags or {}, config)
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
        effective_mix=mix_to_dict(mix),
        dynamics=dynamics_summary(arrangement, settings),
    )


def prepare_stems(
    arrangement: Arrangement,
    settings: VariantSettings,
    *,
    soundfont: str | os.PathLike[str],
    stem_dir: str | os.PathLike[str],
    config: EngineConfig = DEFAULT_CONFIG,
) -> bool:
    """Render and cache one stem per part for ``settings.stem_key()``; False when already cached.

    Meant for a low-priority background job after a first render: later mix changes of the same
    arrangement, key, tempo, click and count-in are then served from the stems without synthesis.
    The stems are built in a private folder and renamed into place, so readers never see a partial
    set; when two workers build the same stems at once, the loser discards its copy and returns False.
    Raises InvalidSettings or RenderFailed (also, before any synthesis, when the stems and their sum
    would take more than ``config.max_scratch_bytes``).
    """
    settings.validate(len(arrangement.parts))
    settings = settings.normalised()
    arrangement = arranged_song(arrangement, settings.arrangement, tempo=settings.tempo)
    soundfont_path = Path(soundfont)
    if not soundfont_path.is_file():
        raise RenderFailed(f"SoundFont not found: {soundfont_path}")
    Path(stem_dir).mkdir(parents=True, exist_ok=True)
    directory = _stem_directory(arrangement, settings, soundfont_path, stem_dir)
    if _load_manifest(directory) is not None:
        return False
    performance = _perform(arrangement, settings)
    groups = [[index] for index in range(performance.part_count)]
    if performance.has_click:
        groups.append([performance.click_part])
    _check_scratch(len(groups) + 1, _stem_frames(performance), config)  # one more: the unity sum
    building = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=stem_dir))
    try:
        with pool.cpu_share(config=config) as parallel:
            stems = _synthesize(
                performance,
                groups,
                soundfont_path,
                building,
                lambda _fraction: None,
                parallel=parallel,
                config=config,
            )
        stems.sum_path = building / "sum.npy"
        _sum_stems(stems.paths, stems.sum_path, stems.frames)
        from .stream import measure_profile, save_profile  # stream builds on this module

        # What any mix of these stems will measure: a streamed mix change masters at once from it.
        profile = measure_profile(
            stems.paths,
            stems.parts,
            performance.part_count,
            stems.frames,
            tempo=settings.tempo,
            transpose=settings.transpose,
            parallel=config.render_threads,
        )
        save_profile(building, profile)
        _write_manifest(building, stems)
        try:
            building.rename(directory)
        except OSError:
            # Another worker finished the same stems first; theirs are identical, keep them.
            shutil.rmtree(building, ignore_errors=True)
            if _load_manifest(directory) is None:
                raise
            return False
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return True


def _perform(arrangement: Arrangement, settings: VariantSettings) -> Performance:
    plan = plan_dynamics(arrangement, settings.dynamics)
    return perform(
        arrangement,
        transpose=settings.transpose,
        tempo=settings.tempo,
        count_in=settings.count_in,
        click=settings.click,
        velocity_spans=plan.velocity_spans() if plan is not None else (),
    )


def stem_set_identity(arrangement: Arrangement, settings: VariantSettings) -> str:
    """What decides a stem set's samples besides its SoundFont file: the arrangement, the stem key,
    the sections they follow, FluidSynth and its effects, the stem layout. The same on every machine,
    so a set shared through storage is named by it too (``tracks/services/stems.py``)."""
    identity = f"{arrangement.sha256}:{settings.stem_key()}:{synth_identity()}:{STEM_LAYOUT_VERSION}"
    if settings.arrangement or settings.dynamics:
        # These follow the sections, which a producer may correct: stems of the old ones must not serve.
        sections = arrangement.analysis.get("original_sections", arrangement.analysis.get("sections"))
        identity += ":" + json.dumps(sections, sort_keys=True, default=str)
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


def _stem_directory(
    arrangement: Arrangement, settings: VariantSettings, soundfont: Path, stem_dir: str | os.PathLike[str]
) -> Path:
    """Where the per-part stems of (arrangement, stem key, SoundFont) are cached."""
    stat = soundfont.stat()
    identity = (
        f"{stem_set_identity(arrangement, settings)}:{soundfont.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    )
    return Path(stem_dir) / hashlib.sha256(identity.encode()).hexdigest()[:32]


def _render_groups(
    arrangement: Arrangement,
    settings: VariantSettings,
    part_gains: list[float],
    soundfont: Path,
    scratch: Path,
    report: Callable[[float], None],
    config: EngineConfig,
) -> _StemSet:
    """The audible parts synthesized as a few balanced groups of equal gain, in a scratch folder."""
    performance = _perform(arrangement, settings)
    with pool.cpu_share(config=config) as parallel:
        alone = _voice_part(arrangement, settings)
        groups, gains = _balanced_groups(arrangement, performance, part_gains, parallel, alone=alone)
        _check_scratch(len(groups), _stem_frames(performance), config)
        stems = _synthesize(performance, groups, soundfont, scratch, report, parallel=parallel, config=config)
    stems.gains = gains
    return stems


def plan_master(
    paths: list[Path], gains: list[float], stems: "_StemSet", config: EngineConfig
) -> tuple[MixSummary, int, GainPlan]:
    """The mastering plan of a mix of ``stems``: its summary, its length in frames (the sound's end
    plus a margin, never cut before the music's end) and the gain plan to -14 LUFS, <= -1 dBTP.
    Every output (MP3/WAV, stems ZIP, split layout) masters through this, so they agree.
    RenderFailed when the mix is silent."""
    summary = summarise_stems(paths, gains, stems.frames, SAMPLE_RATE, parallel=config.render_threads)
    if summary.last_sound == 0:
        raise RenderFailed("the render came out silent (every audible part is muted or empty)")
    frames = min(stems.frames, max(stems.end_frame, summary.last_sound) + round(END_MARGIN_S * SAMPLE_RATE))
    plan = plan_gain(
        hop_energy=summary.hop_energy,
        row_peak=summary.row_peak,
        row=summary.row,
        target_lufs=TARGET_LUFS,
        ceiling_dbtp=CEILING_DBTP,
    )
    return summary, frames, plan


def effective_part_gains(arrangement: Arrangement, settings: VariantSettings) -> list[float]:
    """Linear gain per part of the mix ``settings`` play: the preset's with the explicit mix over it.

    Every output (MP3, WAV and the other formats) should mix with these rather than
    ``settings.part_gains``, which knows nothing of presets.
    """
    mix = effective_mix(arrangement.analysis.get("parts", []), settings, _melody_part(arrangement))
    return replace(settings, mix=mix).part_gains(len(arrangement.parts))


def _melody_part(arrangement: Arrangement) -> int | None:
    melody = arrangement.analysis.get("melody_part")
    return melody if isinstance(melody, int) and 0 <= melody < len(arrangement.parts) else None


def _voice_part(arrangement: Arrangement, settings: VariantSettings) -> int | None:
    """The melody part when the render makes space for the voice (its notes key the cut)."""
    return _melody_part(arrangement) if settings.space_for_voice else None


def _with_space_for_voice(
    arrangement: Arrangement,
    settings: VariantSettings,
    stems: _StemSet,
    part_gains: list[float],
    scratch: Path,
) -> tuple[list[Path], list[float]]:
    """Mix inputs whose accompaniment is carved around the melody (see :mod:`.voice_space`)."""
    melody = _voice_part(arrangement, settings)
    assert melody is not None
    gains = stems.gains or [
        sum(part_gains[index] if index < len(part_gains) else 1.0 for index in parts) / len(parts)
        for parts in stems.parts
    ]
    return make_space(
        _perform(arrangement, settings),
        melody_part=melody,
        stem_paths=stems.paths,
        stem_parts=stems.parts,
        stem_gains=gains,
        frames=stems.frames,
        scratch=scratch,
        cut_db=settings.space_for_voice,
        voice_range=settings.voice_range,
    )


def _stem_frames(performance: Performance) -> int:
    """Frames of every stem of ``performance``: the music plus a tail for releases and reverb."""
    return performance.end_frame + round(TAIL_S * performance.sample_rate)


def _check_scratch(stems: int, frames: int, config: EngineConfig) -> None:
    """Refuse, before synthesis, a render whose float32 stereo stems would not fit its scratch budget.

    A hostile file (many parts, the longest song at the slowest tempo) can ask for hundreds of GB;
    failing with the number is better than filling a worker's disk.
    """
    planned = stems * frames * 2 * 4
    limit = config.max_scratch_bytes
    if limit is not None and planned > limit:
        raise RenderFailed(
            f"this render would need {_bytes_text(planned)} of scratch space; "
            f"the limit is {_bytes_text(limit)}"
        )


def _bytes_text(size: int) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 100_000_000 else f"{size / 1e6:.1f} MB"


def _mix_inputs(stems: _StemSet, part_gains: list[float]) -> tuple[list[Path], list[float]]:
    """Files and linear gains whose sum is the mix.

    Per-part stems come with their unity sum, so a mix that changes a few parts reads the sum plus
    those stems with the gain difference (mute is -1) instead of every stem.
    """
    if stems.gains is not None:
        return list(stems.paths), list(stems.gains)
    gains = [
        sum(part_gains[index] if index < len(part_gains) else 1.0 for index in parts) / len(parts)
        for parts in stems.parts
    ]
    changed = [number for number, gain in enumerate(gains) if gain != 1.0]
    if stems.sum_path is not None and len(changed) < len(gains) / 2:
        return [stems.sum_path] + [stems.paths[n] for n in changed], [1.0] + [gains[n] - 1.0 for n in changed]
    return list(stems.paths), gains


def _sum_stems(paths: list[Path], out_path: Path, frames: int) -> None:
    """Write the unity-gain sum of ``paths`` as a (frames, 2) float32 .npy, chunk by chunk."""
    mixer = StemMixer(paths, [1.0] * len(paths))
    try:
        with out_path.open("wb") as handle:
            np.lib.format.write_array_header_1_0(
                handle, {"descr": "<f4", "fortran_order": False, "shape": (frames, 2)}
            )
            for start in range(0, frames, _CHUNK_FRAMES):
                handle.write(mixer.read(min(_CHUNK_FRAMES, frames - start)).tobytes())
    finally:
        mixer.close()


def _balanced_groups(
    arrangement: Arrangement,
    performance: Performance,
    part_gains: list[float],
    count: int,
    *,
    alone: int | None = None,
) -> tuple[list[list[int]], list[float]]:
    """Audible parts in ``count`` lanes of similar synthesis cost (sounding note time).

    A group is the parts of one lane that share a gain, so each group is mixed with one exact gain;
    muted parts are not synthesized at all; part ``alone`` (the melody, for the space for the voice)
    gets a group of its own. Returns the groups and their linear gains.
    """
    notes = arrangement.notes
    cost = np.bincount(notes.part, weights=notes.end - notes.start, minlength=len(arrangement.parts))
    lanes: list[dict[float, list[int]]] = [{} for _ in range(max(1, count))]
    loads = [0.0] * len(lanes)
    for index in np.argsort(-cost, kind="stable").tolist():
        gain = part_gains[index]
        if gain == 0.0:
            continue
        target = loads.index(min(loads))
        lanes[target].setdefault(gain, []).append(index)
        loads[target] += float(cost[index])
    groups: list[list[int]] = []
    gains: list[float] = []
    for lane in lanes:
        for gain, group in lane.items():
            groups.append(sorted(group))
            gains.append(gain)
    for group in groups:
        if alone in group and len(group) > 1:
            group.remove(alone)
            groups.append([alone])
            gains.append(part_gains[alone])
            break
    if performance.has_click:
        groups.append([performance.click_part])
        gains.append(1.0)
    return groups, gains


def _synthesize(
    performance: Performance,
    groups: list[list[int]],
    soundfont: Path,
    directory: Path,
    report: Callable[[float], None],
    *,
    parallel: int,
    config: EngineConfig,
) -> _StemSet:
    frames = _stem_frames(performance)
    paths, jobs = stem_jobs(performance, groups, directory)
    done = 0

    def on_done(_result: StemResult) -> None:
        nonlocal done
        done += 1
        report(0.8 * done / len(jobs))

    pool.run_jobs(
        str(soundfont.resolve()),
        sorted(jobs, key=lambda job: -job.frame.size),
        parallel=parallel,
        on_done=on_done,
        config=config,
    )
    return _StemSet(
        directory=directory,
        paths=paths,
        parts=groups,
        frames=frames,
        end_frame=performance.end_frame,
        warnings=performance.warnings,
    )


def stem_jobs(
    performance: Performance, groups: list[list[int]], directory: Path, *, prefix: str = "stem"
) -> tuple[list[Path], list[StemJob]]:
    """One synthesis job per group of parts, and the stem file each writes in ``directory``.

    A group gets its parts' events plus the channel-wide events (controllers, pitch bend) of the
    channels it plays and every sysex; the click's group gets the click alone.
    """
    frames = _stem_frames(performance)
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
        path = directory / f"{prefix}-{number:02d}.npy"
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
                effects=performance.click_part not in group,
            )
        )
    return paths, jobs


def _write_manifest(directory: Path, stems: _StemSet) -> None:
    manifest = {
        "stems": [path.name for path in stems.paths],
        "parts": stems.parts,
        "frames": stems.frames,
        "end_frame": stems.end_frame,
        "warnings": stems.warnings,
        "sum": stems.sum_path.name if stems.sum_path is not None else None,
    }
    (directory / "manifest.json").write_text(json.dumps(manifest))


def _load_manifest(directory: Path) -> _StemSet | None:
    try:
        manifest = json.loads((directory / "manifest.json").read_text())
        paths = [directory / name for name in manifest["stems"]]
        sum_name = manifest.get("sum")
        sum_path = directory / sum_name if sum_name else None
        if not all(path.is_file() for path in paths) or (sum_path is not None and not sum_path.is_file()):
            return None
        return _StemSet(
            directory=directory,
            paths=paths,
            parts=[list(parts) for parts in manifest["parts"]],
            frames=int(manifest["frames"]),
            end_frame=int(manifest["end_frame"]),
            warnings=list(manifest["warnings"]),
            sum_path=sum_path,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_output(
    paths: list[Path],
    gains: list[float],
    frames: int,
    plan: GainPlan,
    out: Path,
    tags: dict[str, str],
    config: EngineConfig,
) -> float:
    """Pass two: apply the plan while the encoder runs; redone with less gain on an intersample over.

    A long MP3 is encoded in one segment per render thread (see ``SegmentedMp3Encoder``), each fed by
    its own thread that mixes, masters and meters its stretch; the segment count depends on the
    configured threads and the song only, so the same render always gives the same bytes. Should the
    segments fail to splice (an ffmpeg whose LAME tag the splicer does not know), the pass is redone
    as one segment, which ``open_audio_writer`` then chooses by itself.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    splice_failed = False
    for _attempt in range(_MAX_OUTPUT_ATTEMPTS + 1):  # one more for a splice that fails
        try:
            with open_audio_writer(
                out,
                SAMPLE_RATE,
                tags=tags,
                quality=MP3_QUALITY,
                total_frames=frames,
                parallel=config.render_threads,
                ffmpeg=config.ffmpeg,
            ) as writer:
                dbtp = _feed_writer(writer, paths, gains, frames, plan)
                if dbtp > CEILING_DBTP + 0.05:
                    writer.abort()
        except SpliceFailed as exc:
            if splice_failed:
                raise
            splice_failed = True
            logger.warning("%s: %s; encoding it again as one segment", out.name, exc)
            continue
        if dbtp <= CEILING_DBTP + 0.05:
            return dbtp
        plan.row_gain = plan.row_gain * 10 ** ((CEILING_DBTP - dbtp - 0.1) / 20)
    raise RenderFailed(f"mastering could not keep the true peak under {CEILING_DBTP:g} dBTP")


def _feed_writer(
    writer: AudioWriter, paths: list[Path], gains: list[float], frames: int, plan: GainPlan
) -> float:
    """Mix, master and meter every segment of ``writer`` (one thread each); returns the true peak."""
    ceiling = 10 ** (CEILING_DBTP / 20)
    cancelled = threading.Event()

    def feed(index: int) -> float:
        start, stop = writer.segments[index]
        end = frames if stop is None else stop
        meter = TruePeakMeter(ceiling, plan.row)
        mixer = StemMixer(paths, gains, start=start)
        try:
            for position in range(start, end, _CHUNK_FRAMES):
                if cancelled.is_set():
                    break
                mastered = plan.apply(mixer.read(min(_CHUNK_FRAMES, end - position)), position)
                meter.add(mastered)
                writer.write_segment(index, mastered)
        except BaseException:
            cancelled.set()  # the other segments stop too; the writer is aborted by its caller
            raise
        finally:
            mixer.close()
        return meter.dbtp

    count = len(writer.segments)
    if count == 1:
        return feed(0)
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="encode-feed") as executor:
        futures = [executor.submit(feed, index) for index in range(count)]
        try:
            return max(future.result() for future in futures)
        except BaseException:
            cancelled.set()  # also when this thread is interrupted (a Celery soft time limit)
            raise
