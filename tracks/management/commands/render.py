"""``manage.py render FILE -o OUT [...]``: render one variant to MP3 or WAV (no database)."""

import argparse
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tracks.engine import (
    EngineError,
    VariantSettings,
    format_for_path,
    load_arrangement,
    render_variant,
    transpose_key,
)
from tracks.engine_config import engine_config

from ._engine_cli import default_soundfont, fail, sound_soundfont


def _gain(text: str) -> tuple[int, float]:
    index, separator, value = text.partition("=")
    try:
        if not separator:
            raise ValueError
        return int(index), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"gain must look like PART=DB (e.g. 2=-6), not {text!r}") from None


class Command(BaseCommand):
    help = "Render a Standard MIDI File to a mastered .mp3 or .wav in another key, tempo or mix."
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="path to a .mid file")
        parser.add_argument("-o", "--output", required=True, help="output: .mp3 .wav .flac .zip (stems) .mid")
        parser.add_argument("--transpose", type=int, default=0, help="semitones, -12..12")
        parser.add_argument("--tempo", type=float, default=1.0, help="tempo ratio, 0.5..1.5")
        parser.add_argument("--mute", type=int, nargs="+", default=[], metavar="I", help="parts to mute")
        parser.add_argument("--solo", type=int, nargs="+", default=[], metavar="I", help="parts to solo")
        parser.add_argument("--gain", type=_gain, nargs="+", default=[], metavar="I=DB", help="part gains")
        parser.add_argument("--click", action="store_true", help="add a click track")
        parser.add_argument("--count-in", type=int, default=0, metavar="BARS", help="count-in bars, 0..4")
        parser.add_argument("--soundfont", default=None, help="SoundFont (.sf2) to render with")
        parser.add_argument("--sound", default="", metavar="SLUG", help="installed sound set, e.g. fluidr3")
        parser.add_argument("--preset", default="", metavar="NAME", help="full, unplugged, groove, ambient")
        parser.add_argument(
            "--space-for-voice", type=float, default=0.0, metavar="DB", help="dB 0..12 cut in the voice band"
        )
        parser.add_argument(
            "--layout", default="stereo", help="stereo, or split: click left, the band in mono right"
        )
        parser.add_argument("--cues", action="store_true", help="spoken count-in and section names")
        parser.add_argument(
            "--dynamics",
            default="",
            metavar="LEVELS",
            help='section levels in dB (-12..+6), e.g. "Verse=-4,Chorus=2", or "build"',
        )
        parser.add_argument(
            "--arrangement",
            default="",
            metavar="ITEMS",
            help='sections and bar ranges in order, e.g. "Intro,Chorus x2,17-24,Outro"',
        )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)

        def one_line_error(message: str) -> None:
            fail(message)

        parser.error = one_line_error  # type: ignore[method-assign]
        return parser

    def handle(self, *args: Any, **options: Any) -> None:
        out = Path(options["output"])
        soundfont = options["soundfont"] or sound_soundfont(options["sound"]) or default_soundfont()
        try:
            output_format = format_for_path(out)
            if not Path(soundfont).is_file():
                fail(f"SoundFont not found: {soundfont}")
            arrangement = load_arrangement(options["file"])
            mix: dict[int, dict[str, Any]] = {}
            for index in options["mute"]:
                mix.setdefault(index, {})["mute"] = True
            for index in options["solo"]:
                mix.setdefault(index, {})["solo"] = True
            for index, gain_db in options["gain"]:
                mix.setdefault(index, {})["gain_db"] = gain_db
            settings = VariantSettings.from_dict(
                {
                    "transpose": options["transpose"],
                    "tempo": options["tempo"],
                    "mix": {str(index): values for index, values in mix.items()},
                    "click": options["click"],
                    "count_in": options["count_in"],
                    "format": output_format,
                    "layout": options["layout"],
                    "cues": options["cues"],
                    "sound": options["sound"],
                    "preset": options["preset"],
                    "space_for_voice": options["space_for_voice"],
                    "arrangement": [item for item in options["arrangement"].split(",") if item.strip()],
                    "dynamics": options["dynamics"],
                }
            )
            settings.validate(len(arrangement.parts))
            analysis = arrangement.analysis
            tags = {
                "title": Path(options["file"]).stem,
                "key": transpose_key(analysis["key"], settings.transpose),
                "bpm": str(round(analysis["tempo_bpm"] * settings.tempo)),
            }
            result = render_variant(
                arrangement,
                settings,
                out_path=out,
                soundfont=soundfont,
                tags=tags,
                config=engine_config(),
            )
        except EngineError as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"could not write {out}: {exc.strerror or exc}")
        for warning in result.warnings:
            self.stderr.write(f"warning: {warning}")
        self.stdout.write(
            f"{out} {result.duration_s:.1f} s, {result.key}, {result.tempo_bpm:g} bpm, "
            f"{result.lufs:.1f} LUFS, {result.true_peak_dbtp:.1f} dBTP"
        )
        if result.dynamics:
            self.stdout.write(result.dynamics["summary"])
