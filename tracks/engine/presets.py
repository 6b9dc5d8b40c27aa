"""Stage presets: a mix derived from what each part plays, for the stage a performer is on.

``full`` is the arrangement as written; ``unplugged`` keeps acoustic instruments only (drums and
electric or synthetic parts out); ``groove`` brings drums and bass forward; ``ambient`` brings pads,
strings and choirs forward with the drums out. The melody part (the guide) is never touched by a
preset: muting it is the performer's own choice. Explicit ``mix`` entries override the preset part by
part, and a preset never silences a song: when its rule would leave no part with notes audible, the
pitched parts it muted come back (or every part, for a drums-only file).

Works on analysis-shaped parts (``index``, ``program``, ``is_drum``, ``role``, ``notes``), so the web
side can show the effective mix of a render without loading the MIDI file.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from .settings import PRESETS, PartMix, VariantSettings

__all__ = ["PRESETS", "effective_mix", "mix_to_dict", "preset_mix"]

MUTE = None  # a preset rule's "out"

# GM programs of instruments played without amplification (pianos, harpsichord, tuned percussion,
# acoustic organs and accordions, nylon and steel guitars, acoustic bass, orchestral strings, harp,
# timpani, ensembles, choir, brass, reeds, pipes, ethnic instruments, acoustic percussion).
_ACOUSTIC = frozenset(
    [
        *(0, 1, 3, 6, *range(8, 16), 19, 20, 21, 22, 23, 24, 25, 32, *range(40, 50), 52, 53),
        *(*range(56, 62), *range(64, 80), *range(104, 118)),
    ]
)
_PAD_LIKE = frozenset(["pad", "strings", "fx"])
_CHOIR = frozenset([52, 53, 54])


def _family(part: Mapping[str, Any]) -> str:
    """The part's family by its program (the analysis ``role`` says "lead" for the melody instead)."""
    if part.get("is_drum"):
        return "drums"
    program = int(part.get("program", 0)) & 0x7F
    if program in _CHOIR:
        return "pad"
    families = (
        "keys", "keys", "keys", "guitar", "bass", "strings", "strings", "brass",
        "reed", "pipe", "synth", "pad", "fx", "other", "percussion", "fx",
    )  # fmt: skip
    return families[program // 8]


def _rule(preset: str, part: Mapping[str, Any]) -> float | None:
    """Gain in dB for ``part`` under ``preset``, or MUTE."""
    family = _family(part)
    program = int(part.get("program", 0)) & 0x7F
    if preset == "unplugged":
        if family == "drums" or part.get("is_drum") or program not in _ACOUSTIC:
            return MUTE
        return 0.0
    if preset == "groove":
        if family in ("drums", "bass"):
            return 3.0
        if family == "percussion":
            return 0.0
        return -6.0 if family in _PAD_LIKE else -4.0
    if preset == "ambient":
        if family in ("drums", "percussion"):
            return MUTE
        if family in _PAD_LIKE:
            return 3.0
        return -6.0 if family == "bass" else -3.0
    return 0.0


def preset_mix(
    parts: Sequence[Mapping[str, Any]], preset: str, melody_part: int | None = None
) -> dict[int, PartMix]:
    """The mix ``preset`` gives ``parts`` (default entries left out); {} for "" and "full"."""
    if not preset or preset == "full":
        return {}
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}")
    gains: dict[int, float | None] = {}
    for part in parts:
        index = int(part["index"])
        is_melody = index == melody_part or (melody_part is None and part.get("role") == "lead")
        gains[index] = 0.0 if is_melody else _rule(preset, part)
    sounding = [int(part["index"]) for part in parts if int(part.get("notes", 1)) > 0]
    if sounding and all(gains[index] is MUTE for index in sounding):
        pitched = [int(part["index"]) for part in parts if not part.get("is_drum")]
        for index in [i for i in pitched if i in sounding] or sounding:
            gains[index] = 0.0
    mix = {
        index: PartMix(mute=True) if gain is MUTE else PartMix(gain_db=gain) for index, gain in gains.items()
    }
    return {index: part for index, part in mix.items() if not part.is_default}


def effective_mix(
    parts: Sequence[Mapping[str, Any]], settings: VariantSettings, melody_part: int | None = None
) -> dict[int, PartMix]:
    """The preset's mix with the explicit ``settings.mix`` entries laid over it, part by part."""
    mix = preset_mix(parts, settings.preset, melody_part)
    mix.update(settings.mix)
    return {index: mix[index] for index in sorted(mix) if not mix[index].is_default}


def mix_to_dict(mix: Mapping[int, PartMix]) -> dict[str, dict[str, Any]]:
    """API shape: {"<part index>": {gain_db, mute, solo}}."""
    return {
        str(index): {"gain_db": round(part.gain_db, 2), "mute": part.mute, "solo": part.solo}
        for index, part in sorted(mix.items())
    }
