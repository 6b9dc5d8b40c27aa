"""``manage.py render`` with --sound, --preset and --space-for-voice, run as a user would run it."""

from pathlib import Path

import pytest

from tests.tracks.test_commands import MIDI_DIR, manage

SONG = str(MIDI_DIR / "folk_melody_chords.mid")


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        (["--sound", "grand"], "sound 'grand' is not installed"),
        (["--preset", "stadium"], "preset must be one of"),
        (["--space-for-voice", "13"], "space_for_voice must be between"),
    ],
)
def test_bad_sound_settings_fail_with_one_line_and_no_file(
    tmp_path: Path, flags: list[str], reason: str
) -> None:
    out = tmp_path / "out.mp3"
    result = manage("render", SONG, "-o", str(out), *flags)
    assert result.returncode != 0
    assert result.stderr.strip().startswith("error: ")
    assert reason in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_render_with_a_sound_set_a_preset_and_space_for_the_voice(tmp_path: Path) -> None:
    out = tmp_path / "out.wav"
    result = manage(
        "render",
        SONG,
        "-o",
        str(out),
        "--sound",
        "timgm6mb",
        "--preset",
        "unplugged",
        "--space-for-voice",
        "6",
    )
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 100_000
