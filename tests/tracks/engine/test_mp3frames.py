"""MPEG-1 Layer III frame handling used to splice segments encoded in parallel."""

import random
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tracks.engine import mp3frames
from tracks.engine.mp3frames import Mp3FormatError

RATE = 44100


def _encode(path: Path, samples: np.ndarray, *options: str) -> None:
    subprocess.run(
        [
            *("ffmpeg", "-loglevel", "error", "-f", "f32le", "-ar", str(RATE), "-ac", "2", "-i", "pipe:0"),
            *("-c:a", "libmp3lame", "-b:a", "192k", "-id3v2_version", "0", *options, "-y", str(path)),
        ],
        input=samples.astype("<f4").tobytes(),
        check=True,
    )


def _signal(seconds: float) -> np.ndarray:
    """A tone with clicks: the clicks make LAME switch to short windows now and then."""
    t = np.arange(int(seconds * RATE)) / RATE
    tone = 0.3 * np.sin(2 * np.pi * 330 * t)
    tone[:: RATE // 3] += 0.6
    return np.stack([tone, np.roll(tone, 50)], axis=1).astype(np.float32)


def test_crc16_is_crc16_arc() -> None:
    # The standard check value of CRC-16/ARC, the CRC the LAME tag uses.
    assert mp3frames.crc16(b"123456789") == 0xBB3D


def test_crc_of_a_concatenation_follows_from_the_parts_both_ways() -> None:
    rng = random.Random(7)
    for _ in range(20):
        head = rng.randbytes(rng.randrange(0, 300))
        tail = rng.randbytes(rng.randrange(0, 3000))
        whole = mp3frames.crc16(head + tail)
        assert mp3frames.crc16_extend(mp3frames.crc16(head), len(tail)) ^ mp3frames.crc16(tail) == whole
        assert mp3frames.crc16_retract(whole ^ mp3frames.crc16(tail), len(tail)) == mp3frames.crc16(head)


def test_header_parsing_gives_frame_length_and_refuses_other_streams() -> None:
    header = mp3frames.parse_header(bytes([0xFF, 0xFB, 0xB0, 0x00]))  # 192 kbps, 44.1 kHz, no padding
    assert (header.bitrate_kbps, header.sample_rate, header.channels, header.length) == (192, 44100, 2, 626)
    assert mp3frames.parse_header(bytes([0xFF, 0xFB, 0xB2, 0xC0])).length == 627  # padded, mono
    with pytest.raises(Mp3FormatError):
        mp3frames.parse_header(b"ID3\x04")
    with pytest.raises(Mp3FormatError):
        mp3frames.parse_header(bytes([0xFF, 0xF3, 0xB0, 0x00]))  # MPEG-2: not what LAME writes here


def test_frames_and_window_types_of_an_ffmpeg_stream(tmp_path: Path) -> None:
    path = tmp_path / "clicks.mp3"
    _encode(path, _signal(3.0))

    segment = mp3frames.read_segment(path, first_frame=0)

    # Every frame is found, the Info frame first, and the stream ends exactly after the last one.
    assert segment.offsets[-1] == path.stat().st_size
    assert segment.audio_frames == -(-(3 * RATE + mp3frames.ENCODER_DELAY) // 1152)
    with path.open("rb") as handle:
        types = {mp3frames.last_window_types(handle, offset) for offset in segment.offsets[1:-1]}
        # The music CRC ffmpeg wrote is the CRC of the audio frames.
        handle.seek(segment.offsets[1])
        assert mp3frames.crc16(handle.read()) == segment.music_crc
    assert (0, 0) in types
    assert any(2 in pair for pair in types), "the clicks should give short windows somewhere"


def test_a_cut_short_stream_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cut.mp3"
    _encode(path, _signal(1.0))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(Mp3FormatError, match="cut short"):
        mp3frames.read_segment(path, first_frame=0)


def test_a_stream_without_info_frame_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bare.mp3"
    _encode(path, _signal(1.0), "-write_xing", "0")
    with pytest.raises(Mp3FormatError, match="Info frame"):
        mp3frames.read_segment(path, first_frame=0)


@pytest.mark.parametrize("channels", [1, 2])
def test_splicing_one_whole_segment_reproduces_ffmpegs_own_tag(tmp_path: Path, channels: int) -> None:
    # Given a stream ffmpeg wrote with its LAME tag
    source = tmp_path / "whole.mp3"
    samples = _signal(2.5)[:, :channels]
    subprocess.run(
        [
            *("ffmpeg", "-loglevel", "error", "-f", "f32le", "-ar", str(RATE), "-ac", str(channels)),
            *("-i", "pipe:0", "-c:a", "libmp3lame", "-b:a", "192k", "-id3v2_version", "0", "-y", str(source)),
        ],
        input=samples.astype("<f4").tobytes(),
        check=True,
    )
    segment = mp3frames.read_segment(source, first_frame=0)

    # When it is "spliced" from that one segment
    out = tmp_path / "spliced.mp3"
    with out.open("wb") as handle:
        mp3frames.splice([segment], [0, segment.audio_frames], handle, total_samples=samples.shape[0])

    # Then the audio is byte for byte the same and the tag says what ffmpeg's says, with a valid CRC
    original, spliced = source.read_bytes(), out.read_bytes()
    start = mp3frames.info_offset(original)
    assert start is not None
    assert spliced[len(original[: segment.offsets[1]]) :] == original[segment.offsets[1] :]
    for field in (slice(8, 16), slice(141, 144), slice(148, 154)):  # counts, delay/padding, length, CRC
        assert (
            spliced[start + field.start : start + field.stop]
            == original[start + field.start : start + field.stop]
        )
    info = bytearray(spliced[: segment.offsets[1]])
    stored = int.from_bytes(info[start + 154 : start + 156], "big")
    info[start + 154 : start + 156] = b"\0\0"
    assert stored == mp3frames.crc16(bytes(info[:190]))
