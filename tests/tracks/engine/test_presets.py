"""Stage presets: a mix derived from the parts' roles, never silent, and only a remix away."""

from pathlib import Path

import numpy as np
import pytest

from tracks.demo.compose import compose_song
from tracks.engine import VariantSettings, load_arrangement, prepare_stems, render_variant
from tracks.engine.presets import PRESETS, effective_mix

from .conftest import MIDI_DIR, read_wav

CORPUS = sorted(MIDI_DIR.glob("*.mid"))
GENERATED = [("pop", 8, 0), ("pop", 4, 3), ("ballad", 6, 1), ("ballad", 2, 2)]


def _audible_parts(analysis: dict, settings: VariantSettings) -> list[int]:
    mix = effective_mix(analysis["parts"], settings, analysis.get("melody_part"))
    gains = VariantSettings(mix=mix).part_gains(len(analysis["parts"]))
    return [part["index"] for part in analysis["parts"] if part["notes"] > 0 and gains[part["index"]] > 0]


def _arrangements() -> list[tuple[str, bytes]]:
    files = [(path.name, path.read_bytes()) for path in CORPUS]
    songs = [
        (f"{style}-{parts}", compose_song(style=style, minutes=0.5, parts=parts, seed=seed))
        for style, parts, seed in GENERATED
    ]
    return files + songs


@pytest.mark.parametrize(("name", "data"), _arrangements(), ids=[name for name, _ in _arrangements()])
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_leaves_a_part_audible(name: str, data: bytes, preset: str) -> None:
    # given a real or generated arrangement
    analysis = load_arrangement(data).analysis
    # when a preset decides the mix
    audible = _audible_parts(analysis, VariantSettings(preset=preset))
    # then at least one part with notes still sounds
    assert audible, f"{preset} silences {name}"


def test_presets_follow_the_parts_roles() -> None:
    # given a pop song with drums, bass, keys, pads and a melody
    analysis = load_arrangement(compose_song(style="pop", minutes=0.5, parts=8, seed=0)).analysis
    parts = analysis["parts"]
    drums = [p["index"] for p in parts if p["is_drum"]]
    assert drums
    # then unplugged and ambient take the drums out, groove brings them forward
    for preset in ("unplugged", "ambient"):
        assert not set(drums) & set(_audible_parts(analysis, VariantSettings(preset=preset)))
    groove = effective_mix(parts, VariantSettings(preset="groove"), analysis["melody_part"])
    assert all(groove[index].gain_db > 0 for index in drums)
    # and the melody (the guide) is left as it is by every preset
    for preset in PRESETS:
        assert analysis["melody_part"] not in effective_mix(parts, VariantSettings(preset=preset))


def test_explicit_mix_entries_override_the_preset() -> None:
    # given a preset that mutes the drums
    analysis = load_arrangement(compose_song(style="pop", minutes=0.5, parts=8, seed=0)).analysis
    drum = next(p["index"] for p in analysis["parts"] if p["is_drum"])
    settings = VariantSettings.from_dict({"preset": "unplugged", "mix": {str(drum): {"gain_db": -3}}})
    # when the performer sets the drums' fader
    mix = effective_mix(analysis["parts"], settings, analysis["melody_part"])
    # then their entry wins over the preset
    assert not mix[drum].mute
    assert mix[drum].gain_db == -3


def test_a_preset_is_only_a_remix_of_cached_stems(soundfont: Path, tmp_path: Path) -> None:
    # given a song whose per-part stems are cached after a first render
    arrangement = load_arrangement(compose_song(style="pop", minutes=0.3, parts=6, seed=4))
    stem_dir = tmp_path / "stems"
    plain = render_variant(
        arrangement, VariantSettings(), out_path=tmp_path / "plain.wav", soundfont=soundfont
    )
    assert prepare_stems(arrangement, VariantSettings(), soundfont=soundfont, stem_dir=stem_dir)
    _rate, plain_audio = read_wav(tmp_path / "plain.wav")
    for preset in ("unplugged", "groove", "ambient"):
        # when the performer picks a preset
        result = render_variant(
            arrangement,
            VariantSettings(preset=preset),
            out_path=tmp_path / f"{preset}.wav",
            soundfont=soundfont,
            stem_dir=stem_dir,
        )
        # then nothing is synthesized again, the render says which mix it used, and it sounds different
        assert result.stems_reused
        assert result.effective_mix
        _, audio = read_wav(tmp_path / f"{preset}.wav")
        frames = min(len(audio), len(plain_audio))
        assert np.abs(audio[:frames] - plain_audio[:frames]).max() > 0.05
    assert not plain.effective_mix
