"""Variant settings: what a performer asks for, validated and reduced to a canonical hashable form.

Identical settings on the same revision must render once, so the canonical form (and its hash) is
defined here, next to the rules that make settings valid; ``stem_key`` hashes only what changes the
synthesized stems, which is what lets a mix change reuse them.
"""

import hashlib
import json
import math
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from .arrange import parse_arrangement
from .dynamics import parse_dynamics
from .errors import InvalidSettings

TRANSPOSE_RANGE = (-12, 12)
TEMPO_RANGE = (0.5, 1.5)
COUNT_IN_RANGE = (0, 4)
GAIN_RANGE = (-60.0, 12.0)
PRESETS = ("full", "unplugged", "groove", "ambient")
SPACE_FOR_VOICE_RANGE = (0.0, 12.0)
_SOUND_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_SETTING_KEYS = {"transpose", "tempo", "mix", "click", "count_in", "sound", "preset", "space_for_voice"} | {
    "voice_range",
    "format",
    "layout",
    "cues",
}
FORMATS = ("mp3", "wav", "flac", "stems", "midi")
LAYOUTS = ("stereo", "split")
_SETTING_KEYS |= {"arrangement"}  # sections and bar ranges in any order (see .arrange)
_SETTING_KEYS |= {"dynamics"}  # section levels or "build" (see .dynamics)
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
    sound: str = ""  # a sound set's slug; "" = the caller's default sound
    preset: str = ""  # one of PRESETS; "" = the mix as given
    space_for_voice: float = 0.0  # dB cut in the voice's band while the melody sings; 0 = off
    voice_range: tuple[int, int] | None = None  # the singer's (low, high) MIDI notes, for that band
    format: str = "mp3"  # one of FORMATS: what the render delivers
    layout: str = "stereo"  # one of LAYOUTS; "split": click and cues left, the band in mono right
    cues: bool = False  # spoken count-in and section names (espeak-ng)
    arrangement: tuple[str, ...] = ()  # items like "Chorus x2", "17-24" (see .arrange); () = as written
    dynamics: dict[str, float] | str = ""  # {"Verse": -4, ...} dB or "build" (see .dynamics); "" = as written

    def __hash__(self) -> int:
        return hash(self.cache_key())

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, sounds: Collection[str] | None = None) -> "VariantSettings":
        """Build from API-shaped data (mix keys may be strings like "3"); raises InvalidSettings.

        ``sounds``: the slugs of the installed sound sets, when the caller knows them (``sound`` must
        then be one of them).
        """
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
        sound = data.get("sound") or ""
        preset = data.get("preset") or ""
        space = data.get("space_for_voice") or 0.0
        if not isinstance(sound, str):
            raise InvalidSettings("sound must be the slug of a sound set")
        if sounds is not None and sound and sound not in sounds:
            choices = ", ".join(sorted(sounds))
            raise InvalidSettings(f"sound {sound!r} is not installed; choose one of {choices}")
        if not isinstance(preset, str):
            raise InvalidSettings(f"preset must be one of {', '.join(PRESETS)}")
        if not _is_number(space):
            raise InvalidSettings("space_for_voice must be a number of dB")
        voice_range = data.get("voice_range") or None
        if voice_range is not None:
            if not isinstance(voice_range, list | tuple) or len(voice_range) != 2:
                raise InvalidSettings("voice_range must be [low, high] MIDI note numbers")
            voice_range = (voice_range[0], voice_range[1])
        settings = cls(
            transpose=transpose,
            tempo=float(tempo),
            mix=mix,
            click=click,
            count_in=count_in,
            sound=sound,
            preset=preset,
            space_for_voice=float(space),
            voice_range=voice_range,
            format=data.get("format", "mp3"),
            layout=data.get("layout", "stereo"),
            cues=data.get("cues", False),
            arrangement=tuple(spec.text for spec in parse_arrangement(data.get("arrangement"))),
            dynamics=parse_dynamics(data.get("dynamics")),
        )
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
        if self.sound and not (isinstance(self.sound, str) and _SOUND_SLUG.fullmatch(self.sound)):
            raise InvalidSettings("sound must be the slug of a sound set")
        if self.preset and self.preset not in PRESETS:
            raise InvalidSettings(f"preset must be one of {', '.join(PRESETS)}")
        low_v, high_v = SPACE_FOR_VOICE_RANGE
        if not _is_number(self.space_for_voice) or not low_v <= self.space_for_voice <= high_v:
            raise InvalidSettings(f"space_for_voice must be between {low_v:g} and {high_v:g} dB")
        if self.voice_range is not None and not (
            len(self.voice_range) == 2
            and all(_is_int(note) and 0 <= note <= 127 for note in self.voice_range)
            and self.voice_range[0] < self.voice_range[1]
        ):
            raise InvalidSettings("voice_range must be [low, high] MIDI note numbers, low below high")
        if not isinstance(self.format, str) or self.format not in FORMATS:
            raise InvalidSettings(f"format must be one of {', '.join(FORMATS)}")
        if not isinstance(self.layout, str) or self.layout not in LAYOUTS:
            raise InvalidSettings(f"layout must be one of {', '.join(LAYOUTS)}")
        if not isinstance(self.cues, bool):
            raise InvalidSettings("cues must be true or false")
        parse_arrangement(list(self.arrangement))
        parse_dynamics(self.dynamics)
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
            sound=self.sound,
            preset=self.preset,
            space_for_voice=round(float(self.space_for_voice), 1),
            # The singer's range only matters to the space for the voice.
            voice_range=(
                (self.voice_range[0], self.voice_range[1])
                if self.voice_range and self.space_for_voice
                else None
            ),
            format=self.format,
            layout=self.layout,
            cues=self.cues,
            arrangement=tuple(spec.text for spec in parse_arrangement(list(self.arrangement))),
            dynamics=parse_dynamics(self.dynamics),
        )

    def to_dict(self) -> dict[str, Any]:
        settings = self.normalised()
        return (
            {
                "transpose": settings.transpose,
                "tempo": settings.tempo,
                "mix": {
                    str(index): {"gain_db": part.gain_db, "mute": part.mute, "solo": part.solo}
                    for index, part in settings.mix.items()
                },
                "click": settings.click,
                "count_in": settings.count_in,
                **settings._output_dict(),
            }
            | settings._sound_dict()
            | settings._arrangement_dict()
            | settings._dynamics_dict()
        )

    def _dynamics_dict(self) -> dict[str, Any]:
        """The dynamics when set (left out otherwise, so older settings keep their hash)."""
        return {"dynamics": self.dynamics} if self.dynamics else {}

    def _arrangement_dict(self) -> dict[str, Any]:
        """The arrangement when there is one (left out otherwise, so older settings keep their hash)."""
        return {"arrangement": list(self.arrangement)} if self.arrangement else {}

    def _sound_dict(self) -> dict[str, Any]:
        """The sound settings that are set (left out when unset, so older settings keep their hash)."""
        sound: dict[str, Any] = {}
        if self.sound:
            sound["sound"] = self.sound
        if self.preset:
            sound["preset"] = self.preset
        if self.space_for_voice:
            sound["space_for_voice"] = self.space_for_voice
        if self.voice_range:
            sound["voice_range"] = list(self.voice_range)
        return sound

    def _output_dict(self) -> dict[str, Any]:
        """The output settings that differ from the default MP3 in stereo (left out otherwise, so older
        settings keep their hash)."""
        output: dict[str, Any] = {}
        if self.format != "mp3":
            output["format"] = self.format
        if self.layout != "stereo":
            output["layout"] = self.layout
        if self.cues:
            output["cues"] = True
        return output

    def cache_key(self) -> str:
        return _digest(self.to_dict())

    def stem_key(self) -> str:
        settings = self.to_dict()
        # The sound set changes every stem; the preset and the space for the voice are mix-level.
        stems = {key: settings[key] for key in ("transpose", "tempo", "click", "count_in")}
        arranged = {"arrangement": settings["arrangement"]} if "arrangement" in settings else {}
        # Dynamics scale the notes' velocities, so the stems themselves differ.
        arranged |= {"dynamics": settings["dynamics"]} if "dynamics" in settings else {}
        return _digest(stems | ({"sound": self.sound} if self.sound else {}) | arranged)

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
