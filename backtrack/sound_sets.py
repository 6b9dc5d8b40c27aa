"""The sound sets (General MIDI SoundFonts) a render may ask for by slug, read from the environment.

Plain Python (no Django): ``backtrack.settings`` builds ``SOUND_SETS`` with it at start-up, and
``tracks.checks`` fails ``manage.py check`` when a named set's file is missing, so a render never
discovers it.
"""

import re
from pathlib import Path

# Debian's packages: fluid-soundfont-gm, musescore-general-soundfont, timgm6mb-soundfont.
KNOWN: dict[str, dict[str, str]] = {
    "fluidr3": {
        "name": "FluidR3 GM",
        "description": "Frank Wen's FluidR3: full, natural acoustic instruments and drums (141 MB).",
        "path": "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    },
    "musescore": {
        "name": "MuseScore General",
        "description": "MuseScore's General MIDI set: detailed pianos, strings and brass (slow to load).",
        "path": "/usr/share/sounds/sf3/MuseScore_General_Full.sf3",
    },
    "timgm6mb": {
        "name": "TimGM6mb",
        "description": "Tim Brechbill's small set: light and quick, thinner tone (6 MB).",
        "path": "/usr/share/sounds/sf2/TimGM6mb.sf2",
    },
}
_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")


def parse(raw: str, *, default_path: str) -> dict[str, dict[str, str]]:
    """Sound sets from ``SOUND_SETS``: "" = the known sets that are installed; else a comma-separated
    list of known slugs or ``slug=/path/to/file.sf2`` entries (kept even when the file is missing, for
    the system check to report). The default SoundFont is always offered (as "default" when it is
    none of them). Raises ValueError on a malformed entry.
    """
    sets: dict[str, dict[str, str]] = {}
    if not raw.strip():
        sets = {slug: dict(entry) for slug, entry in KNOWN.items() if Path(entry["path"]).is_file()}
    else:
        for item in (part.strip() for part in raw.split(",")):
            if not item:
                continue
            slug, separator, path = (text.strip() for text in item.partition("="))
            if not _SLUG.fullmatch(slug):
                raise ValueError(f"{slug!r} is not a sound set slug (lowercase letters, digits, - and _)")
            if separator:
                known = KNOWN.get(slug, {"name": slug, "description": f"SoundFont {Path(path).name}"})
                sets[slug] = {**known, "path": path}
            elif slug in KNOWN:
                sets[slug] = dict(KNOWN[slug])
            else:
                raise ValueError(
                    f"{slug!r} is not a known sound set; give its file as {slug}=/path/to/file.sf2"
                )
    if default_slug(sets, default_path) is None:
        sets["default"] = {
            "name": "Default",
            "description": f"The site's default SoundFont ({Path(default_path).name}).",
            "path": default_path,
        }
    return sets


def default_slug(sets: dict[str, dict[str, str]], default_path: str) -> str | None:
    """The slug of the set whose file is ``default_path`` (the site's default sound)."""
    target = Path(default_path).resolve()
    for slug, entry in sets.items():
        if Path(entry["path"]).resolve() == target:
            return slug
    return None
