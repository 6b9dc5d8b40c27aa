"""Load an uploaded MIDI file, refusing anything unsafe or unusable with a reason.

Order matters: cheap checks on the raw bytes come first (size, magic, the byte-level walk in
``smf``), then bounds on the parsed events (parts, tempo) before the arrangement is built, then the
duration, so that no file of up to ``max_bytes`` can make the engine spend more than a fraction of a
second or a few MB on it, or make a render synthesize more stems than a worker can hold.
"""

import os
from pathlib import Path

import numpy as np

from .analyse import analyse
from .arrangement import Arrangement, build_arrangement
from .errors import InvalidArrangement
from .smf import RawMidi, read_smf

MAX_DURATION_S = 20 * 60
MIN_TEMPO_US = 1000  # 60,000 bpm: faster than this is a damaged or hostile file
# Every part becomes a stem of its own when stems are prepared: 64 tracks x 16 channels would make
# 1024 of them from a 9 KB file. Real arrangements have a few dozen parts at most.
MAX_PARTS = 64


def _size_text(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 100_000 else f"{size / 1000:.0f} KB"


def load_arrangement(
    source: bytes | str | os.PathLike[str], *, max_bytes: int = 1_000_000, lead_trim_bars: int | None = None
) -> Arrangement:
    """Validate and load a Standard MIDI File; raises InvalidArrangement with a plain reason.

    ``lead_trim_bars``: for a stored revision, its analysis' ``lead_trim_bars`` (0 when missing) so
    the song keeps the bars and seconds it was analysed with; None (a new file) decides.
    """
    data = _read_source(source, max_bytes)
    if not data:
        raise InvalidArrangement("the file is empty")
    if len(data) > max_bytes:
        raise InvalidArrangement(f"file is {_size_text(len(data))}; the limit is {_size_text(max_bytes)}")
    try:
        raw = read_smf(data)
        if not 1 <= raw.ticks_per_beat <= 32767:
            raise InvalidArrangement(
                f"the file has {raw.ticks_per_beat} ticks per beat; 1 to 32767 are valid"
            )
        parts = _count_parts(raw)
        if parts > MAX_PARTS:
            raise InvalidArrangement(f"the file has {parts} parts; at most {MAX_PARTS} are supported")
        fastest = min((tempo for _, tempo in raw.tempos), default=500_000)
        if fastest < MIN_TEMPO_US:
            raise InvalidArrangement(
                f"the file sets a tempo of {fastest} microseconds per beat; the minimum is {MIN_TEMPO_US}"
            )
        arrangement = build_arrangement(data, raw, lead_trim_bars=lead_trim_bars)
        if arrangement.end_s > MAX_DURATION_S:
            raise InvalidArrangement(
                f"the music lasts {arrangement.end_s / 60:.0f} minutes; "
                f"the limit is {MAX_DURATION_S // 60} minutes"
            )
        arrangement.analysis = analyse(arrangement)
    except InvalidArrangement:
        raise
    except Exception as exc:  # a reader bug must still reach the producer as a reason, not a 500
        raise InvalidArrangement(f"the MIDI file cannot be read ({type(exc).__name__}: {exc})") from exc
    return arrangement


def _count_parts(raw: RawMidi) -> int:
    """How many parts ``build_arrangement`` will make: (track, channel) pairs that play a note."""
    status = raw.status
    note_on = (status < 0xF0) & ((status & 0xF0) == 0x90) & (raw.d2 > 0)
    pairs = raw.track[note_on].astype(np.int64) * 16 + (status[note_on] & 0x0F)
    return int(np.unique(pairs).size)


def _read_source(source: bytes | str | os.PathLike[str], max_bytes: int) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    path = Path(source)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise InvalidArrangement(f"file is {_size_text(size)}; the limit is {_size_text(max_bytes)}")
        with path.open("rb") as handle:
            return handle.read(max_bytes + 1)
    except OSError as exc:
        raise InvalidArrangement(f"the file cannot be read ({exc.strerror or exc})") from exc
