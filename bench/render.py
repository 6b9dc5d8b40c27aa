"""Benchmark: the engine's render+MP3 against `fluidsynth | ffmpeg` on the same transformed MIDI.

Not a test. For every file in tests/data/midi (or --midi-dir) plus a generated 3-minute and
10-minute 8-part song, with the same SoundFont and the same transform (+2 semitones, 0.8x) for both
sides, prints: the engine's first render+MP3 time (an empty stem folder, so nothing is cached), the
baseline time, their ratio, the time ``prepare_stems`` then takes to build the per-part stems (a
background job in the app), the remix time (a mix change served from those stems) and its ratio to
the baseline, the peak RSS of the engine's child process and its render workers, and what the sound
features cost in the same run: ``voice/plain`` (a render with 6 dB of space for the voice over the
same render without, both synthesizing fresh stems; target <= 1.15), ``dynamics/plain`` (``"build"``
dynamics, fresh stems; target <= 1.15), ``preset/remix`` (the groove
preset served from the cached stems over the plain remix: a preset is only a remix), and the outputs
against the plain render (target <= 1.2): ``zip/plain`` (a stems ZIP synthesizing its per-part stems),
``zip(cached)/plain`` (the stems ZIP from the per-part stems a first render leaves) and
``split/plain`` (click left, band right, fresh stems); ``arranged/plain``: every section once, last
first (an arrangement as long as the song, a jump at every join), over the plain render (target
<= 1.0: an arrangement costs no more than the same length of plain song). Each file runs
in a fresh child process, so its peak RSS is its own.

    .venv/bin/python bench/render.py [--soundfont PATH] [--only NAME] [--repeat N] [--threads N]
    .venv/bin/python bench/render.py --outputs [--only NAME] [--repeat N]

With ``--repeat N`` each file is measured N times, alternating baseline and engine, and the table shows
the fastest of each column (the least disturbed run on a shared machine).

``--outputs`` measures only what the outputs cost against the plain MP3 of the same variant, in one
child process per file: after a warm-up render, ``--repeat`` rounds (default 3) of a plain MP3, a
stems ZIP and a split-layout MP3, each synthesizing into a fresh stem folder, in alternating order,
then a stems ZIP from cached per-part stems; the fastest of each is compared (target <= 1.2). It also
shows how much of the ZIP's time is synthesis (until the render reports 0.8).

Every engine run uses a private folder of core slots, so renders of other processes on the machine
(tests, workers) do not make it render serially part of the time (``pool.cpu_share``).
"""

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
MIDI_DIR = REPO_ROOT / "tests" / "data" / "midi"
sys.path.insert(0, str(REPO_ROOT))

TRANSPOSE = 2
TEMPO = 0.8


