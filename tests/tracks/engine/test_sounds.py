"""Sound sets: the same render through two SoundFonts sounds different, and stems never mix them up."""

import itertools
from pathlib import Path

import numpy as np
import pytest

from tracks.demo.compose import compose_song
from tracks.engine import VariantSettings, load_arrangement, prepare_stems, render_variant
from tracks.engine.synth import EFFECTS, fluidsynth_version, synth_identity

from .conftest import read_wav

# FluidR3 rather than MuseScore General here: its .sf3 takes ~20 s to load (Ogg samples decoded).
FLUIDR3 = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")


def _spectrum_db(path: Path) -> np.ndarray:
    """Long-term average spectrum in 1/3-octave bands from 50 Hz to 16 kHz, relative to its mean."""
    rate, audio = read_wav(path)
    mono = audio.mean(axis=1)
    frames = mono[: (mono.size // 4096) * 4096].reshape(-1, 4096)
    power = (np.abs(np.fft.rfft(frames * np.hanning(4096), axis=1)) ** 2).mean(axis=0)
    freqs = np.fft.rfftfreq(4096, 1 / rate)
    edges = 50 * 2 ** (np.arange(0, 25) / 3)
    bands = np.array([power[(freqs >= lo) & (freqs < hi)].sum() for lo, hi in itertools.pairwise(edges)])
    levels = 10 * np.log10(bands + 1e-20)
    return levels - levels.mean()


def test_two_sound_sets_give_different_spectra(soundfont: Path, tmp_path: Path) -> None:
    if not FLUIDR3.is_file():
        pytest.skip("fluid-soundfont-gm is not installed")
    # given one song and one variant
    arrangement = load_arrangement(compose_song(style="pop", minutes=0.3, parts=6, seed=2))
    settings = VariantSettings()
    # when it is rendered with TimGM6mb and with FluidR3
    render_variant(arrangement, settings, out_path=tmp_path / "timgm.wav", soundfont=soundfont)
    render_variant(arrangement, settings, out_path=tmp_path / "fluidr3.wav", soundfont=FLUIDR3)
    timgm, fluidr3 = _spectrum_db(tmp_path / "timgm.wav"), _spectrum_db(tmp_path / "fluidr3.wav")
    # then the tone colour differs: third-octave bands differ by more than 1 dB on average
    assert np.abs(timgm - fluidr3).mean() > 1.0
    # while the same sound set twice gives the same spectrum
    render_variant(arrangement, settings, out_path=tmp_path / "again.wav", soundfont=soundfont)
    assert np.abs(timgm - _spectrum_db(tmp_path / "again.wav")).max() < 0.1


def test_stems_are_cached_per_sound_set(soundfont: Path, tmp_path: Path) -> None:
    if not FLUIDR3.is_file():
        pytest.skip("fluid-soundfont-gm is not installed")
    # given stems cached for one sound set
    arrangement = load_arrangement(compose_song(style="ballad", minutes=0.2, parts=3, seed=1))
    stem_dir = tmp_path / "stems"
    assert prepare_stems(
        arrangement, VariantSettings(sound="timgm6mb"), soundfont=soundfont, stem_dir=stem_dir
    )
    # when the performer asks for another sound set
    result = render_variant(
        arrangement,
        VariantSettings(sound="fluidr3"),
        out_path=tmp_path / "other.wav",
        soundfont=FLUIDR3,
        stem_dir=stem_dir,
    )
    # then the other set's stems are not served
    assert not result.stems_reused
    assert VariantSettings(sound="fluidr3").stem_key() != VariantSettings(sound="timgm6mb").stem_key()


def test_the_stem_key_names_fluidsynth_and_its_effects() -> None:
    # the reverb and chorus are set explicitly and, with FluidSynth's version, key the stem cache
    identity = synth_identity()
    assert fluidsynth_version() in identity
    assert EFFECTS["synth.reverb.active"] == 1
    for name in EFFECTS:
        assert name in identity
