"""Spoken cues: the count-in counted on its beats, section names in the bar before their section."""

import dataclasses
import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tracks.demo import compose_song
from tracks.engine import VariantSettings, load_arrangement, render_variant
from tracks.engine import cues as cues_module
from tracks.engine.arrangement import Arrangement
from tracks.engine.cues import plan_cues

from .conftest import midi_bytes, read_wav

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


@pytest.fixture(scope="module")
def song() -> Arrangement:
    # Verse 1 (bars 1-8), Chorus 1 (bars 9-12) at 100 bpm in 4/4: bar = 2.4 s
    return load_arrangement(compose_song(style="pop", minutes=0.5, parts=5, seed=2))


def rms(signal: np.ndarray) -> float:
    return float(np.sqrt(np.mean(signal**2))) if signal.size else 0.0


def test_count_in_follows_the_meter() -> None:
    waltz = load_arrangement(midi_bytes([(0, 3, 60), (3, 3, 62)], bpm=90, time_signature=(3, 4)))
    cues = plan_cues(waltz, tempo=1.0, count_in=1)
    assert [cue.text for cue in cues] == ["one", "two", "three"]
    assert [round(cue.start_s, 3) for cue in cues] == [0.0, 0.667, 1.333]


def test_section_names_are_planned_in_the_bar_before(song: Arrangement) -> None:
    cues = plan_cues(song, tempo=0.8, count_in=1)
    bar_s = 2.4 / 0.8
    assert [cue.text for cue in cues] == ["one", "two", "three", "four", "Chorus 1"]
    chorus = cues[-1]
    assert chorus.start_s == pytest.approx(bar_s + 7 * bar_s)  # count-in bar + bars 1..7
    assert chorus.end_s == pytest.approx(bar_s + 8 * bar_s)  # the chorus downbeat


def test_cues_sound_on_their_beats_and_in_the_bar_before_the_chorus(
    song: Arrangement, tmp_path: Path, soundfont: Path
) -> None:
    # Given the song with a count-in bar and cues, split so the left ear holds the cues alone
    settings = VariantSettings.from_dict({"count_in": 1, "cues": True, "layout": "split"})
    render_variant(song, settings, out_path=tmp_path / "cues.wav", soundfont=soundfont)
    rate, audio = read_wav(tmp_path / "cues.wav")
    left = audio[:, 0]

    def window(start: float, end: float) -> np.ndarray:
        return left[round(start * rate) : round(end * rate)]

    beat, bar = 0.6, 2.4
    # Then each count word sounds in its beat, and nothing sounds on the song's first downbeat
    assert all(rms(window(n * beat, (n + 1) * beat)) > 0.01 for n in range(4))
    assert rms(window(bar - 0.05, bar + 0.1)) < 0.001
    # and the chorus is announced in the bar before it (the count-in bar plus bars 1..8)
    assert rms(window(bar + 7 * bar, bar + 8 * bar)) > 0.01
    # and silence elsewhere: through the verse, and from the chorus on
    assert rms(window(bar + 0.1, bar + 7 * bar)) < 0.001
    assert rms(window(bar + 8 * bar, len(left) / rate)) < 0.001


def test_one_section_announces_only_the_count_in(song: Arrangement) -> None:
    single = dataclasses.replace(song, analysis={**song.analysis, "sections": song.analysis["sections"][:1]})
    assert [cue.text for cue in plan_cues(single, tempo=1.0, count_in=1)] == ["one", "two", "three", "four"]
    assert plan_cues(single, tempo=1.0, count_in=0) == []


def test_words_are_synthesized_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = []
    real = cues_module.subprocess.run

    def counting(command, **kwargs):
        calls.append(command[-1])
        return real(command, **kwargs)

    monkeypatch.setattr(cues_module, "_cache", {})
    monkeypatch.setattr(cues_module.subprocess, "run", counting)
    plan = [cues_module.Cue("two", 0.0, 0.6), cues_module.Cue("two", 0.6, 1.2)]
    cues_module.write_cue_stem(plan, tmp_path / "a.npy", 44_100 * 2, sample_rate=44_100, cache_dir=tmp_path)
    cues_module.write_cue_stem(plan, tmp_path / "b.npy", 44_100 * 2, sample_rate=44_100, cache_dir=tmp_path)
    assert calls == ["two"]
    # and a new process finds it in the folder
    monkeypatch.setattr(cues_module, "_cache", {})
    cues_module.write_cue_stem(plan, tmp_path / "c.npy", 44_100 * 2, sample_rate=44_100, cache_dir=tmp_path)
    assert calls == ["two"]


def test_a_word_longer_than_its_beat_ends_before_the_next(tmp_path: Path) -> None:
    plan = [cues_module.Cue("seventeen thousand", 0.0, 0.2)]
    path = cues_module.write_cue_stem(plan, tmp_path / "fast.npy", 44_100, sample_rate=44_100)
    track = np.load(path)[:, 0]
    assert np.max(np.abs(track[: round(0.18 * 44_100)])) > 0.1
    assert np.max(np.abs(track[round(0.18 * 44_100) :])) == 0.0


def test_stems_zip_has_the_cues(song: Arrangement, tmp_path: Path, soundfont: Path) -> None:
    settings = VariantSettings.from_dict({"count_in": 1, "cues": True, "format": "stems"})
    render_variant(song, settings, out_path=tmp_path / "s.zip", soundfont=soundfont)
    with zipfile.ZipFile(tmp_path / "s.zip") as archive:
        manifest = json.loads(archive.read("manifest.json"))
        assert manifest["files"][-1] == {"file": "Cues.wav", "part": None, "name": "Cues", "gain_db": 0.0}
        assert "Cues.wav" in archive.namelist()
        assert len(io.BytesIO(archive.read("Cues.wav")).getvalue()) > 44
