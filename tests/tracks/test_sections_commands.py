"""``analyze`` prints bars and sections; ``render --arrangement`` plays sections in any order."""

import json
from pathlib import Path

import pytest

from tests.factories import song_bytes

from .test_commands import manage


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    path = tmp_path / "demo.mid"
    path.write_bytes(song_bytes(minutes=1.0))
    return path


def test_analyze_prints_bars_and_sections(demo: Path) -> None:
    result = manage("analyze", str(demo))
    assert result.returncode == 0, result.stderr
    analysis = json.loads(result.stdout)
    first = analysis["sections"][0]
    assert first == {
        "index": 0,
        "name": "Intro",
        "start_bar": 1,
        "end_bar": 4,
        "start_s": 0.0,
        "end_s": first["end_s"],
        "source": "markers",
    }
    assert analysis["sections"][-1]["end_bar"] == analysis["bars"]


def test_render_plays_the_arrangement(tmp_path: Path, demo: Path) -> None:
    out = tmp_path / "arranged.wav"
    result = manage("render", str(demo), "-o", str(out), "--arrangement", "Chorus 1 x2, intro,1-2")
    assert result.returncode == 0, result.stderr
    analysis = json.loads(manage("analyze", str(demo)).stdout)
    chorus = next(s for s in analysis["sections"] if s["name"] == "Chorus 1")
    bar_s = analysis["sections"][0]["end_s"] / 4
    expected = 2 * (chorus["end_s"] - chorus["start_s"]) + 4 * bar_s + 2 * bar_s
    seconds = float(result.stdout.split()[1])
    assert expected <= seconds <= expected + 4.0


@pytest.mark.parametrize(
    ("arrangement", "reason"),
    [
        ("Solo", "error: unknown section 'Solo'; this song's sections are: Intro, Verse 1, Chorus 1"),
        ("9-3", "error: bar range 9-3 is reversed"),
        ("1-500", "error: bar range 1-500 is outside the song"),
        ("Intro x9", "error: arrangement item 'Intro x9' repeats 9 times; repeats must be 1 to 8"),
    ],
)
def test_render_refuses_a_bad_arrangement_with_one_line_and_no_file(
    tmp_path: Path, demo: Path, arrangement: str, reason: str
) -> None:
    out = tmp_path / "out.mp3"
    result = manage("render", str(demo), "-o", str(out), "--arrangement", arrangement)
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(reason)
    assert not out.exists()
