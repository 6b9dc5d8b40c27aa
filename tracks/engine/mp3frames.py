"""MPEG-1 Layer III frames: just enough of the format to splice separately encoded segments.

LAME is single-threaded, and on a render it is the slowest step after synthesis, so a long song is
encoded as a few overlapping segments at once, one LAME per core, and the frames are spliced into one
stream. That is exact enough to be inaudible when three things hold, which the encoder arranges:

- the segments are encoded without the bit reservoir, so no frame borrows bytes from the one before;
- every segment starts on the frame grid of the whole song (a multiple of 1152 samples) with a few
  frames of warm-up before the splice, so its frames line up with, and converge to, the ones a single
  encode would have made (measured: the decoded audio around a splice is as close to the source as
  anywhere else, and the first frames after it are the very frames one encoder makes);
- the splice happens where both encodes chose the same window shape for the last granule before it,
  so the decoder's overlap-add sees a legal window sequence.

The first frame of the result is the LAME "Info" frame of the first segment, patched for the whole
stream: frame and byte counts, seek table, end padding for gapless playback, and both CRCs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

SAMPLES_PER_FRAME = 1152
ENCODER_DELAY = 576  # what LAME (and ffmpeg's LAME tag) records as the start padding
_BITRATES_KBPS = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0)
_SAMPLE_RATES = (44100, 48000, 32000, 0)  # by the header's sample-rate index
MPEG1_SAMPLE_RATES = frozenset(_SAMPLE_RATES[:3])
_SIDE_INFO_BYTES = {1: 17, 2: 32}

# Offsets inside the Info/Xing tag, as ffmpeg's mp3 muxer lays it out (flags = frames|bytes|toc|quality,
# then the LAME extension).
_INFO_FLAGS = 0x0F
_INFO_FRAMES, _INFO_BYTES, _INFO_TOC = 8, 12, 16
_TOC_SIZE = 100
_LAME_DELAY_PADDING = 141
_LAME_MUSIC_LENGTH, _LAME_MUSIC_CRC, _LAME_TAG_CRC = 148, 152, 154
_INFO_TAG_END = 156
_TAG_CRC_SPAN = 190  # the tag CRC covers the frame's first 190 bytes, as ffmpeg computes it


class Mp3FormatError(ValueError):
    """The bytes are not the MP3 stream this module expects."""


@dataclass(frozen=True)
class FrameHeader:
    bitrate_kbps: int
    sample_rate: int
    padded: bool
    crc_protected: bool
    channels: int

    @property
    def length(self) -> int:
        return 144_000 * self.bitrate_kbps // self.sample_rate + int(self.padded)

    @property
    def side_info_offset(self) -> int:
        return 4 + (2 if self.crc_protected else 0)


def parse_header(data: bytes) -> FrameHeader:
    """The header in the first four bytes of ``data``; MPEG-1 Layer III only."""
    if len(data) < 4:
        raise Mp3FormatError("truncated frame header")
    word = int.from_bytes(data[:4], "big")
    version, layer = (word >> 19) & 3, (word >> 17) & 3
    bitrate = _BITRATES_KBPS[(word >> 12) & 15]
    sample_rate = _SAMPLE_RATES[(word >> 10) & 3]
    if word >> 21 != 0x7FF or version != 3 or layer != 1 or not bitrate or not sample_rate:
        raise Mp3FormatError(f"not an MPEG-1 Layer III frame header: {word:08x}")
    return FrameHeader(
        bitrate_kbps=bitrate,
        sample_rate=sample_rate,
        padded=bool((word >> 9) & 1),
        crc_protected=not (word >> 16) & 1,
        channels=1 if (word >> 6) & 3 == 3 else 2,
    )


def frame_offsets(path: str | Path) -> list[int]:
    """Byte offsets of every frame of a bare MP3 stream (no ID3), plus the end offset last."""
    offsets: list[int] = []
    with Path(path).open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        buffer, base, position = b"", 0, 0
        while position < size:
            if position + 4 > base + len(buffer):
                handle.seek(position)
                buffer, base = handle.read(1 << 20), position
            offsets.append(position)
            position += parse_header(buffer[position - base : position - base + 4]).length
    if position != size:
        raise Mp3FormatError(f"{Path(path).name}: the last frame is cut short")
    offsets.append(position)
    return offsets


def last_window_types(handle: BinaryIO, offset: int) -> tuple[int, ...]:
    """Block type (0 long, 1 start, 2 short, 3 stop) per channel of the second granule of a frame.

    The decoder overlaps that granule with the next frame's first one, so two streams can be spliced
    after frames whose last window types agree.
    """
    handle.seek(offset)
    data = handle.read(4 + 2 + 32)
    header = parse_header(data)
    side = int.from_bytes(data[header.side_info_offset : header.side_info_offset + 32], "big")
    bits = _SIDE_INFO_BYTES[header.channels] * 8
    side >>= 32 * 8 - bits  # the side info is left-aligned in what was read
    # main_data_begin (9 bits), private bits (5 mono, 3 stereo), scfsi (4 per channel)
    position = bits - (9 + (5 if header.channels == 1 else 3) + 4 * header.channels)
    types = []
    for granule in range(2):
        for _channel in range(header.channels):
            granule_bits = (side >> (position - 59)) & ((1 << 59) - 1)
            position -= 59
            window_switching = (granule_bits >> (59 - 34)) & 1  # after 12+9+8+4 bits
            block_type = (granule_bits >> (59 - 36)) & 3 if window_switching else 0
            if granule == 1:
                types.append(block_type)
    return tuple(types)


def info_offset(frame: bytes) -> int | None:
    """Where the "Info"/"Xing" tag starts inside a first frame, or None for an audio frame."""
    header = parse_header(frame)
    start = header.side_info_offset + _SIDE_INFO_BYTES[header.channels]
    return start if frame[start : start + 4] in (b"Info", b"Xing") else None


# CRC-16/ARC (polynomial 0x8005, reflected, init 0): what the LAME tag uses for both of its CRCs.
def _make_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _make_table()
_CRC_HIGH_BYTE = {value >> 8: index for index, value in enumerate(_CRC_TABLE)}


def crc16(data: bytes, crc: int = 0) -> int:
    """CRC-16/ARC of ``data`` continuing from ``crc`` (pure Python: for small spans)."""
    table = _CRC_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


class _Gf2Map:
    """A linear map on 16-bit CRC registers, stored as the images of the 16 unit vectors."""

    def __init__(self, images: Sequence[int]) -> None:
        self.images = list(images)

    def __call__(self, value: int) -> int:
        result = 0
        for bit, image in enumerate(self.images):
            if value >> bit & 1:
                result ^= image
        return result

    def then(self, other: _Gf2Map) -> _Gf2Map:
        return _Gf2Map([other(image) for image in self.images])

    def power(self, exponent: int) -> _Gf2Map:
        result = _Gf2Map([1 << bit for bit in range(16)])
        square = self
        while exponent:
            if exponent & 1:
                result = result.then(square)
            square = square.then(square)
            exponent >>= 1
        return result


def _zero_byte(crc: int) -> int:
    return (crc >> 8) ^ _CRC_TABLE[crc & 0xFF]


def _undo_zero_byte(crc: int) -> int:
    # The table's high bytes are all different, so the byte that was shifted out can be recovered.
    low = _CRC_HIGH_BYTE[crc >> 8]
    return ((crc ^ _CRC_TABLE[low]) << 8 | low) & 0xFFFF


_APPEND_ZERO = _Gf2Map([_zero_byte(1 << bit) for bit in range(16)])
_REMOVE_ZERO = _Gf2Map([_undo_zero_byte(1 << bit) for bit in range(16)])


def crc16_extend(crc: int, length: int) -> int:
    """CRC of ``A + B`` is ``crc16_extend(crc16(A), len(B)) ^ crc16(B)`` (CRC-16/ARC is linear)."""
    return _APPEND_ZERO.power(length)(crc)


def crc16_retract(crc: int, length: int) -> int:
    """The inverse of :func:`crc16_extend`."""
    return _REMOVE_ZERO.power(length)(crc)


@dataclass(frozen=True)
class SegmentFile:
    """One encoded segment: its file, frame offsets (Info frame first, end last) and music CRC."""

    path: Path
    offsets: list[int]
    music_crc: int
    first_frame: int  # the song's frame number of this segment's first audio frame

    @property
    def audio_frames(self) -> int:
        return len(self.offsets) - 2

    def frame_offset(self, song_frame: int) -> int:
        """Byte offset of the song's frame ``song_frame`` (or the end offset one past the last)."""
        return self.offsets[1 + song_frame - self.first_frame]


