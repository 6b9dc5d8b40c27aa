"""A first render does not wait for per-part stems; prepare_stems builds them; mix changes reuse them."""

import dataclasses
import threading
from pathlib import Path

import numpy as np
import pytest

from tracks.demo import compose_song
from tracks.engine import (
    PartMix,
    VariantSettings,
    integrated_loudness,
    load_arrangement,
    prepare_stems,
    render_variant,
    true_peak_dbtp,
)
from tracks.engine.arrangement import Arrangement

from .conftest import read_wav

SETTINGS = {"transpose": 2, "tempo": 0.8}
MIX = {0: PartMix(mute=True), 2: PartMix(gain_db=-6.0), 3: PartMix(gain_db=3.0)}


@pytest.fixture(scope="module")
def song() -> Arrangement:
    # Eight parts (drums, bass, keys with pedal, ...) and about 35 s of audio at 0.8x
    return load_arrangement(compose_song(style="pop", minutes=0.5, parts=8, seed=4))


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    frames = min(a.shape[0], b.shape[0])
    x, y = a[:frames].reshape(-1), b[:frames].reshape(-1)
    return float(np.dot(x, y) / np.sqrt(np.dot(x, x) * np.dot(y, y)))


def stem_files(stem_dir: Path) -> list[Path]:
    return sorted(stem_dir.rglob("*.npy"))


def test_first_render_does_not_build_per_part_stems(
    tmp_path: Path, soundfont: Path, song: Arrangement
) -> None:
    # Given an empty stem folder
    stems = tmp_path / "stems"
    # When a variant is rendered for the first time
    result = render_variant(
        song, VariantSettings(**SETTINGS), out_path=tmp_path / "a.wav", soundfont=soundfont, stem_dir=stems
    )
    # Then it was synthesized, and no stems (nor scratch files) are left behind
    assert not result.stems_reused
    assert list(stems.iterdir()) == []
    assert (tmp_path / "a.wav").is_file()


def test_prepare_stems_builds_once_then_mix_changes_reuse_them(
    tmp_path: Path, soundfont: Path, song: Arrangement
) -> None:
    stems = tmp_path / "stems"
    # When the stems are prepared twice
    built = prepare_stems(song, VariantSettings(**SETTINGS), soundfont=soundfont, stem_dir=stems)
    again = prepare_stems(
        song, VariantSettings(**SETTINGS, mix={1: PartMix(mute=True)}), soundfont=soundfont, stem_dir=stems
    )
    # Then the first call built one stem per part (plus their sum) and the second found them
    assert built is True
    assert again is False
    assert len([path for path in stem_files(stems) if path.name.startswith("stem-")]) == len(song.parts)
    # And a mix-only render is served from them
    remix = render_variant(
        song,
        VariantSettings(**SETTINGS, mix=MIX),
        out_path=tmp_path / "remix.wav",
        soundfont=soundfont,
        stem_dir=stems,
    )
    assert remix.stems_reused
    # And it sounds like a first render of the same mix (synthesized as part groups, no stems)
    first = render_variant(
        song, VariantSettings(**SETTINGS, mix=MIX), out_path=tmp_path / "first.wav", soundfont=soundfont
    )
    assert not first.stems_reused
    rate, reused_audio = read_wav(tmp_path / "remix.wav")
    _, first_audio = read_wav(tmp_path / "first.wav")
    # (the end is found where the tail drops under -80 dBFS, so it may differ by a 10 ms row)
    assert abs(reused_audio.shape[0] - first_audio.shape[0]) <= rate // 50
    assert correlation(reused_audio, first_audio) > 0.99
    assert remix.lufs == pytest.approx(first.lufs, abs=0.1)
    for audio in (reused_audio, first_audio):
        assert integrated_loudness(audio.astype(np.float32), rate) == pytest.approx(-14.0, abs=1.0)
        assert true_peak_dbtp(audio.astype(np.float32), rate) <= -1.0
    assert integrated_loudness(reused_audio.astype(np.float32), rate) == pytest.approx(
        integrated_loudness(first_audio.astype(np.float32), rate), abs=0.2
    )


