"""Streaming renders: frames published while synthesis runs, mastered at a predicted gain."""

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tracks.demo import compose_song
from tracks.engine import (
    VariantSettings,
    integrated_loudness,
    load_arrangement,
    prepare_stems,
    render_variant,
)
from tracks.engine.master import limiter_gains, plan_gain
from tracks.engine.settings import PartMix
from tracks.engine.stream import (
    LoudnessProfile,
    profile_for_stems,
    stream_blocker,
    stream_variant,
)


def decode(path: Path) -> np.ndarray:
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "f32le", "-ac", "2", "-ar", "44100", "-"],
        check=True,
        capture_output=True,
    ).stdout
    return np.frombuffer(raw, dtype=np.float32).reshape(-1, 2)


def audio_frames(data: bytes) -> bytes:
    from tracks.services.listening import audio_frame_offsets  # pure helper; no database is used

    return data[audio_frame_offsets(data)[0] :]


class Published:
    def __init__(self) -> None:
        self.frames: dict[int, bytes] = {}
        self.calls = 0

    def __call__(self, first: int, data: bytes) -> None:
        self.calls += 1
        from tracks.services.listening import _split_frames

        for offset, frame in enumerate(_split_frames(data)):
            assert first + offset not in self.frames, "a frame was published twice"
            self.frames[first + offset] = frame

    def from_frame(self, first: int) -> bytes:
        assert sorted(self.frames)[0] <= first
        return b"".join(self.frames[index] for index in sorted(self.frames) if index >= first)


@pytest.fixture(scope="module")
def song(tmp_path_factory, soundfont):
    """A one-minute six-part song, its stems as written and their loudness profile."""
    arrangement = load_arrangement(compose_song(minutes=1.0, parts=6, seed=11))
    stem_dir = tmp_path_factory.mktemp("stems")
    assert prepare_stems(arrangement, VariantSettings(), soundfont=soundfont, stem_dir=stem_dir)
    profile = profile_for_stems(arrangement, VariantSettings(), soundfont=soundfont, stem_dir=stem_dir)
    assert profile is not None
    return arrangement, stem_dir, profile


def test_a_profile_survives_its_compact_form(song):
    _, _, profile = song
    again = LoudnessProfile.from_dict(profile.to_dict())
    assert again is not None
    assert again.parts.shape == profile.parts.shape
    # log10 as float16: within 0.1 dB where there is sound
    loud = profile.total > 1e-6
    assert np.allclose(10 * np.log10(again.total[loud]), 10 * np.log10(profile.total[loud]), atol=0.1)
    assert LoudnessProfile.from_dict({"version": 99}) is None
    assert LoudnessProfile.from_dict({"version": 1, "total": "not base64!"}) is None


def test_a_new_key_streams_its_frames_and_the_file_is_those_frames(song, soundfont, tmp_path):
    # given: a measured song and a variant nobody rendered (new key, tempo, a click)
    arrangement, _, profile = song
    settings = VariantSettings(transpose=3, tempo=0.9, click=True, count_in=1)
    published = Published()

    # when: it is streamed
    result = stream_variant(
        arrangement,
        settings,
        out_path=tmp_path / "stream.mp3",
        soundfont=soundfont,
        stem_dir=tmp_path / "cache",
        profile=profile,
        publish=published,
    )

    # then: frames were published as they came, and the stored MP3 holds exactly those frames
    assert result is not None
    assert not result.stems_reused
    assert published.calls > 10
    stored = (tmp_path / "stream.mp3").read_bytes()
    assert published.from_frame(0) == audio_frames(stored)
    # and it is mastered like a whole-song render: same length, loudness near the target
    classic = render_variant(
        arrangement, settings, out_path=tmp_path / "classic.mp3", soundfont=soundfont, stem_dir=tmp_path / "c"
    )
    assert result.duration_s == pytest.approx(classic.duration_s, abs=0.06)
    streamed, whole = decode(tmp_path / "stream.mp3"), decode(tmp_path / "classic.mp3")
    assert abs(streamed.shape[0] - whole.shape[0]) / 44100 <= 0.06
    assert abs(integrated_loudness(streamed, 44100) - integrated_loudness(whole, 44100)) <= 1.0
    assert result.lufs == pytest.approx(-14.0, abs=1.0)
    assert result.true_peak_dbtp <= -1.0