def read_segment(path: str | Path, *, first_frame: int) -> SegmentFile:
    """Scan a segment written by ffmpeg with its Info frame; raises Mp3FormatError."""
    offsets = frame_offsets(path)
    if len(offsets) < 3:
        raise Mp3FormatError(f"{Path(path).name} holds no audio frames")
    with Path(path).open("rb") as handle:
        info = handle.read(offsets[1])
    start = info_offset(info)
    if start is None or len(info) < start + _INFO_TAG_END:
        raise Mp3FormatError(f"{Path(path).name} does not start with a LAME Info frame")
    if int.from_bytes(info[start + 4 : start + 8], "big") != _INFO_FLAGS:
        raise Mp3FormatError(f"{Path(path).name}: unexpected Info tag layout")
    music_crc = int.from_bytes(info[start + _LAME_MUSIC_CRC : start + _LAME_MUSIC_CRC + 2], "big")
    return SegmentFile(path=Path(path), offsets=offsets, music_crc=music_crc, first_frame=first_frame)


def splice_frame(earlier: SegmentFile, later: SegmentFile, nominal: int, search: int) -> int:
    """The song frame at which ``later`` takes over from ``earlier``: the first of ``nominal`` ..
    ``nominal + search - 1`` after which both chose the same windows (``nominal`` when none does).
    """
    with earlier.path.open("rb") as first, later.path.open("rb") as second:
        for frame in range(nominal, nominal + search):
            if last_window_types(first, earlier.frame_offset(frame - 1)) == last_window_types(
                second, later.frame_offset(frame - 1)
            ):
                return frame
    return nominal


