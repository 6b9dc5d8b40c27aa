"""Page forms for tracks: they check the shape of the input; services decide what is allowed."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, cast

from django import forms

from tracks.engine import transpose_key
from tracks.engine.dynamics import BUILD, DYNAMICS_RANGE, parse_dynamics
from tracks.engine.presets import PRESETS, mix_to_dict, preset_mix
from tracks.rules import COMMENT_MAX, GAIN_MAX_DB, GAIN_MIN_DB, SEARCH_MAX, TEXT_MAX, TITLE_MAX
from tracks.services.sounds import sound_sets_list

TRANSPOSE_RANGE = range(-12, 13)
TEMPO_RATIO_MIN = 0.5
TEMPO_RATIO_MAX = 1.5
COUNT_IN_MAX = 4
STATUS_FILTERS = (("all", "All"), ("open", "Open"), ("resolved", "Resolved"))


class TrackSearchForm(forms.Form):
    q = forms.CharField(
        label="Search",
        required=False,
        max_length=SEARCH_MAX,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Title, producer or words"}),
    )
    genre = forms.ChoiceField(label="Genre", required=False)

    def __init__(self, *args: Any, genre_choices: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["genre"]).choices = [("", "All genres"), *genre_choices]


class MidiFileField(forms.FileField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("label", "MIDI file")
        kwargs.setdefault("help_text", "A Standard MIDI File (.mid), up to 1 MB.")
        kwargs.setdefault(
            "widget", forms.FileInput(attrs={"accept": ".mid,.midi,.kar,audio/midi,audio/x-midi"})
        )
        super().__init__(**kwargs)


class TrackUploadForm(forms.Form):
    title = forms.CharField(label="Title", max_length=TITLE_MAX)
    genre = forms.ChoiceField(label="Genre")
    midi = MidiFileField()
    description = forms.CharField(
        label="Description",
        required=False,
        max_length=TEXT_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What the song is, the style, anything a singer should know.",
    )
    is_public = forms.BooleanField(
        label="Public",
        required=False,
        initial=True,
        help_text="Anyone can find and render a public track; a private one only you.",
    )

    def __init__(self, *args: Any, genre_choices: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["genre"]).choices = [("", "Choose a genre"), *genre_choices]


class RevisionUploadForm(forms.Form):
    midi = MidiFileField()
    notes = forms.CharField(
        label="What changed",
        required=False,
        max_length=TEXT_MAX,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Shown with the revision, e.g. “Bridge shortened, bass an octave lower”.",
    )
    resolves = forms.TypedMultipleChoiceField(
        label="This revision answers",
        required=False,
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        help_text="The open comments you addressed; they are marked resolved in this revision.",
    )

    def __init__(self, *args: Any, open_comments: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["resolves"]).choices = open_comments


def part_labels(parts: list[dict[str, Any]]) -> dict[int, str]:
    """A readable, unique name per part, used in the mixer's accessible names."""
    names: dict[int, str] = {}
    for part in parts:
        name = str(part.get("name") or "").strip() or str(part.get("instrument") or "").strip()
        names[int(part["index"])] = name or f"Part {int(part['index']) + 1}"
    counts = Counter(names.values())
    seen: Counter[str] = Counter()
    for index, name in sorted(names.items()):
        if counts[name] > 1:
            seen[name] += 1
            names[index] = f"{name} {seen[name]}"
    return names


def key_label(key: str, transpose: int) -> str:
    if not key:
        return f"{transpose:+d} semitones" if transpose else "Original key"
    try:
        name = transpose_key(key, transpose)
    except ValueError:
        name = key
    return f"{name} (original)" if transpose == 0 else f"{name} ({transpose:+d})"


