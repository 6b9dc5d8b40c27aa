"""The analyze and render management commands, run as a user would run them (no database)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MIDI_DIR = REPO_ROOT / "tests" / "data" / "midi"
TIMGM = "/usr/share/sounds/sf2/TimGM6mb.sf2"


def manage(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SOUNDFONT_PATH": TIMGM}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_analyze_prints_the_analysis_as_json() -> None:
    # When
    result = manage("analyze", str(MIDI_DIR / "folk_melody_chords.mid"))
    # Then
    assert result.returncode == 0, result.stderr
    analysis = json.loads(result.stdout)
    assert analysis["key"] == "G major"
    assert analysis["time_signature"] == "6/8"
    assert analysis["melody_part"] == 0
    assert {"index", "name", "program", "is_drum", "role", "notes", "low", "high"} <= set(
        analysis["parts"][0]
    )


def test_analyze_refuses_a_bad_file_with_one_error_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"hello")
    result = manage("analyze", str(bad))
    assert result.returncode != 0
    assert result.stderr.splitlines() == ["error: not a MIDI file (no MThd header)"]


def test_render_writes_a_transposed_slower_wav(tmp_path: Path) -> None:
    out = tmp_path / "jig.wav"
    result = manage(
        "render", str(MIDI_DIR / "folk_jig_melody.mid"), "-o", str(out),
        "--transpose", "2", "--tempo", "0.8", "--click", "--count-in", "1", "--gain", "0=-3",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 1_000_000
    assert "A major" in result.stdout


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--transpose", "13"], "error: transpose must be between -12 and 12"),
        (["--tempo", "3"], "error: tempo must be between 0.5 and 1.5"),
        (["--mute", "9"], "error: there is no part 9"),
        (["--gain", "loud"], "error: argument --gain"),
        (["--soundfont", "/nowhere.sf2"], "error: SoundFont not found"),
    ],
)
def test_render_refuses_bad_settings_with_one_line_and_no_file(
    tmp_path: Path, args: list[str], reason: str
) -> None:
    out = tmp_path / "out.mp3"
    result = manage("render", str(MIDI_DIR / "folk_jig_melody.mid"), "-o", str(out), *args)
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(reason)
    assert not out.exists()
    assert not [path for path in tmp_path.rglob("*") if "out.mp3" in path.name]


def test_render_refuses_a_bad_midi_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd" + b"\x00" * 10)
    out = tmp_path / "out.mp3"
    result = manage("render", str(bad), "-o", str(out))
    assert result.returncode != 0
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("error: ")
    assert not out.exists()
