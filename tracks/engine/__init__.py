"""Backtrack's render engine: MIDI in, mastered audio out. Pure Python, no Django.

The public surface (see the engine contract) is re-exported here so callers import from
``tracks.engine`` only and the modules behind it can change.
"""

from .analyse import analyse, melody_analysis
from .arrange import ArrangedTimeline, arranged_song, arranged_timeline, check_arrangement
from .arrangement import Arrangement, Part
from .config import EngineConfig
from .encode import write_audio
from .errors import EngineError, InvalidArrangement, InvalidSettings, RenderFailed
from .keys import suggest_keys
from .master import integrated_loudness, true_peak_dbtp
from .notes import key_name, note_name, note_number, transpose_key
from .outputs import CONTENT_TYPES, FORMAT_SUFFIXES, format_for_path
from .render import PartMix, RenderResult, VariantSettings, prepare_stems, render_variant
from .timeline import Timeline
from .validate import load_arrangement

__all__ = [
    "CONTENT_TYPES",
    "FORMAT_SUFFIXES",
    "ArrangedTimeline",
    "Arrangement",
    "EngineConfig",
    "EngineError",
    "InvalidArrangement",
    "InvalidSettings",
    "Part",
    "PartMix",
    "RenderFailed",
    "RenderResult",
    "Timeline",
    "VariantSettings",
    "analyse",
    "arranged_song",
    "arranged_timeline",
    "check_arrangement",
    "format_for_path",
    "integrated_loudness",
    "key_name",
    "load_arrangement",
    "melody_analysis",
    "note_name",
    "note_number",
    "prepare_stems",
    "render_variant",
    "suggest_keys",
    "transpose_key",
    "true_peak_dbtp",
    "write_audio",
]