class RenderForm(forms.Form):
    """The variant controls of the track page: key, tempo in BPM, a mixer row per part, click, count-in."""

    revision = forms.IntegerField(widget=forms.HiddenInput, required=False)
    transpose = forms.TypedChoiceField(label="Key", coerce=int, initial=0)
    tempo = forms.FloatField(label="Tempo", help_text="Beats per minute.")
    count_in = forms.IntegerField(
        label="Count-in",
        min_value=0,
        max_value=COUNT_IN_MAX,
        initial=0,
        help_text="Bars of click before the song.",
    )
    click = forms.BooleanField(label="Click", required=False, help_text="A metronome over the song.")
    cues = forms.BooleanField(
        label="Spoken cues",
        required=False,
        help_text="The count-in counted aloud, and each section's name in the bar before it.",
    )
    sound = forms.ChoiceField(label="Sound", required=False, help_text="The instruments' sound set.")
    space_voice = forms.BooleanField(
        label="Space for my voice",
        required=False,
        help_text="The band steps back in your voice's range while the melody sings.",
        widget=forms.CheckboxInput(attrs={"role": "switch", "data-space-voice": ""}),
    )
    space_for_voice = forms.FloatField(
        label="Amount (dB)",
        required=False,
        initial=6.0,
        min_value=0.0,
        max_value=12.0,
        widget=forms.NumberInput(attrs={"type": "range", "step": "1", "min": "0", "max": "12"}),
    )
    dynamics_mode = forms.ChoiceField(
        label="Dynamics",
        required=False,
        choices=[
            ("", "As written"),
            (BUILD, "Build: quiet verses, full choruses"),
            ("sections", "Per section"),
        ],
        help_text="Softer or fuller playing per section, ramped over one beat.",
        widget=forms.Select(attrs={"data-dynamics-mode": ""}),
    )

    def __init__(
        self,
        *args: Any,
        analysis: dict[str, Any],
        suggestions: list[dict[str, Any]] | None = None,
        sections: list[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._add_dynamics_fields(analysis.get("sections") if sections is None else sections)
        self.original_key = str(analysis.get("key") or "")
        self.original_bpm = float(analysis.get("tempo_bpm") or 120.0)
        self.melody_part = analysis.get("melody_part")
        fits = {int(s["transpose"]) for s in suggestions or [] if s.get("fits")}
        best = int(suggestions[0]["transpose"]) if suggestions else None
        choices = []
        for transpose in TRANSPOSE_RANGE:
            label = key_label(self.original_key, transpose)
            if transpose == best:
                label += " · best for your range"
            elif transpose in fits:
                label += " · fits your range"
            choices.append((transpose, label))
        cast(forms.ChoiceField, self.fields["transpose"]).choices = choices

        low, high = self.tempo_bounds()
        self.fields["tempo"].initial = _plain_number(self.original_bpm)
        self.fields["tempo"].widget.attrs.update(
            {"min": low, "max": high, "step": "any", "inputmode": "decimal"}
        )
        self.fields["count_in"].widget.attrs.update({"inputmode": "numeric"})

        sound_field = cast(forms.ChoiceField, self.fields["sound"])
        sound_field.choices = [("", "Track default")] + [
            (entry["slug"], entry["name"]) for entry in sound_sets_list()
        ]
        self.part_names = part_labels(list(analysis.get("parts") or []))
        self.parts_info = list(analysis.get("parts") or [])
        self.preset_mixes = {
            name: mix_to_dict(preset_mix(self.parts_info, name, self.melody_part)) for name in PRESETS
        }
        for part in self.parts_info:
            index = int(part["index"])
            name = self.part_names[index]
            self.fields[f"gain_{index}"] = forms.FloatField(
                label=f"Volume {name}",
                required=False,
                initial=0.0,
                min_value=GAIN_MIN_DB,
                max_value=GAIN_MAX_DB,
                widget=forms.NumberInput(
                    attrs={
                        "type": "range",
                        "step": "0.5",
                        "data-gain": "",
                        "data-output": f"gain-out-{index}",
                    }
                ),
            )
            self.fields[f"mute_{index}"] = forms.BooleanField(
                label=f"Mute {name}", required=False, widget=forms.CheckboxInput(attrs={"data-mute": ""})
            )
            self.fields[f"solo_{index}"] = forms.BooleanField(label=f"Solo {name}", required=False)

    def _add_dynamics_fields(self, sections: list[dict[str, Any]] | None) -> None:
        """One level per section name (``sections``: the revision's, with the producer's corrections)."""
        self.dynamics_names = list(dict.fromkeys(str(s["name"]) for s in sections or []))
        levels = {
            name.casefold(): level for name, level in (self.initial.get("dynamics_levels") or {}).items()
        }
        low, high = DYNAMICS_RANGE
        for number, name in enumerate(self.dynamics_names):
            self.fields[f"dynamics_{number}"] = forms.FloatField(
                label=name,
                required=False,
                initial=levels.get(name.casefold(), 0.0),
                min_value=low,
                max_value=high,
                widget=forms.NumberInput(
                    attrs={
                        "type": "range",
                        "step": "1",
                        "min": f"{low:g}",
                        "max": f"{high:g}",
                        "data-dynamics": "",
                    }
                ),
            )

    def dynamics_rows(self) -> list[dict[str, Any]]:
        """The per-section level fields, for the template."""
        return [
            {"name": name, "field": self[f"dynamics_{number}"], "output": f"dynamics-out-{number}"}
            for number, name in enumerate(self.dynamics_names)
        ]

    def dynamics_setting(self) -> dict[str, float] | str:
        data = self.cleaned_data
        mode = data.get("dynamics_mode") or ""
        if mode != "sections":
            return mode
        return parse_dynamics(
            {
                name: float(data.get(f"dynamics_{number}") or 0.0)
                for number, name in enumerate(self.dynamics_names)
            }
        )

    def tempo_bounds(self) -> tuple[float, float]:
        # Rounded inwards to 0.1 BPM so both ends are themselves allowed tempos.
        return (
            math.ceil(self.original_bpm * TEMPO_RATIO_MIN * 10) / 10,
            math.floor(self.original_bpm * TEMPO_RATIO_MAX * 10) / 10,
        )

    def clean_tempo(self) -> float:
        bpm = self.cleaned_data["tempo"]
        ratio = round(bpm / self.original_bpm, 3)
        if not TEMPO_RATIO_MIN <= ratio <= TEMPO_RATIO_MAX:
            low, high = self.tempo_bounds()
            raise forms.ValidationError(
                f"Choose a tempo between {_plain_number(low)} and {_plain_number(high)} BPM "
                f"(half to one and a half times the original {_plain_number(self.original_bpm)} BPM)."
            )
        return bpm

    def part_rows(self) -> list[dict[str, Any]]:
        """What the mixer table shows per part, with its three bound fields."""
        rows = []
        for part in self.parts_info:
            index = int(part["index"])
            rows.append(
                {
                    "index": index,
                    "name": self.part_names[index],
                    "role": part.get("role", ""),
                    "instrument": part.get("instrument", ""),
                    "is_drum": bool(part.get("is_drum")),
                    "is_melody": index == self.melody_part,
                    "gain": self[f"gain_{index}"],
                    "mute": self[f"mute_{index}"],
                    "solo": self[f"solo_{index}"],
                    "gain_value": self._gain_value(index),
                }
            )
        return rows

    def _gain_value(self, index: int) -> float:
        field = self[f"gain_{index}"]
        try:
            return float(field.value() or 0.0)
        except (TypeError, ValueError):
            return 0.0

    def settings(self) -> dict[str, Any]:
        """The render settings in the shape ``render_request`` takes (mix keys are part indices)."""
        data = self.cleaned_data
        mix: dict[str, dict[str, Any]] = {}
        for part in self.parts_info:
            index = int(part["index"])
            entry = {
                "gain_db": float(data.get(f"gain_{index}") or 0.0),
                "mute": bool(data.get(f"mute_{index}")),
                "solo": bool(data.get(f"solo_{index}")),
            }
            if entry != {"gain_db": 0.0, "mute": False, "solo": False}:
                mix[str(index)] = entry
        return {
            "transpose": int(data["transpose"]),
            "tempo": round(data["tempo"] / self.original_bpm, 3),
            "mix": mix,
            "click": bool(data.get("click")),
            "cues": bool(data.get("cues")),
            "count_in": int(data.get("count_in") or 0),
            "sound": data.get("sound") or "",
            "space_for_voice": float(data.get("space_for_voice") or 0.0) if data.get("space_voice") else 0.0,
            "dynamics": self.dynamics_setting(),
        }

    @staticmethod
    def initial_from_settings(settings: dict[str, Any], *, original_bpm: float) -> dict[str, Any]:
        """Form values that reproduce a render's settings (so the controls show what is playing)."""
        initial: dict[str, Any] = {
            "transpose": int(settings.get("transpose", 0)),
            "tempo": _plain_number(round(original_bpm * float(settings.get("tempo", 1.0)), 1)),
            "click": bool(settings.get("click", False)),
            "cues": bool(settings.get("cues", False)),
            "count_in": int(settings.get("count_in", 0)),
            "sound": str(settings.get("sound", "")),
            "space_voice": bool(settings.get("space_for_voice")),
            "space_for_voice": float(settings.get("space_for_voice") or 6.0),
        }
        dynamics = settings.get("dynamics") or ""
        initial["dynamics_mode"] = "sections" if isinstance(dynamics, dict) else str(dynamics)
        initial["dynamics_levels"] = dynamics if isinstance(dynamics, dict) else {}
        for index, entry in (settings.get("mix") or {}).items():
            initial[f"gain_{index}"] = float(entry.get("gain_db", 0.0))
            initial[f"mute_{index}"] = bool(entry.get("mute", False))
            initial[f"solo_{index}"] = bool(entry.get("solo", False))
        return initial


def _plain_number(value: float) -> float | int:
    """120.0 -> 120 so the tempo box reads like a musician would write it."""
    return int(value) if float(value).is_integer() else round(value, 1)


class CommentForm(forms.Form):
    body = forms.CharField(
        label="Comment",
        max_length=COMMENT_MAX,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "What should change, and where?"}),
    )
    parent = forms.IntegerField(required=False, widget=forms.HiddenInput)
    revision = forms.IntegerField(required=False, widget=forms.HiddenInput)
    render_id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    at_seconds = forms.FloatField(required=False, min_value=0.0, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("at_seconds") is not None and not data.get("render_id"):
            self.add_error("body", "Play a render first to pin a comment to a moment.")
        return data


class ResolveForm(forms.Form):
    resolved = forms.BooleanField(required=False)
