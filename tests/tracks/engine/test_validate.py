"""Every unusable or hostile file is refused quickly, cheaply and with a reason a producer understands."""

import os
import subprocess
import sys
import time

import pytest

from tracks.engine import InvalidArrangement, load_arrangement
from tracks.engine import validate as validate_module

from .conftest import MIDI_DIR, REPO_ROOT, midi_bytes


def header(*, fmt: int = 1, tracks: int = 1, division: int = 96) -> bytes:
    return (
        b"MThd"
        + (6).to_bytes(4, "big")
        + fmt.to_bytes(2, "big")
        + tracks.to_bytes(2, "big")
        + division.to_bytes(2, "big")
    )


def chunk(body: bytes) -> bytes:
    return b"MTrk" + len(body).to_bytes(4, "big") + body


END = b"\x00\xff\x2f\x00"
ONE_NOTE = b"\x00\x90\x3c\x64\x60\x80\x3c\x00"


def long_tempo_file() -> bytes:
    # 16 KB of notes, each a 4-byte delta apart at the slowest tempo: hours of music from a tiny file.
    body = b"\x00\xff\x51\x03\xff\xff\xff"
    body += b"\x8f\xff\xff\x7f\x90\x3c\x64\x00\x80\x3c\x00" * 1400
    return header() + chunk(body + END)


def pitch_bend_megabyte() -> bytes:
    """The most work a file under the cap can ask for: as many events as are allowed, all parsed."""
    body = b"\x00\x90\x3c\x64\x00\xe0\x00\x40" + b"\x00\x01\x40" * 249_000
    return header() + chunk(body + END)


BAD_FILES = {
    "empty file": (b"", "empty"),
    "text file": (b"title,artist\nHey Jude,The Beatles\n" * 20, "not a MIDI file"),
    "random bytes": (os.urandom(4096).replace(b"MThd", b"xxxx"), "not a MIDI file"),
    "huge delta time": (header() + chunk(b"\xff\xff\xff\xff\xff\xff\x7f\x90\x3c\x64" + END), "delta time"),
    "truncated chunk": (header() + b"MTrk" + (5000).to_bytes(4, "big") + ONE_NOTE, "truncated"),
    "65 tracks": (header(tracks=65) + chunk(ONE_NOTE + END) * 65, "65 tracks"),
    "65 track chunks": (header(tracks=1) + chunk(ONE_NOTE + END) * 65, "more than 64 tracks"),
    "SMPTE division": (header(division=0xE728) + chunk(ONE_NOTE + END), "SMPTE"),
    "zero ticks per beat": (header(division=0) + chunk(ONE_NOTE + END), "0 ticks per beat"),
    "zero notes": (header() + chunk(b"\x00\xff\x03\x04Solo" + END), "no notes"),
    "hours through a long tempo": (long_tempo_file(), "the limit is 20 minutes"),
    "absurd tempo": (
        header() + chunk(b"\x00\xff\x51\x03\x00\x00\x10" + ONE_NOTE + END),
        "microseconds per beat",
    ),
    "status byte missing": (header() + chunk(b"\x00\x3c\x64" + END), "without a status byte"),
    "data byte above 127": (header() + chunk(b"\x00\x90\x3c\xe4" + END), "data byte"),
    "type 2": (header(fmt=2) + chunk(ONE_NOTE + END), "type 2"),
    "too many notes": (
        header() + chunk(b"\x00\x90\x3c\x64" + b"\x00\x3c\x64" * 50_001 + END),
        "50,000 notes",
    ),
    "over 1 MB": (header() + chunk(ONE_NOTE + END) + b"\x00" * 1_000_000, "the limit is 1.0 MB"),
}


@pytest.mark.parametrize("case", list(BAD_FILES), ids=list(BAD_FILES))
def test_bad_file_is_refused_quickly_with_its_reason(case: str) -> None:
    # Given a file that cannot be used
    data, reason = BAD_FILES[case]
    # When it is loaded
    started = time.perf_counter()
    with pytest.raises(InvalidArrangement) as refused:
        load_arrangement(data)
    # Then it is refused with a reason a producer understands, in well under a second
    assert reason in str(refused.value)
    assert time.perf_counter() - started < 1.0


def test_a_refused_path_names_the_reason_too(tmp_path) -> None:
    # Given a text file saved with a .mid name
    path = tmp_path / "song.mid"
    path.write_text("not music")
    # When / Then
    with pytest.raises(InvalidArrangement, match="no MThd header"):
        load_arrangement(path)


def test_a_one_megabyte_hostile_file_costs_under_a_second_and_100_mb() -> None:
    # Given the most expensive kind of file under the cap: a megabyte of pitch-bend events
    script = (
        "import resource, sys, time\n"
        "from tests.tracks.engine.test_validate import pitch_bend_megabyte\n"
        "from tracks.engine import load_arrangement\n"
        "data = pitch_bend_megabyte()\n"
        "assert len(data) <= 1_000_000, len(data)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "started = time.perf_counter()\n"
        "parts = len(load_arrangement(data).parts)\n"
        "elapsed = time.perf_counter() - started\n"
        "grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024\n"
        "print(elapsed, grown, parts)\n"
    )
    # When it is loaded in a fresh process
    output = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout
    seconds, megabytes, parts = map(float, output.split())
    # Then it is accepted in under a second, using well under 100 MB beyond the loaded engine itself
    assert parts == 1
    assert seconds < 1.0
    assert megabytes < 100


@pytest.mark.parametrize("name", sorted(path.name for path in MIDI_DIR.glob("*.mid")))
def test_real_world_files_are_accepted(name: str) -> None:
    # Given / When
    arrangement = load_arrangement(MIDI_DIR / name)
    # Then
    assert arrangement.parts
    assert arrangement.analysis["duration_s"] > 10


def test_a_small_generated_file_is_accepted() -> None:
    arrangement = load_arrangement(midi_bytes([(0, 1, 60)]))
    assert arrangement.analysis["parts"][0]["notes"] == 1


def every_channel_of_every_track(tracks: int) -> bytes:
    """``tracks`` tracks, each playing one short note on each of the 16 channels: 16 parts a track."""
    body = b"".join(bytes([0, 0x90 | channel, 60, 100]) for channel in range(16))
    body += b"".join(bytes([0x10 if channel == 0 else 0, 0x80 | channel, 60, 0]) for channel in range(16))
    return header(tracks=tracks) + chunk(body + END) * tracks


def test_a_small_file_with_a_thousand_parts_is_refused_before_it_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a 9 KB file of 64 tracks that each play on all 16 channels: 1024 parts
    data = every_channel_of_every_track(64)
    assert len(data) < 10_000

    def build_arrangement(*_args: object) -> None:
        raise AssertionError("the arrangement was built")

    monkeypatch.setattr(validate_module, "build_arrangement", build_arrangement)
    # When it is loaded
    # Then it is refused with the count and the limit, before any arrangement is built
    with pytest.raises(InvalidArrangement, match=r"^the file has 1024 parts; at most 64 are supported$"):
        load_arrangement(data)


def test_a_file_with_exactly_64_parts_is_accepted() -> None:
    # Given four tracks that each play on all 16 channels
    # When it is loaded
    arrangement = load_arrangement(every_channel_of_every_track(4))
    # Then every part is there
    assert len(arrangement.parts) == 64