def engine_child(midi_path: str, soundfont: str, workdir: str, threads: str) -> None:
    """Runs in a child process: first render, stem preparation, remix; prints timings and peak RSS.

    ``threads`` is the render threads to configure, "0" for the engine's default (the machine's cores).
    """
    from tracks.engine import (
        EngineConfig,
        PartMix,
        VariantSettings,
        load_arrangement,
        pool,
        prepare_stems,
        render_variant,
    )

    config = EngineConfig(threads=int(threads) or None, slot_dir=Path(workdir) / "slots")
    stems = Path(workdir) / "stems"
    settings = VariantSettings(transpose=TRANSPOSE, tempo=TEMPO)
    started = time.perf_counter()
    arrangement = load_arrangement(Path(midi_path).read_bytes())
    first = render_variant(
        arrangement,
        settings,
        out_path=Path(workdir) / "full.mp3",
        soundfont=soundfont,
        stem_dir=stems,
        config=config,
    )
    full = time.perf_counter() - started
    started = time.perf_counter()
    built = prepare_stems(arrangement, settings, soundfont=soundfont, stem_dir=stems, config=config)
    prepare = time.perf_counter() - started
    started = time.perf_counter()
    result = render_variant(
        arrangement,
        VariantSettings(transpose=TRANSPOSE, tempo=TEMPO, mix={0: PartMix(gain_db=-6.0)}),
        out_path=Path(workdir) / "remix.mp3",
        soundfont=soundfont,
        stem_dir=stems,
        config=config,
    )
    remix = time.perf_counter() - started
    if first.stems_reused or not built or not result.stems_reused:
        raise SystemExit("unexpected stem reuse: the timings would not mean what the table says")
    # Feature costs against the plain render in this same run: a warm plain render and one with space
    # for the voice (each with fresh stems), and a preset served as a remix of the cached stems.
    timings = {}
    for label, variant, folder in (
        ("plain", settings, "plain-stems"),
        ("voice", replace(settings, space_for_voice=6.0), "voice-stems"),
        ("dynamics", replace(settings, dynamics="build"), "dynamics-stems"),
        ("preset", replace(settings, preset="groove"), "stems"),
        ("stems", replace(settings, format="stems"), "zip-stems"),
        ("stems_cached", replace(settings, format="stems"), "stems"),
        ("split", replace(settings, layout="split", click=True), "split-stems"),
        ("arranged", replace(settings, arrangement=_reordered(arrangement)), "arranged-stems"),
    ):
        started = time.perf_counter()
        feature = render_variant(
            arrangement,
            variant,
            out_path=Path(workdir) / f"{label}{'.zip' if label.startswith('stems') else '.mp3'}",
            soundfont=soundfont,
            stem_dir=Path(workdir) / folder,
            config=config,
        )
        timings[label] = time.perf_counter() - started
        if feature.stems_reused != (label in ("preset", "stems_cached")):
            raise SystemExit(f"unexpected stem reuse in the {label} render")
    pool.shutdown()
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "full": full,
                "prepare": prepare,
                "remix": remix,
                "reused": result.stems_reused,
                "audio_s": result.duration_s,
                "voice_cost": timings["voice"] / timings["plain"],
                "dynamics_cost": timings["dynamics"] / timings["plain"],
                "preset_cost": timings["preset"] / remix,
                "stems_cost": timings["stems"] / timings["plain"],
                "stems_cached_cost": timings["stems_cached"] / timings["plain"],
                "split_cost": timings["split"] / timings["plain"],
                "arranged_cost": timings["arranged"] / timings["plain"],
                "rss_mb": max(self_rss, workers_rss),
            }
        )
    )


def outputs_child(midi_path: str, soundfont: str, workdir: str, threads: str, rounds: str) -> None:
    """Runs in a child process: plain MP3, stems ZIP and split layout of one variant, ``rounds`` times
    in alternating order with fresh stems each time, then the ZIP from cached stems; prints the
    fastest time of each (and the ZIP's synthesis time) as JSON."""
    from tracks.engine import (
        EngineConfig,
        VariantSettings,
        load_arrangement,
        pool,
        prepare_stems,
        render_variant,
    )

    config = EngineConfig(threads=int(threads) or None, slot_dir=Path(workdir) / "slots")
    arrangement = load_arrangement(Path(midi_path).read_bytes())
    plain = VariantSettings(transpose=TRANSPOSE, tempo=TEMPO)
    variants = {
        "plain": (plain, ".mp3"),
        "zip": (replace(plain, format="stems"), ".zip"),
        "split": (replace(plain, layout="split", click=True), ".mp3"),
    }
    runs = 0

    def timed(label: str, folder: str) -> tuple[float, float, float]:
        """(seconds, seconds until the render reported 0.8, audio seconds) of ``variants[label]``."""
        nonlocal runs
        runs += 1
        variant, suffix = variants[label]
        synthesized = [0.0]
        started = time.perf_counter()

        def progress(fraction: float) -> None:
            if fraction >= 0.8 and not synthesized[0]:
                synthesized[0] = time.perf_counter() - started

        result = render_variant(
            arrangement,
            variant,
            out_path=Path(workdir) / f"{label}-{runs}{suffix}",
            soundfont=soundfont,
            stem_dir=Path(workdir) / folder,
            progress=progress,
            config=config,
        )
        elapsed = time.perf_counter() - started
        if result.stems_reused != (folder == "cached"):
            raise SystemExit(f"unexpected stem reuse in the {label} render")
        (Path(workdir) / f"{label}-{runs}{suffix}").unlink()
        return elapsed, synthesized[0], result.duration_s

    audio_s = timed("plain", "warm-up")[2]  # also loads the SoundFont, numpy and the encoder
    best: dict[str, float] = {}
    for number in range(max(1, int(rounds))):
        order = ["plain", "zip", "split"]
        for label in order if number % 2 == 0 else order[::-1]:
            elapsed, synthesized, _ = timed(label, f"fresh-{runs}")
            if elapsed < best.get(label, float("inf")):
                best[label] = elapsed
                if label == "zip":
                    best["zip_synthesis"] = synthesized
    prepare_stems(arrangement, plain, soundfont=soundfont, stem_dir=Path(workdir) / "cached", config=config)
    best["zip_cached"] = min(timed("zip", "cached")[0] for _ in range(max(1, int(rounds))))
    pool.shutdown()
    print(json.dumps({"audio_s": audio_s, **best}))


