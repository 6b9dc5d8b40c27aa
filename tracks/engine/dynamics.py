"""Dynamics per section: quieter verses, fuller choruses, played as players would and ramped by a beat.

A section asked for ``dB`` changes in two ways, so timbres change as well as levels:

- the players play softer or harder: every note starting in the section (drums too) has its velocity
  scaled, which on General MIDI sound sets darkens or brightens the instruments as well as changing
  their level. That share is half the change, at most ``MAX_VELOCITY_DB``;
- a gain envelope on the band (never the click or the spoken cues) makes up the rest, with one-beat
  ramps at section boundaries: a rise ends on the downbeat of the louder section, a fall starts on the
  downbeat of the quieter one, so the louder level always covers the bar line.

The velocity share is predicted from the SoundFont default velocity-to-attenuation curve (amplitude
~ (velocity / 127)^2, so 40 dB per decade of velocity), energy-weighted over the section's notes and
with clipping at 127, and the envelope makes up the difference; measured, each section lands within
a dB of the requested change (see tests/tracks/engine/test_dynamics.py).

``"build"`` chooses the levels from the sections: by their names (Verse, Chorus, Pre-chorus) when the
names say, else by repetition and density (the densest repeated section is the chorus, the sparsest
repeated one the verse), else by density alone (the densest quarter fuller, the sparsest quieter), and
a song of one repeated section builds from quiet to full over its repeats. Sections come from the
song's analysis (the producer's corrections when there are some); an arranged song's sections are
its items, so a section repeated by an arrangement gets its level at every occurrence.

:class:`DynamicsEnvelope` applies the gain chunk by chunk (``apply(block, start_frame)``), so a
streaming renderer can apply it as it goes.
"""

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .arrange import song_sections
from .errors import InvalidSettings
from .mix import StemMixer
from .transform import beat_grid, count_in_seconds

if TYPE_CHECKING:
    from .arrangement import Arrangement
    from .settings import VariantSettings

DYNAMICS_RANGE = (-12.0, 6.0)  # dB a section may be changed by
BUILD = "build"
MAX_NAMES = 64
MAX_NAME_LENGTH = 60
VELOCITY_SHARE = 0.5  # of a section's change, played by the musicians (the rest is gain)
MAX_VELOCITY_DB = 4.0  # beyond this, softer playing changes timbre more than a singer wants
VELOCITY_DB_PER_DECADE = 40.0  # SF2 default velocity-to-attenuation: amplitude ~ (v / 127) ** 2
BUILD_VERSE_DB = -4.0
BUILD_PRE_CHORUS_DB = -2.0
BUILD_CHORUS_DB = 2.0
_CHUNK_FRAMES = 110_250
_EARLY_S = 0.001  # sections' times are rounded to 1 ms: a note on the downbeat belongs to its section
_PRE_CHORUS = re.compile(r"\bpre[\s_-]*chorus|\blift\b|\bbuild[\s_-]*up\b")
_CHORUS = re.compile(r"chorus|refrain|\bhook\b|\bdrop\b")
_VERSE = re.compile(r"verse|strophe|couplet|stanza")
_EDGE = re.compile(r"^(intro|outro|start|end|ending|coda)\b")


def parse_dynamics(value: object) -> dict[str, float] | str:
    """Check and normalise a ``dynamics`` setting; raises InvalidSettings naming it.

    Accepts ``"build"``, ``{"<section name>": dB, ...}`` (dB -12..+6) or the CLI's text
    ``"Verse=-4,Chorus=2"``. Returns ``""`` (as written; also for None, ``""`` and ``{}``), ``"build"``
    or the levels rounded to 0.1 dB with names' whitespace collapsed (0 dB entries dropped).
    """
    if value is None:
        return ""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return ""
        if text.casefold() == BUILD:
            return BUILD
        if "=" not in text:
            raise InvalidSettings(
                'dynamics must be "build" or section levels like "Verse=-4,Chorus=2" (dB -12 to +6)'
            )
        levels: dict[str, object] = {}
        for item in (piece for piece in text.split(",") if piece.strip()):
            name, _, amount = item.rpartition("=")
            try:
                levels[name] = float(amount)
            except ValueError:
                raise InvalidSettings(f"dynamics for {name.strip()!r} must be a number of dB") from None
        value = levels
    if not isinstance(value, dict):
        raise InvalidSettings(
            'dynamics must be "build" or an object of section names and dB, like {"Verse": -4}'
        )
    if len(value) > MAX_NAMES:
        raise InvalidSettings(f"dynamics names {len(value)} sections; the limit is {MAX_NAMES}")
    low, high = DYNAMICS_RANGE
    result: dict[str, float] = {}
    seen: set[str] = set()
    for raw_name, amount in value.items():
        name = " ".join(raw_name.split()) if isinstance(raw_name, str) else ""
        if not name:
            raise InvalidSettings("dynamics names a section with an empty name")
        if len(name) > MAX_NAME_LENGTH:
            raise InvalidSettings(f"dynamics: the section name {name[:20]!r}... is too long")
        if name.casefold() in seen:
            raise InvalidSettings(f"dynamics names the section {name!r} twice")
        seen.add(name.casefold())
        if isinstance(amount, bool) or not isinstance(amount, int | float) or not math.isfinite(amount):
            raise InvalidSettings(f"dynamics for {name!r} must be a number of dB")
        if not low <= amount <= high:
            raise InvalidSettings(f"dynamics for {name!r} must be between {low:g} and +{high:g} dB")
        level = round(float(amount), 1)
        if level:
            result[name] = level
    return dict(sorted(result.items())) if result else ""