def _range_crc(segment: SegmentFile, start: int, stop: int) -> int:
    """CRC of the bytes ``start`` .. ``stop`` of the segment's audio, from its music CRC.

    Only the bytes outside the range (the warm-up and overlap frames, a few kilobytes) are read.
    """
    audio_start, audio_end = segment.offsets[1], segment.offsets[-1]
    with segment.path.open("rb") as handle:
        handle.seek(audio_start)
        before = handle.read(start - audio_start)
        handle.seek(stop)
        after = handle.read(audio_end - stop)
    # music = before + kept + after, so kept's CRC follows from the whole one by linearity.
    head_and_kept = crc16_retract(segment.music_crc ^ crc16(after), len(after))
    return head_and_kept ^ crc16_extend(crc16(before), stop - start)


def splice(
    segments: Sequence[SegmentFile], cuts: Sequence[int], out: BinaryIO, *, total_samples: int
) -> None:
    """Write the spliced stream to ``out``: segment ``i`` supplies the song's frames cuts[i] .. cuts[i+1].

    ``cuts`` has one entry per segment plus the end (the last segment's frame count); the result
    starts with the first segment's Info frame, patched for the whole stream.
    """
    ranges = [
        (segment.frame_offset(cuts[index]), segment.frame_offset(cuts[index + 1]))
        for index, segment in enumerate(segments)
    ]
    with segments[0].path.open("rb") as handle:
        info = bytearray(handle.read(segments[0].offsets[1]))
    frames = cuts[-1] - cuts[0]
    audio_bytes = sum(stop - start for start, stop in ranges)
    music_crc = 0
    for segment, (start, stop) in zip(segments, ranges, strict=True):
        music_crc = crc16_extend(music_crc, stop - start) ^ _range_crc(segment, start, stop)

    tag = info_offset(bytes(info))
    assert tag is not None  # read_segment checked it
    total_bytes = len(info) + audio_bytes
    info[tag + _INFO_FRAMES : tag + _INFO_FRAMES + 4] = frames.to_bytes(4, "big")
    info[tag + _INFO_BYTES : tag + _INFO_BYTES + 4] = total_bytes.to_bytes(4, "big")
    info[tag + _INFO_TOC : tag + _INFO_TOC + _TOC_SIZE] = _seek_table(segments, cuts, ranges, len(info))
    padding = max(0, frames * SAMPLES_PER_FRAME - total_samples - ENCODER_DELAY)
    delay_padding = (min(ENCODER_DELAY, 4095) << 12) | min(padding, 4095)
    info[tag + _LAME_DELAY_PADDING : tag + _LAME_DELAY_PADDING + 3] = delay_padding.to_bytes(3, "big")
    info[tag + _LAME_MUSIC_LENGTH : tag + _LAME_MUSIC_LENGTH + 4] = total_bytes.to_bytes(4, "big")
    info[tag + _LAME_MUSIC_CRC : tag + _LAME_MUSIC_CRC + 2] = music_crc.to_bytes(2, "big")
    # As ffmpeg does it: the first 190 bytes of the frame, with the CRC field itself still zero
    # (for stereo the field starts at byte 190; for mono it lies inside the span).
    info[tag + _LAME_TAG_CRC : tag + _LAME_TAG_CRC + 2] = b"\0\0"
    tag_crc = crc16(bytes(info[:_TAG_CRC_SPAN]))
    info[tag + _LAME_TAG_CRC : tag + _LAME_TAG_CRC + 2] = tag_crc.to_bytes(2, "big")

    out.write(info)
    for segment, (start, stop) in zip(segments, ranges, strict=True):
        with segment.path.open("rb") as handle:
            handle.seek(start)
            remaining = stop - start
            while remaining:
                chunk = handle.read(min(remaining, 1 << 20))
                if not chunk:
                    raise Mp3FormatError(f"{segment.path.name} ended early")
                out.write(chunk)
                remaining -= len(chunk)


def _seek_table(
    segments: Sequence[SegmentFile], cuts: Sequence[int], ranges: Sequence[tuple[int, int]], info_bytes: int
) -> bytes:
    """Xing TOC: for each percent of the duration, the byte position as a fraction of 256."""
    frames = cuts[-1] - cuts[0]
    total = info_bytes + sum(stop - start for start, stop in ranges)
    table = bytearray(_TOC_SIZE)
    written_before = [info_bytes]
    for start, stop in ranges[:-1]:
        written_before.append(written_before[-1] + stop - start)
    index = 0
    for percent in range(1, _TOC_SIZE):
        frame = cuts[0] + percent * frames // _TOC_SIZE
        while frame >= cuts[index + 1]:
            index += 1
        segment = segments[index]
        position = written_before[index] + segment.frame_offset(frame) - ranges[index][0]
        table[percent] = min(255, 256 * position // total)
    return bytes(table)
