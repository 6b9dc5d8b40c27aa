"""How the engine is set up on this machine, passed in by the caller instead of read from the environment.

The engine is a library: the Django side builds one :class:`EngineConfig` from its settings, a
command-line tool or benchmark from its flags, and a test from whatever it needs, so no two callers
in one process can disagree through a shared environment variable. Omitted fields get defaults
computed from the machine.
"""

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidSettings

MAX_THREADS = 16
DEFAULT_THREADS_CAP = 4  # measured: a fifth synth gains nothing on the workers we run on
DEFAULT_MAX_SCRATCH_BYTES = 8_000_000_000  # 8 GB: a 20-minute song at half tempo as 4 stems and more


@dataclass(frozen=True)
class EngineConfig:
    """The machine-level knobs of rendering.

    - ``threads``: synths one render may run at once, which is also the number of MP3 segments
      encoded at once; None = the machine's cores, at most four. 1 makes every render serial (the
      most renders per minute on a machine whose workers are always busy).
    - ``slot_dir``: folder of the per-core lock files through which renders on one machine share its
      cores; None = ``backtrack-render-slots`` in the system's temporary folder.
    - ``ffmpeg``, ``ffprobe``: the executables (a name looked up on PATH, or a path).
    - ``max_scratch_bytes``: the most float32 stem data one render or stem build may write to disk;
      None = no limit.
    """

    threads: int | None = None
    slot_dir: Path | None = None
    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"
    max_scratch_bytes: int | None = DEFAULT_MAX_SCRATCH_BYTES

    def __post_init__(self) -> None:
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1
        ):
            raise InvalidSettings(f"threads must be a whole number of at least 1, got {self.threads!r}")
        if self.max_scratch_bytes is not None and self.max_scratch_bytes < 1:
            raise InvalidSettings(f"max_scratch_bytes must be positive, got {self.max_scratch_bytes!r}")
        if not self.ffmpeg or not self.ffprobe:
            raise InvalidSettings("the ffmpeg and ffprobe executables must be named")

    @property
    def render_threads(self) -> int:
        """How many synths one render may run at once (``threads``, or the machine's cores up to 4)."""
        if self.threads is not None:
            return min(self.threads, MAX_THREADS)
        return max(1, min(DEFAULT_THREADS_CAP, os.cpu_count() or 1))

    @property
    def render_slot_dir(self) -> Path:
        """``slot_dir``, or the shared default every render on this machine finds without being told."""
        if self.slot_dir is not None:
            return Path(self.slot_dir)
        return Path(tempfile.gettempdir()) / "backtrack-render-slots"


DEFAULT_CONFIG = EngineConfig()