def dynamics_text(setting: dict[str, float] | str) -> str:
    """The setting as the CLI writes it (``"build"``, ``"Chorus=2,Verse=-4"``, ``""``)."""
    if isinstance(setting, str):
        return setting
    return ",".join(f"{name}={level:g}" for name, level in setting.items())


# --- the plan ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SectionLevel:
    """One section's change: ``gain_db`` asked for, split into velocity (predicted) and gain."""

    index: int
    name: str
    start_s: float  # in the (arranged) song at its original tempo, without count-in
    end_s: float
    gain_db: float  # the change asked for (or chosen by "build")
    velocity_factor: float  # note-on velocities are multiplied by this
    envelope_db: float  # the band's gain: gain_db less the velocity change's predicted effect


@dataclass(frozen=True)
class DynamicsPlan:
    levels: list[SectionLevel]
    method: str  # "sections" (asked by name) | "labels" | "repetition" | "density" | "progression" | "none"
    summary: str  # what was chosen, in words

    def velocity_spans(self) -> list[tuple[float, float, float]]:
        """(start_s, end_s, factor) for :func:`~tracks.engine.transform.perform` (song seconds)."""
        return [
            (lv.start_s - _EARLY_S, lv.end_s - _EARLY_S, lv.velocity_factor)
            for lv in self.levels
            if lv.velocity_factor != 1.0
        ]

    def to_dict(self) -> dict[str, Any]:
        """``{method, summary, sections: [{index, name, gain_db}]}``: what a render shows."""
        return {
            "method": self.method,
            "summary": self.summary,
            "sections": [{"index": lv.index, "name": lv.name, "gain_db": lv.gain_db} for lv in self.levels],
        }


def plan_dynamics(arrangement: "Arrangement", setting: dict[str, float] | str) -> DynamicsPlan | None:
    """The levels of every section of ``arrangement`` (already arranged) for ``setting``; None when
    the setting is as written. InvalidSettings when it names a section the song does not have."""
    setting = parse_dynamics(setting)
    if not setting:
        return None
    sections = [s for s in song_sections(arrangement) if float(s["end_s"]) > float(s["start_s"])]
    if isinstance(setting, dict):
        check_section_names(
            setting,
            [str(s["name"]) for s in sections]
            + [str(s["name"]) for s in arrangement.analysis.get("original_sections") or []],
        )
        wanted = {name.casefold(): level for name, level in setting.items()}
        targets = [wanted.get(str(s["name"]).casefold(), 0.0) for s in sections]
        method, reason = "sections", ""
    else:
        targets, method, reason = choose_build(sections, section_density(arrangement, sections))
    levels = [_level(arrangement, section, target) for section, target in zip(sections, targets, strict=True)]
    return DynamicsPlan(levels=levels, method=method, summary=_summary(levels, method, reason))


def check_section_names(setting: dict[str, float] | str, names: Sequence[str]) -> None:
    """InvalidSettings when section levels name a section that is not among ``names`` (the song's
    sections, and an arrangement's bar ranges like ``17-24``); case does not matter."""
    if not isinstance(setting, dict):
        return
    known = {name.casefold() for name in names}
    for name in setting:
        if name.casefold() not in known:
            listed = ", ".join(dict.fromkeys(names)) or "none"
            raise InvalidSettings(
                f"dynamics names an unknown section {name!r}; this song's sections are: {listed}"
            )