def outputs_table(args: argparse.Namespace) -> None:
    print(
        f"SoundFont {args.soundfont}; transform {TRANSPOSE:+d} semitones, {TEMPO}x; fastest of "
        f"{max(1, args.repeat)} alternating rounds, fresh stems"
    )
    header = (
        f"{'file':26} {'audio s':>8} {'plain s':>8} {'zip s':>7} {'synth s':>8} {'zip/plain':>9} "
        f"{'zip(cached)/plain':>17} {'split/plain':>11}"
    )
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory(prefix="backtrack-bench-") as scratch:
        root = Path(scratch)
        for name, path in material(root, args.only, args.midi_dir):
            workdir = root / f"outputs-{name}"
            workdir.mkdir()
            output = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--outputs-child",
                    str(path),
                    args.soundfont,
                    str(workdir),
                    str(args.threads),
                    str(max(1, args.repeat)),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            best = json.loads(output.strip().splitlines()[-1])
            plain = best["plain"]
            print(
                f"{name:26} {best['audio_s']:8.1f} {plain:8.2f} {best['zip']:7.2f} "
                f"{best['zip_synthesis']:8.2f} {best['zip'] / plain:9.2f} "
                f"{best['zip_cached'] / plain:17.2f} {best['split'] / plain:11.2f}",
                flush=True,
            )
            shutil.rmtree(workdir, ignore_errors=True)


