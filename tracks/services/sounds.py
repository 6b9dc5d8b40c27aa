"""Sound: the installed sound sets, a track's default sound, and what a render's sound settings mean.

A render names its sound set by slug (``sound``); one that names none takes its track's default
sound, else the site's (``SOUNDFONT_PATH``). Space for the voice uses the requesting performer's
vocal range when their profile has one; both are written into the normalised settings, so they are
part of the render's hash (a producer who changes the default sound gets new renders, not stale ones).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError

from performers.models import Profile
from tracks.engine import VariantSettings
from tracks.engine.presets import effective_mix, mix_to_dict
from tracks.models import Render, Revision, Track


def sound_sets_list() -> list[dict[str, Any]]:
    """``[{slug, name, description, default}]`` for the installed sound sets, the default first."""
    default = django_settings.SOUND_DEFAULT
    sets = [
        {"slug": slug, "name": entry["name"], "description": entry["description"], "default": slug == default}
        for slug, entry in django_settings.SOUND_SETS.items()
    ]
    return sorted(sets, key=lambda entry: (not entry["default"], entry["slug"]))


def sound_slugs() -> set[str]:
    return set(django_settings.SOUND_SETS)


def sound_check(*, slug: str, field: str = "sound") -> str:
    """``slug`` when it names an installed sound set ("" allowed: the default); else ValidationError."""
    if slug and slug not in django_settings.SOUND_SETS:
        choices = ", ".join(sorted(django_settings.SOUND_SETS))
        raise ValidationError({field: [f"sound {slug!r} is not installed; choose one of {choices}"]})
    return slug


def sound_path(*, slug: str) -> str:
    """The SoundFont of sound set ``slug`` ("" = the site's default SoundFont)."""
    if not slug:
        return str(django_settings.SOUNDFONT_PATH)
    entry = django_settings.SOUND_SETS.get(slug)
    # A set removed from the configuration after the render was asked for: the default serves it.
    return str(entry["path"]) if entry is not None else str(django_settings.SOUNDFONT_PATH)


def sound_settings_apply(*, variant: VariantSettings, track: Track, user: Any) -> VariantSettings:
    """``variant`` with the track's default sound and the performer's vocal range filled in."""
    changes: dict[str, Any] = {}
    if not variant.sound and track.default_sound and track.default_sound in django_settings.SOUND_SETS:
        changes["sound"] = track.default_sound
    if variant.space_for_voice and variant.voice_range is None and user is not None and user.is_authenticated:
        profile = Profile.objects.filter(user=user).only("vocal_low", "vocal_high").first()
        low, high = (profile.vocal_low, profile.vocal_high) if profile is not None else (None, None)
        if low is not None and high is not None and low < high:
            changes["voice_range"] = (int(low), int(high))
    if not changes:
        return variant
    return VariantSettings.from_dict({**variant.to_dict(), **changes}).normalised()


def revision_effective_mix(*, revision: Revision, settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The mix a render of ``revision`` with ``settings`` plays: its preset with its own mix over it."""
    variant = VariantSettings.from_dict(settings)
    analysis = revision.analysis or {}
    return mix_to_dict(effective_mix(analysis.get("parts", []), variant, analysis.get("melody_part")))


def render_effective_mix(*, render: Render) -> dict[str, dict[str, Any]]:
    return revision_effective_mix(revision=render.revision, settings=render.settings)


def render_sound_details(*, render: Render, names: dict[int, str]) -> list[str]:
    """The render's sound settings in words (for the render list and player): set, preset, mix, space."""
    settings = render.settings or {}
    details = []
    sound = str(settings.get("sound") or "")
    if sound:
        details.append("sound: " + django_settings.SOUND_SETS.get(sound, {}).get("name", sound))
    if settings.get("preset"):
        mix = render_effective_mix(render=render)
        words = [
            f"{names.get(int(i), f'Part {int(i) + 1}')} "
            + ("out" if entry["mute"] else f"{entry['gain_db']:+g} dB")
            for i, entry in mix.items()
        ]
        details.append(f"{settings['preset']} preset" + (": " + ", ".join(words) if words else ""))
    if settings.get("space_for_voice"):
        details.append(f"space for the voice {float(settings['space_for_voice']):g} dB")
    return details