def levels_summary(setting: dict[str, float]) -> str:
    """Section levels in words, as a render shows them: ``dynamics: Chorus +2 dB, Verse -4 dB``."""
    return "dynamics: " + (
        ", ".join(f"{name} {level:+g} dB" for name, level in setting.items()) or "as written"
    )


def choose_build(
    sections: Sequence[dict[str, Any]], density: Sequence[float]
) -> tuple[list[float], str, str]:
    """``"build"``: (dB per section, method, why) from the sections' names, repeats and density."""
    names = [str(s["name"]) for s in sections]
    folded = [name.casefold() for name in names]
    levels = [0.0] * len(sections)
    roles = [_role(name) for name in folded]
    if any(role in ("verse", "chorus") for role in roles):
        table = {"verse": BUILD_VERSE_DB, "pre-chorus": BUILD_PRE_CHORUS_DB, "chorus": BUILD_CHORUS_DB}
        return [table.get(role, 0.0) for role in roles], "labels", "by their names"
    inner = [n for n, name in enumerate(folded) if not _EDGE.match(name)]
    by_name: dict[str, list[int]] = {}
    for n in inner:
        by_name.setdefault(folded[n], []).append(n)
    if not inner:
        return levels, "none", "no section but an intro or outro"

    def mean_density(indices: list[int]) -> float:
        return float(np.mean([density[n] for n in indices]))

    repeated = [name for name, indices in by_name.items() if len(indices) > 1]
    if len(by_name) == 1:
        # One section played again and again (a strophic song): build from quiet to full.
        indices = by_name[folded[inner[0]]]
        if len(indices) < 2:
            return levels, "none", "one section only"
        for step, n in enumerate(indices):
            levels[n] = round(
                BUILD_VERSE_DB + (BUILD_CHORUS_DB - BUILD_VERSE_DB) * step / (len(indices) - 1), 1
            )
        return levels, "progression", "one section repeated: from quiet to full over its repeats"
    if repeated:
        verse: str | None
        chorus: str | None
        ranked = sorted(repeated, key=lambda name: (mean_density(by_name[name]), -by_name[name][0]))
        if len(ranked) >= 2:
            verse, chorus = ranked[0], ranked[-1]
        else:
            others = [n for n in inner if folded[n] != ranked[0]]
            denser = mean_density(by_name[ranked[0]]) >= float(np.median([density[n] for n in others]))
            verse, chorus = (None, ranked[0]) if denser else (ranked[0], None)
        if (
            verse is not None
            and chorus is not None
            and mean_density(by_name[verse]) > 0.9 * mean_density(by_name[chorus])
        ):
            verse = None  # barely sparser than the chorus: not a verse worth quietening
        for n in inner:
            if folded[n] == chorus:
                levels[n] = BUILD_CHORUS_DB
            elif folded[n] == verse:
                levels[n] = BUILD_VERSE_DB
        return levels, "repetition", "by repetition and density"
    if len(inner) < 4:
        return levels, "none", "too few sections to tell verses from choruses"
    values = np.asarray([density[n] for n in inner])
    low, high = np.quantile(values, 0.25), np.quantile(values, 0.75)
    if high <= low * 1.1:
        return levels, "none", "every section is about as dense"
    for n, value in zip(inner, values.tolist(), strict=True):
        if value >= high:
            levels[n] = BUILD_CHORUS_DB
        elif value <= low:
            levels[n] = BUILD_VERSE_DB
    return levels, "density", "by density, as no section repeats"


def _role(name: str) -> str:
    if _PRE_CHORUS.search(name):
        return "pre-chorus"
    if _CHORUS.search(name):
        return "chorus"
    if _VERSE.search(name):
        return "verse"
    return ""


def section_density(arrangement: "Arrangement", sections: Sequence[dict[str, Any]]) -> list[float]:
    """How full each section sounds: velocity-weighted sounding notes per second (mean polyphony)."""
    notes = arrangement.notes
    weight = (notes.velocity.astype(np.float64) / 127.0) ** 2
    result = []
    for section in sections:
        start, end = float(section["start_s"]), float(section["end_s"])
        overlap = np.clip(np.minimum(notes.end, end) - np.maximum(notes.start, start), 0.0, None)
        result.append(float((overlap * weight).sum() / max(end - start, 1e-9)))
    return result