def test_a_mix_change_from_cached_stems_encodes_the_listeners_stretch_first(song, soundfont, tmp_path):
    # given: the stems as written are cached; a listener is 30 s in
    arrangement, stem_dir, _profile = song
    settings = VariantSettings(mix={1: PartMix(mute=True), 2: PartMix(gain_db=-6.0)})
    order: list[int] = []
    published = Published()

    def publish(first: int, data: bytes) -> None:
        order.append(first)
        published(first, data)

    # when
    result = stream_variant(
        arrangement,
        settings,
        out_path=tmp_path / "mix.mp3",
        soundfont=soundfont,
        stem_dir=stem_dir,
        profile=None,  # the cached stems' own profile is enough
        publish=publish,
        start_s=30.0,
    )

    # then: nothing synthesized, the first frames published are the listener's, and the file is a
    # whole song whose frames past the splice are the published ones
    assert result is not None
    assert result.stems_reused
    first_published = order[0]
    assert first_published * 1152 / 44100 == pytest.approx(30.0, abs=0.05)
    assert min(order) == first_published  # the stretch before 30 s is not published: it is in the file
    decoded = decode(tmp_path / "mix.mp3")
    assert decoded.shape[0] / 44100 == pytest.approx(result.duration_s, abs=0.06)
    assert result.lufs == pytest.approx(-14.0, abs=0.5)
    assert result.true_peak_dbtp <= -1.0
    stored = audio_frames((tmp_path / "mix.mp3").read_bytes())
    tail = published.from_frame(first_published + 20)
    assert stored.endswith(tail)


def test_what_needs_the_whole_song_is_not_streamed(song, soundfont, tmp_path):
    arrangement, _stem_dir, _profile = song
    assert stream_blocker(VariantSettings(), ".mp3") is None
    assert stream_blocker(VariantSettings(cues=True), ".mp3") == "spoken cues render whole"
    assert stream_blocker(VariantSettings(space_for_voice=6.0), ".mp3") is not None
    assert stream_blocker(VariantSettings(), ".wav") is not None
    # and without any profile a new key is not streamed: nothing written, nothing published
    published = Published()
    result = stream_variant(
        arrangement,
        VariantSettings(transpose=-2),
        out_path=tmp_path / "none.mp3",
        soundfont=soundfont,
        stem_dir=tmp_path / "cache",
        profile=None,
        publish=published,
    )
    assert result is None
    assert published.calls == 0
    assert not (tmp_path / "none.mp3").exists()


def test_the_streaming_limiter_gives_the_whole_song_gains_once_it_has_looked_ahead():
    # given: peaks with loud bursts, and the whole-song limiter's gains at a fixed gain
    rng = np.random.default_rng(3)
    peaks = rng.uniform(0.05, 0.3, 3000)
    peaks[[400, 401, 1700, 2500]] = 0.95
    whole = limiter_gains(peaks, gain_db=9.0, ceiling_dbtp=-1.0)

    # when: gains are computed on growing prefixes, as a stream sees the peaks
    from tracks.engine.master import LIMITER_LOOKAHEAD_ROWS

    for known in (410, 1000, 1705, 2999):
        partial = limiter_gains(peaks[:known], gain_db=9.0, ceiling_dbtp=-1.0)
        settled = known - LIMITER_LOOKAHEAD_ROWS
        # then: every row a look-ahead behind the newest peak has its final gain
        assert np.allclose(partial[:settled], whole[:settled])
    # and plan_gain still plans with the same limiter
    energy = np.full(300, 1e-3)
    plan = plan_gain(hop_energy=energy, row_peak=peaks, row=441, target_lufs=-14.0, ceiling_dbtp=-1.0)
    assert np.allclose(plan.row_gain, limiter_gains(peaks, gain_db=plan.gain_db, ceiling_dbtp=-1.0))


def test_a_streaming_render_holds_the_machines_cores_while_it_synthesizes(song, soundfont, tmp_path):
    # given: a machine of two cores (its own slot folder) and a variant that must be synthesized
    from tracks.engine import pool
    from tracks.engine.config import EngineConfig

    arrangement, _, profile = song
    config = EngineConfig(threads=2, slot_dir=tmp_path / "slots")
    seen: list[int] = []

    def publish(_first: int, _data: bytes) -> None:
        if not seen:  # another render starting now gets what is left
            with pool.cpu_share(config=config) as cores:
                seen.append(cores)

    # when
    result = stream_variant(
        arrangement,
        VariantSettings(transpose=1),
        out_path=tmp_path / "held.mp3",
        soundfont=soundfont,
        stem_dir=tmp_path / "cache",
        profile=profile,
        publish=publish,
        config=config,
    )

    # then: while it streamed, a second render would have had one core; afterwards both are free
    assert result is not None
    assert seen == [1]
    with pool.cpu_share(config=config) as cores:
        assert cores == 2