def _reordered(arrangement: object) -> tuple[str, ...]:
    """Every section once, last first, as bar ranges: an arranged song as long as the song itself
    (jumps at every join), for ``arranged/plain``."""
    sections = arrangement.analysis["sections"]  # type: ignore[attr-defined]
    ranges = [f"{s['start_bar']}-{s['end_bar']}" for s in reversed(sections)]
    if len(ranges) > 64:
        bars = sections[-1]["end_bar"]
        step = -(-bars // 64)
        ranges = [f"{start}-{min(start + step - 1, bars)}" for start in range(1, bars + 1, step)][::-1]
    return tuple(ranges)


def baseline(midi_path: Path, soundfont: str, workdir: Path) -> float:
    """`fluidsynth -ni -T raw -F - SF2 FILE | ffmpeg ... out.mp3` on the equivalently transformed file."""
    from tracks.engine import load_arrangement
    from tracks.engine.transform import perform, to_midi_file

    arrangement = load_arrangement(midi_path.read_bytes())
    transformed = workdir / "transformed.mid"
    to_midi_file(arrangement, perform(arrangement, transpose=TRANSPOSE, tempo=TEMPO)).save(transformed)
    command = (
        f"fluidsynth -ni -T raw -F - {soundfont} {transformed} 2>/dev/null | "
        f"ffmpeg -loglevel error -y -f s16le -ar 44100 -ac 2 -i - -b:a 192k {workdir / 'baseline.mp3'}"
    )
    started = time.perf_counter()
    subprocess.run(command, shell=True, check=True)  # noqa: S602 - fixed command, our own paths
    return time.perf_counter() - started


def material(workdir: Path, only: str | None, midi_dir: Path) -> list[tuple[str, Path]]:
    from tracks.demo import compose_song

    files = [(path.name, path) for path in sorted(midi_dir.glob("*.mid"))]
    for minutes in (3, 10):
        path = workdir / f"generated_{minutes}min.mid"
        path.write_bytes(compose_song(style="pop", minutes=minutes, parts=8, seed=minutes))
        files.append((path.name, path))
    return [(name, path) for name, path in files if only is None or only in name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--soundfont", default="/usr/share/sounds/sf2/TimGM6mb.sf2")
    parser.add_argument("--only", default=None, help="run only files whose name contains this")
    parser.add_argument("--repeat", type=int, default=1, help="runs per file; the fastest of each is shown")
    parser.add_argument(
        "--midi-dir", type=Path, default=MIDI_DIR, help="folder of .mid files (default: tests/data/midi)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="render threads of the engine (default: the machine's cores, <= 4)",
    )
    parser.add_argument(
        "--outputs", action="store_true", help="stems ZIP and split layout against the plain MP3 only"
    )
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--outputs-child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        engine_child(*args.child)
        return
    if args.outputs_child:
        outputs_child(*args.outputs_child)
        return
    if args.outputs:
        if args.repeat == 1 and "--repeat" not in sys.argv:
            args.repeat = 3
        outputs_table(args)
        return
    print(f"SoundFont {args.soundfont}; transform {TRANSPOSE:+d} semitones, {TEMPO}x; MP3 192 kbps")
    header = (
        f"{'file':26} {'audio s':>8} {'render s':>9} {'baseline s':>11} {'ratio':>6} "
        f"{'stems s':>8} {'remix s':>8} {'remix/base':>10} {'peak RSS MB':>12} {'voice/plain':>11} "
        f"{'dynamics/plain':>14} "
        f"{'preset/remix':>12} {'zip/plain':>9} {'zip(cached)/plain':>17} {'split/plain':>11} "
        f"{'arranged/plain':>14}"
    )
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory(prefix="backtrack-bench-") as scratch:
        root = Path(scratch)
        for name, path in material(root, args.only, args.midi_dir):
            runs = []
            for attempt in range(max(1, args.repeat)):
                workdir = root / f"work-{name}-{attempt}"
                workdir.mkdir()
                base = baseline(path, args.soundfont, workdir)
                output = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--child",
                        str(path),
                        args.soundfont,
                        str(workdir),
                        str(args.threads),
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                runs.append({"base": base, **json.loads(output.strip().splitlines()[-1])})
            best = {key: min(run[key] for run in runs) for key in ("base", "full", "prepare", "remix")}
            base, rss = best["base"], max(run["rss_mb"] for run in runs)
            print(
                f"{name:26} {runs[0]['audio_s']:8.1f} {best['full']:9.2f} {base:11.2f} "
                f"{best['full'] / base:6.2f} {best['prepare']:8.2f} {best['remix']:8.2f} "
                f"{best['remix'] / base:10.2f} {rss:12.0f} {min(run['voice_cost'] for run in runs):11.2f} "
                f"{min(run['dynamics_cost'] for run in runs):14.2f} "
                f"{min(run['preset_cost'] for run in runs):12.2f} "
                f"{min(run['stems_cost'] for run in runs):9.2f} "
                f"{min(run['stems_cached_cost'] for run in runs):17.2f} "
                f"{min(run['split_cost'] for run in runs):11.2f} "
                f"{min(run['arranged_cost'] for run in runs):14.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