def _level(arrangement: "Arrangement", section: dict[str, Any], gain_db: float) -> SectionLevel:
    start, end = float(section["start_s"]), float(section["end_s"])
    velocity_db = max(-MAX_VELOCITY_DB, min(MAX_VELOCITY_DB, gain_db * VELOCITY_SHARE))
    factor = round(10 ** (velocity_db / VELOCITY_DB_PER_DECADE), 4)
    notes = arrangement.notes
    inside = (notes.start >= start - _EARLY_S) & (notes.start < end - _EARLY_S)
    predicted = 0.0
    if factor != 1.0 and inside.any():
        velocity = notes.velocity[inside].astype(np.float64)
        scaled = np.clip(np.rint(velocity * factor), 1, 127)
        # Energy-weighted: loud, long notes dominate what a loudness meter hears.
        weight = (notes.end[inside] - notes.start[inside] + 0.05) * (velocity / 127.0) ** 4
        ratio = (scaled / velocity) ** (VELOCITY_DB_PER_DECADE / 10)
        predicted = 10 * math.log10(float((weight * ratio).sum() / weight.sum()))
    return SectionLevel(
        index=int(section.get("index", 0)),
        name=str(section["name"]),
        start_s=start,
        end_s=end,
        gain_db=float(gain_db),
        velocity_factor=factor if predicted else 1.0,
        envelope_db=round(gain_db - predicted, 3),
    )


def _summary(levels: list[SectionLevel], method: str, reason: str) -> str:
    by_name: dict[str, list[float]] = {}
    for lv in levels:
        by_name.setdefault(lv.name, []).append(lv.gain_db)
    changed = []
    for name, values in by_name.items():
        if not any(values):
            continue
        if len(set(values)) == 1:
            changed.append(f"{name} {values[0]:+g} dB")
        else:
            changed.append(f"{name} " + "/".join(f"{value:+g}" for value in values) + " dB")
    if method == "sections":
        return levels_summary({lv.name: lv.gain_db for lv in levels if lv.gain_db})
    if not changed:
        return f"dynamics build: nothing to shape ({reason})"
    return f"dynamics build ({reason}): " + ", ".join(changed)


# --- the envelope --------------------------------------------------------------------------------


class DynamicsEnvelope:
    """The band's gain over the render, piecewise linear in dB between breakpoints (frames).

    ``apply(block, start_frame)`` multiplies a (frames, 2) float32 block that starts at
    ``start_frame`` of the render, so a streaming renderer can apply it chunk by chunk.
    """

    def __init__(self, frames: Sequence[int], levels_db: Sequence[float]) -> None:
        self.frames = np.asarray(frames, dtype=np.float64)
        self.levels_db = np.asarray(levels_db, dtype=np.float64)
        if self.frames.size == 0 or self.frames.size != self.levels_db.size:
            raise ValueError("an envelope needs as many levels as breakpoints, at least one")
        if np.any(np.diff(self.frames) < 0):
            raise ValueError("envelope breakpoints must not go back in time")

    def gain(self, start_frame: int, count: int) -> np.ndarray:
        """Linear gains (float32) of frames ``start_frame`` .. ``start_frame + count``."""
        positions = np.arange(start_frame, start_frame + count, dtype=np.float64)
        return (10 ** (np.interp(positions, self.frames, self.levels_db) / 20)).astype(np.float32)

    def apply(self, block: np.ndarray, start_frame: int) -> np.ndarray:
        """``block`` (frames, 2) float32 starting at ``start_frame``, with the envelope applied."""
        count = block.shape[0]
        if count == 0:
            return block
        end = start_frame + count - 1
        first = int(np.searchsorted(self.frames, start_frame, side="right"))
        last = int(np.searchsorted(self.frames, end, side="left"))
        level = float(np.interp(start_frame, self.frames, self.levels_db))
        if first == last and level == float(np.interp(end, self.frames, self.levels_db)):
            # No breakpoint inside and the same level at both ends: one gain for the whole block.
            return block if level == 0.0 else block * np.float32(10 ** (level / 20))
        return block * self.gain(start_frame, count)[:, None]


