"""Load an uploaded MIDI file, refusing anything unsafe or unusable with a reason.

Order matters: cheap checks on the raw bytes come first (size, magic, the byte-level walk in
``smf``), then bounds that need the parsed timing (tempo, duration), so that no file of up to
``max_bytes`` can make the engine spend more than a fraction of a second or a few MB on it.
"""

import os
from pathlib import Path

from .analyse import analyse
from .arrangement import Arrangement, build_arrangement
from .errors import InvalidArrangement
from .smf import read_smf

MAX_DURATION_S = 20 * 60
MIN_TEMPO_US = 1000  # 60,000 bpm: faster than this is a damaged or hostile file


def _size_text(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 100_000 else f"{size / 1000:.0f} KB"


def load_arrangement(source: bytes | str | os.PathLike[str], *, max_bytes: int = 1_000_000) -> Arrangement:
    """Validate and load a Standard MIDI File; raises InvalidArrangement with a plain reason."""
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
        fastest = min((tempo for _, tempo in raw.tempos), default=500_000)
        if fastest < MIN_TEMPO_US:
            raise InvalidArrangement(
                f"the file sets a tempo of {fastest} microseconds per beat; the minimum is {MIN_TEMPO_US}"
            )
        arrangement = build_arrangement(data, raw)
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