def test_group_render_and_stem_remix_of_the_same_settings_sound_the_same(
    tmp_path: Path, soundfont: Path, song: Arrangement
) -> None:
    stems = tmp_path / "stems"
    settings = VariantSettings(**SETTINGS, count_in=1, click=True)
    grouped = render_variant(song, settings, out_path=tmp_path / "g.wav", soundfont=soundfont, stem_dir=stems)
    assert prepare_stems(song, settings, soundfont=soundfont, stem_dir=stems)
    remixed = render_variant(song, settings, out_path=tmp_path / "r.wav", soundfont=soundfont, stem_dir=stems)
    assert (grouped.stems_reused, remixed.stems_reused) == (False, True)
    rate, a = read_wav(tmp_path / "g.wav")
    _, b = read_wav(tmp_path / "r.wav")
    assert abs(a.shape[0] - b.shape[0]) <= rate // 50
    assert correlation(a, b) > 0.99
    assert grouped.lufs == pytest.approx(remixed.lufs, abs=0.1)


def test_muted_and_reduced_parts_are_honoured_by_the_group_render(
    tmp_path: Path, soundfont: Path, song: Arrangement
) -> None:
    # Given every part but the drums muted, and the drums soloed instead
    drums = next(part.index for part in song.parts if part.is_drum)
    muted = {index: PartMix(mute=True) for index in range(len(song.parts)) if index != drums}
    render_variant(song, VariantSettings(mix=muted), out_path=tmp_path / "m.wav", soundfont=soundfont)
    render_variant(
        song,
        VariantSettings(mix={drums: PartMix(solo=True)}),
        out_path=tmp_path / "s.wav",
        soundfont=soundfont,
    )
    # Then both are the drum part alone, sample for sample
    _, a = read_wav(tmp_path / "m.wav")
    _, b = read_wav(tmp_path / "s.wav")
    assert np.array_equal(a, b)


def test_concurrent_prepare_stems_builds_once(tmp_path: Path, soundfont: Path, song: Arrangement) -> None:
    stems = tmp_path / "stems"
    results: list[bool] = []

    def prepare() -> None:
        results.append(prepare_stems(song, VariantSettings(**SETTINGS), soundfont=soundfont, stem_dir=stems))

    threads = [threading.Thread(target=prepare) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, True]
    assert len(list(stems.iterdir())) == 1


def test_the_click_is_synthesized_dry_and_the_parts_through_the_effects(
    song: Arrangement, tmp_path: Path, soundfont: Path
) -> None:
    from tracks.engine import render as render_module
    from tracks.engine.synth import Synth

    # Given a variant with a click: its jobs, the click's alone
    performance = render_module._perform(song, VariantSettings(click=True, count_in=1))
    groups = [[0], [performance.click_part]]
    _, jobs = render_module.stem_jobs(performance, groups, tmp_path)
    assert [job.effects for job in jobs] == [True, False]
    click = jobs[1]

    # When the click is rendered as it is, and once through the reverb and chorus for comparison
    synth = Synth(str(soundfont))
    synth.render(click)
    dry = np.load(click.out_path)
    wet_path = tmp_path / "wet.npy"
    synth.render(dataclasses.replace(click, out_path=str(wet_path), effects=True))
    wet = np.load(wet_path)

    # Then a click hit stops where its sample does: 400 ms after the last one the dry stem is silent,
    # where the reverb would still ring
    last_hit = int(click.frame[click.status >= 0x90].max())
    after = last_hit + round(0.4 * performance.sample_rate)
    assert np.abs(dry[after:]).max() < 1e-4
    assert np.abs(wet[after:]).max() > 10 * max(float(np.abs(dry[after:]).max()), 1e-6)