def build_envelope(
    arrangement: "Arrangement",
    plan: DynamicsPlan,
    *,
    tempo: float,
    count_in: int,
    sample_rate: int,
) -> DynamicsEnvelope:
    """The plan's gain envelope in render frames, ramped over one beat (at the local tempo, scaled by
    ``tempo``) at each change: a rise ends on the louder section's downbeat, a fall starts on the
    quieter section's downbeat."""
    offset = count_in_seconds(arrangement, count_in=count_in, tempo=tempo)
    levels = plan.levels
    points: list[tuple[float, float]] = [(0.0, levels[0].envelope_db if levels else 0.0)]
    for before, after in itertools.pairwise(levels):
        if before.envelope_db == after.envelope_db:
            continue
        boundary = (after.start_s / tempo + offset) * sample_rate
        beat = _beat_seconds(arrangement, after.start_s) / tempo * sample_rate
        beat = min(beat, (after.end_s - after.start_s) / tempo * sample_rate / 2)
        if after.envelope_db > before.envelope_db:
            ramp = (max(boundary - beat, points[-1][0]), boundary)
        else:
            ramp = (max(boundary, points[-1][0]), boundary + beat)
        points.append((ramp[0], before.envelope_db))
        points.append((ramp[1], after.envelope_db))
    frames, values = zip(*points, strict=True)
    return DynamicsEnvelope(frames, values)


def _beat_seconds(arrangement: "Arrangement", seconds: float) -> float:
    """One beat (the click's beat: a dotted quarter in compound meters) at ``seconds`` of the song."""
    tempo_map = arrangement.tempo_map
    index = max(0, int(np.searchsorted(tempo_map.seconds, seconds, side="right")) - 1)
    quarter_s = float(tempo_map.tempos[index]) / 1e6
    tick = int(
        tempo_map.ticks[index]
        + (seconds - tempo_map.seconds[index]) * 1e6 * tempo_map.ticks_per_beat / tempo_map.tempos[index]
    )
    meters = [(t, n, d) for t, n, d in arrangement.raw.time_signatures if n > 0 and t <= tick] or [(0, 4, 4)]
    _per_bar, quarters = beat_grid(meters[-1][1], meters[-1][2])
    return quarters * quarter_s


def dynamics_summary(arrangement: "Arrangement", settings: "VariantSettings") -> dict[str, Any]:
    """What a render of ``arrangement`` (already arranged) plays for ``settings.dynamics``: the
    :meth:`DynamicsPlan.to_dict` of its plan, or ``{}`` when its dynamics are as written."""
    plan = plan_dynamics(arrangement, settings.dynamics)
    return plan.to_dict() if plan is not None else {}


def dynamics_envelope(
    arrangement: "Arrangement", settings: "VariantSettings", *, sample_rate: int
) -> DynamicsEnvelope | None:
    """The band's gain envelope of a render of ``arrangement`` (already arranged) with ``settings``;
    None when its dynamics are as written."""
    plan = plan_dynamics(arrangement, settings.dynamics)
    if plan is None:
        return None
    return build_envelope(
        arrangement, plan, tempo=settings.tempo, count_in=settings.count_in, sample_rate=sample_rate
    )


def with_dynamics(
    envelope: DynamicsEnvelope,
    *,
    paths: Sequence[Path],
    gains: Sequence[float],
    unshaped: Sequence[Path],
    sum_path: Path | None,
    frames: int,
    scratch: Path,
) -> tuple[list[Path], list[float]]:
    """Mix inputs whose band follows ``envelope``: the band summed into one file, then ``unshaped``.

    ``unshaped`` are stems the envelope must leave alone (the click): taken out of the band where they
    are inputs themselves, or, when ``sum_path`` (a stem cache's unity sum of every stem) is an input
    instead, subtracted from the band and added back after it.
    """
    band_paths: list[Path] = []
    band_gains: list[float] = []
    kept_paths: list[Path] = []
    kept_gains: list[float] = []
    for path, gain in zip(paths, gains, strict=True):
        if path in unshaped:
            kept_paths.append(path)
            kept_gains.append(gain)
        else:
            band_paths.append(path)
            band_gains.append(gain)
    for path in unshaped:
        if path not in paths and sum_path is not None and sum_path in paths:
            band_paths.append(path)
            band_gains.append(-1.0)
            kept_paths.append(path)
            kept_gains.append(1.0)
    out = scratch / "band-dynamics.npy"
    mixer = StemMixer(band_paths, band_gains)
    try:
        with out.open("wb") as handle:
            np.lib.format.write_array_header_1_0(
                handle, {"descr": "<f4", "fortran_order": False, "shape": (frames, 2)}
            )
            for start in range(0, frames, _CHUNK_FRAMES):
                block = mixer.read(min(_CHUNK_FRAMES, frames - start))
                handle.write(np.ascontiguousarray(envelope.apply(block, start), dtype=np.float32).tobytes())
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    finally:
        mixer.close()
    return [out, *kept_paths], [1.0, *kept_gains]
