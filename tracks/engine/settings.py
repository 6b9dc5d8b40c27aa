"""Variant settings: what a performer asks for, validated and reduced to a canonical hashable form.

Identical settings on the same revision must render once, so the canonical form (and its hash) is
defined here, next to the rules that make settings valid; ``stem_key`` hashes only what changes the
synthesized stems, which is what lets a mix change reuse them.
"""

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidSettings

TRANSPOSE_RANGE = (-12, 12)
TEMPO_RANGE = (0.5, 1.5)
COUNT_IN_RANGE = (0, 4)
GAIN_RANGE = (-60.0, 12.0)
_SETTING_KEYS = {"transpose", "tempo", "mix", "click", "count_in"}
_MIX_KEYS = {"gain_db", "mute", "solo"}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class PartMix:
    gain_db: float = 0.0
    mute: bool = False
    solo: bool = False

    @classmethod
    def from_dict(cls, data: object, index: object) -> "PartMix":
        if isinstance(data, PartMix):
            return data
        if not isinstance(data, dict):
            raise InvalidSettings(f"mix for part {index} must be an object with gain_db, mute, solo")
        unknown = set(data) - _MIX_KEYS
        if unknown:
            raise InvalidSettings(f"unknown mix setting {sorted(unknown)[0]!r} for part {index}")
        gain = data.get("gain_db", 0.0)
        mute = data.get("mute", False)
        solo = data.get("solo", False)
        if not _is_number(gain):
            raise InvalidSettings(f"gain_db for part {index} must be a number")
        if not isinstance(mute, bool) or not isinstance(solo, bool):
            raise InvalidSettings(f"mute and solo for part {index} must be true or false")
        return cls(gain_db=float(gain), mute=mute, solo=solo)

    @property
    def is_default(self) -> bool:
        return self.gain_db == 0.0 and not self.mute and not self.solo


@dataclass(frozen=True)
class VariantSettings:
    transpose: int = 0
    tempo: float = 1.0
    mix: dict[int, PartMix] = field(default_factory=dict)
    click: bool = False
    count_in: int = 0

    def __hash__(self) -> int:
        return hash(self.cache_key())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "VariantSettings":
        """Build from API-shaped data (mix keys may be strings like "3"); raises InvalidSettings."""
        if not isinstance(data, dict):
            raise InvalidSettings("settings must be an object")
        unknown = set(data) - _SETTING_KEYS
        if unknown:
            raise InvalidSettings(f"unknown setting {sorted(unknown)[0]!r}")
        transpose = data.get("transpose", 0)
        tempo = data.get("tempo", 1.0)
        click = data.get("click", False)
        count_in = data.get("count_in", 0)
        raw_mix = data.get("mix") or {}
        if not _is_int(transpose):
            raise InvalidSettings("transpose must be a whole number of semitones")
        if not _is_number(tempo):
            raise InvalidSettings("tempo must be a number (1.0 is the original tempo)")
        if not isinstance(click, bool):
            raise InvalidSettings("click must be true or false")
        if not _is_int(count_in):
            raise InvalidSettings("count_in must be a whole number of bars")
        if not isinstance(raw_mix, dict):
            raise InvalidSettings("mix must be an object keyed by part index")
        mix: dict[int, PartMix] = {}
        for key, value in raw_mix.items():
            try:
                index = int(key)
            except (TypeError, ValueError):
                raise InvalidSettings(f"mix key {key!r} is not a part index") from None
            if isinstance(key, bool) or (isinstance(key, str) and not key.strip().isdigit()) or index < 0:
                raise InvalidSettings(f"mix key {key!r} is not a part index")
            mix[index] = PartMix.from_dict(value, index)
        settings = cls(transpose=transpose, tempo=float(tempo), mix=mix, click=click, count_in=count_in)
        settings.validate()
        return settings

    def validate(self, part_count: int | None = None) -> None:
        low, high = TRANSPOSE_RANGE
        if not _is_int(self.transpose) or not low <= self.transpose <= high:
            raise InvalidSettings(f"transpose must be between {low} and {high}")
        low_t, high_t = TEMPO_RANGE
        if not _is_number(self.tempo) or not low_t <= self.tempo <= high_t:
            raise InvalidSettings(f"tempo must be between {low_t} and {high_t}")
        low_c, high_c = COUNT_IN_RANGE
        if not _is_int(self.count_in) or not low_c <= self.count_in <= high_c:
            raise InvalidSettings(f"count_in must be between {low_c} and {high_c} bars")
        if not isinstance(self.click, bool):
            raise InvalidSettings("click must be true or false")
        low_g, high_g = GAIN_RANGE
        for index, part in self.mix.items():
            if not _is_int(index) or index < 0:
                raise InvalidSettings(f"mix key {index!r} is not a part index")
            if not _is_number(part.gain_db) or not low_g <= part.gain_db <= high_g:
                raise InvalidSettings(f"gain_db for part {index} must be between {low_g:g} and {high_g:g} dB")
            if part_count is not None and index >= part_count:
                raise InvalidSettings(
                    f"there is no part {index}; this arrangement has parts 0 to {part_count - 1}"
                )

    def normalised(self) -> "VariantSettings":
        return VariantSettings(
            transpose=self.transpose,
            tempo=round(float(self.tempo), 3),
            mix={
                index: PartMix(round(part.gain_db, 2), part.mute, part.solo)
                for index, part in sorted(self.mix.items())
                if not PartMix(round(part.gain_db, 2), part.mute, part.solo).is_default
            },
            click=self.click,
            count_in=self.count_in,
        )

    def to_dict(self) -> dict[str, Any]:
        settings = self.normalised()
        return {
            "transpose": settings.transpose,
            "tempo": settings.tempo,
            "mix": {
                str(index): {"gain_db": part.gain_db, "mute": part.mute, "solo": part.solo}
                for index, part in settings.mix.items()
            },
            "click": settings.click,
            "count_in": settings.count_in,
        }

    def cache_key(self) -> str:
        return _digest(self.to_dict())

    def stem_key(self) -> str:
        settings = self.to_dict()
        return _digest({key: settings[key] for key in ("transpose", "tempo", "click", "count_in")})

    def part_gains(self, part_count: int) -> list[float]:
        """Linear gain per part after mute and solo (a soloed part silences the unsoloed ones)."""
        soloing = any(part.solo for part in self.mix.values())
        gains = []
        for index in range(part_count):
            part = self.mix.get(index, PartMix())
            audible = not part.mute and (part.solo or not soloing)
            gains.append(10 ** (part.gain_db / 20) if audible else 0.0)
        return gains


def _digest(data: dict[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
