"""Dynamics per section: softer and fuller playing per section, a gain envelope ramped over one beat."""

import io
from pathlib import Path
from typing import Any

import mido
import numpy as np
import pytest

from tracks.engine import (
    InvalidSettings,
    VariantSettings,
    arranged_song,
    integrated_loudness,
    load_arrangement,
    prepare_stems,
    render_variant,
    true_peak_dbtp,
)
from tracks.engine import render as render_module
from tracks.engine.dynamics import (
    DynamicsEnvelope,
    choose_build,
    dynamics_envelope,
    parse_dynamics,
    plan_dynamics,
)
from tracks.engine.master import LoudnessMeter
from tracks.engine.mix import StemMixer
from tracks.engine.transform import perform

from .conftest import MIDI_DIR, read_wav

TPB = 480
BAR = 4 * TPB
BPM = 120.0
BEAT_S = 60 / BPM
SECTION_BARS = 4
SECTIONS = ["Intro", "Verse", "Chorus", "Verse", "Chorus", "Outro"]
CHORDS = [[60, 64, 67], [57, 60, 64], [53, 57, 60], [55, 59, 62]]


def _song(names: list[str] = SECTIONS) -> bytes:
    """A band (piano, bass, strings, flute, drums) playing the same groove through marked sections
    of four bars at 120 bpm (8 s each); the flute sings from the second section to the one before last."""
    midi = mido.MidiFile(type=1, ticks_per_beat=TPB)
    conductor = mido.MidiTrack()
    conductor.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(BPM), time=0))
    for number, name in enumerate(names):
        conductor.append(mido.MetaMessage("marker", text=name, time=0 if number == 0 else SECTION_BARS * BAR))
    midi.tracks.append(conductor)
    bars = SECTION_BARS * len(names)

    def track(channel: int, program: int, notes: list[tuple[int, int, int, int]]) -> None:
        part = mido.MidiTrack()
        part.append(mido.Message("program_change", channel=channel, program=program, time=0))
        events = []
        for start, length, pitch, velocity in notes:
            events += [(start, 1, pitch, velocity), (start + length, 0, pitch, 0)]
        now = 0
        for tick, on, pitch, velocity in sorted(events):
            kind = "note_on" if on else "note_off"
            part.append(mido.Message(kind, channel=channel, note=pitch, velocity=velocity, time=tick - now))
            now = tick
        midi.tracks.append(part)

    chords = [CHORDS[bar % 4] for bar in range(bars)]
    track(
        0, 0, [(b * BAR + k * TPB, TPB - 10, p, 85) for b in range(bars) for k in range(4) for p in chords[b]]
    )
    track(
        1,
        33,
        [(b * BAR + k * 2 * TPB, 2 * TPB - 60, chords[b][0] - 24, 95) for b in range(bars) for k in range(2)],
    )
    track(2, 48, [(b * BAR, BAR - 20, p + 12, 70) for b in range(bars) for p in chords[b]])
    sung = range(SECTION_BARS, bars - SECTION_BARS)
    track(3, 73, [(b * BAR + k * TPB, TPB - 20, 72 + (b + k) % 5, 100) for b in sung for k in range(4)])
    kit = [(b * BAR + k * TPB, 100, 36 if k % 2 == 0 else 38, 100) for b in range(bars) for k in range(4)]
    kit += [(b * BAR + k * TPB // 2, 60, 42, 80) for b in range(bars) for k in range(8)]
    track(9, 0, kit)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def _section_loudness(
    paths: list[Path], gains: list[float], frames: int, spans: list[tuple[float, float]]
) -> list[float]:
    """K-weighted loudness (LUFS, ungated) of each (start_s, end_s) span of the mix of ``paths``."""
    mixer = StemMixer(paths, gains)
    try:
        mix = mixer.read(frames)
    finally:
        mixer.close()
    result = []
    for start, end in spans:
        meter = LoudnessMeter(44_100, channels=2)
        meter.add(mix[round(start * 44_100) : round(end * 44_100)])
        result.append(float(10 * np.log10(meter.hop_energy.mean()) - 0.691))
    return result


def _render_measured(
    arrangement: Any, data: dict[str, Any], out: Path, soundfont: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[float], list[dict[str, Any]]]:
    """Render ``data`` to ``out``; the loudness of each section of the mix before mastering (away from
    the one-beat ramps), and the sections played."""
    settings = VariantSettings.from_dict(data)
    sections = arranged_song(arrangement, settings.arrangement).analysis["sections"]
    spans = [(s["start_s"] + 2 * BEAT_S, s["end_s"] - 2 * BEAT_S) for s in sections]
    measured: list[float] = []
    plan_master = render_module.plan_master

    def spy(paths: list[Path], gains: list[float], stems: Any, config: Any) -> Any:
        measured.extend(_section_loudness(paths, gains, stems.frames, spans))
        return plan_master(paths, gains, stems, config)

    monkeypatch.setattr(render_module, "plan_master", spy)
    render_variant(arrangement, settings, out_path=out, soundfont=soundfont)
    monkeypatch.setattr(render_module, "plan_master", plan_master)
    return measured, sections


# --- the setting ---------------------------------------------------------------------------------


def test_the_setting_is_normalised_and_leaves_older_hashes_alone() -> None:
    # given settings without dynamics, and the same with dynamics as written
    plain = VariantSettings.from_dict({"transpose": 2})
    written = VariantSettings.from_dict({"transpose": 2, "dynamics": {"Verse": 0}})
    # then they are the same render, and the setting is not in their canonical form
    assert written.cache_key() == plain.cache_key()
    assert "dynamics" not in plain.to_dict()
    # when levels are given as the CLI writes them, or as an object
    from_text = VariantSettings.from_dict({"dynamics": " Verse = -4 , Chorus=2"})
    from_object = VariantSettings.from_dict({"dynamics": {"Chorus": 2.0, "Verse": -4}})
    # then both are one render, whose stems differ from the plain one (the velocities change)
    assert from_text.to_dict()["dynamics"] == {"Chorus": 2.0, "Verse": -4.0}
    assert from_text.cache_key() == from_object.cache_key()
    assert from_text.stem_key() != VariantSettings().stem_key()
    assert VariantSettings.from_dict({"dynamics": "Build"}).to_dict()["dynamics"] == "build"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("louder", 'dynamics must be "build"'),
        ({"Verse": -13}, "between -12 and +6"),
        ({"Chorus": 7}, "between -12 and +6"),
        ({"Verse": "quiet"}, "must be a number"),
        ({"Verse": True}, "must be a number"),
        ({"Verse": -4, "verse": -2}, "twice"),
        ({"": -4}, "empty name"),
        (3, "dynamics must be"),
    ],
)
def test_bad_dynamics_are_refused_naming_the_setting(value: object, reason: str) -> None:
    with pytest.raises(InvalidSettings, match="dynamics") as error:
        VariantSettings.from_dict({"dynamics": value})
    assert reason in str(error.value)


def test_a_level_for_a_section_the_song_lacks_is_refused_before_any_synthesis() -> None:
    arrangement = load_arrangement(_song())
    with pytest.raises(InvalidSettings, match=r"unknown section 'Bridge'.*Intro, Verse, Chorus, Outro"):
        plan_dynamics(arrangement, {"Bridge": -4})


# --- playing softer and harder -------------------------------------------------------------------


def test_notes_are_played_softer_in_quiet_sections_and_harder_in_full_ones_drums_too() -> None:
    # given the song, with quieter verses and fuller choruses
    arrangement = load_arrangement(_song())
    plan = plan_dynamics(arrangement, {"Verse": -4, "Chorus": 2})
    assert plan is not None
    plain = perform(arrangement)
    shaped = perform(arrangement, velocity_spans=plan.velocity_spans())
    on = ((plain.status & 0xF0) == 0x90) & (plain.d2 > 0)
    seconds = plain.frame / plain.sample_rate
    section = np.minimum((seconds // (SECTION_BARS * 4 * BEAT_S)).astype(int), len(SECTIONS) - 1)
    drums = (plain.status & 0x0F) == 9
    for number, name in enumerate(SECTIONS):
        mine = on & (section == number)
        ratio = shaped.d2[mine] / plain.d2[mine]
        # then every note of a verse is softer, of a chorus harder (up to 127), the rest as written
        if name == "Verse":
            assert (ratio < 1).all()
            assert (shaped.d2[mine & drums] < plain.d2[mine & drums]).all()
        elif name == "Chorus":
            assert (ratio > 1).all()
        else:
            assert (ratio == 1).all()
    # and only velocities change
    assert np.array_equal(shaped.frame, plain.frame)
    assert np.array_equal(shaped.d1, plain.d1)


# --- the envelope ---------------------------------------------------------------------------------


def test_the_envelope_ramps_over_one_beat_the_louder_level_covering_the_bar_line() -> None:
    # given the song with quieter verses and fuller choruses, at 0.8x with a bar of count-in
    arrangement = load_arrangement(_song())
    settings = VariantSettings.from_dict(
        {"dynamics": {"Verse": -4, "Chorus": 2}, "tempo": 0.8, "count_in": 1}
    )
    envelope = dynamics_envelope(arrangement, settings, sample_rate=44_100)
    assert envelope is not None
    plan = plan_dynamics(arrangement, settings.dynamics)
    assert plan is not None
    level = {lv.name: lv.envelope_db for lv in plan.levels}
    beat = round(BEAT_S / 0.8 * 44_100)
    count_in = 4 * beat

    def db(frame: int) -> float:
        return float(20 * np.log10(envelope.gain(frame, 1)[0]))

    verse_starts = count_in + round(SECTION_BARS * 4 * BEAT_S / 0.8 * 44_100)
    chorus_starts = 2 * verse_starts - count_in
    # then the fall into the verse starts on its downbeat and takes one beat
    assert db(verse_starts - 10) == pytest.approx(level["Intro"], abs=1e-3)
    assert db(verse_starts + beat // 2) == pytest.approx((level["Intro"] + level["Verse"]) / 2, abs=0.01)
    assert db(verse_starts + beat + 10) == pytest.approx(level["Verse"], abs=1e-3)
    # and the rise into the chorus takes the beat before it, reaching the chorus on its downbeat
    assert db(chorus_starts - beat - 10) == pytest.approx(level["Verse"], abs=1e-3)
    assert db(chorus_starts) == pytest.approx(level["Chorus"], abs=1e-3)
    # and applied chunk by chunk it is the same as applied at once
    block = np.random.default_rng(1).standard_normal((chorus_starts + beat, 2)).astype(np.float32)
    whole = envelope.apply(block, 0)
    chunks = np.concatenate(
        [envelope.apply(block[at : at + 30_001], at) for at in range(0, len(block), 30_001)]
    )
    assert np.allclose(chunks, whole, atol=1e-6)
    assert whole.dtype == np.float32


def test_an_envelope_without_breakpoints_inside_a_block_is_one_gain() -> None:
    envelope = DynamicsEnvelope([0, 100, 200], [0.0, -6.0, -6.0])
    block = np.ones((50, 2), dtype=np.float32)
    assert np.allclose(envelope.apply(block, 300), 10 ** (-6 / 20))
    assert np.allclose(
        envelope.apply(block, 25)[:, 0], 10 ** (np.interp(np.arange(25, 75), [0, 100], [0, -6]) / 20)
    )


# --- "build" -------------------------------------------------------------------------------------


def _sections(names: list[str]) -> list[dict[str, Any]]:
    return [{"name": name, "start_s": 8.0 * n, "end_s": 8.0 * (n + 1)} for n, name in enumerate(names)]


def test_build_reads_the_section_names_first() -> None:
    names = ["Intro", "Verse 1", "Pre-Chorus", "Chorus", "Verse 2", "Chorus", "Bridge", "Outro"]
    levels, method, _ = choose_build(_sections(names), [1.0] * len(names))
    assert method == "labels"
    assert levels == [0.0, -4.0, -2.0, 2.0, -4.0, 2.0, 0.0, 0.0]


def test_build_without_names_picks_the_densest_repeated_section_as_chorus_the_sparsest_as_verse() -> None:
    names = ["Intro", "A", "B", "A", "B", "C", "B", "Outro"]
    density = [1.0, 2.0, 5.0, 2.1, 5.2, 3.0, 5.1, 1.0]
    levels, method, _ = choose_build(_sections(names), density)
    assert method == "repetition"
    assert levels == [0.0, -4.0, 2.0, -4.0, 2.0, 0.0, 2.0, 0.0]


def test_build_without_repeats_goes_by_density_and_a_strophic_song_builds_up() -> None:
    density = [2.0, 6.0, 3.0, 1.0, 4.0, 5.0]
    levels, method, _ = choose_build(_sections(list("ABCDEF")), density)
    assert method == "density"
    assert levels[1] == 2.0  # the densest fuller
    assert levels[3] == -4.0  # the sparsest quieter
    levels, method, _ = choose_build(_sections(["A", "A", "A"]), [1.0, 1.0, 1.0])
    assert method == "progression"
    assert levels == [-4.0, -1.0, 2.0]


def test_build_says_what_it_chose_on_a_real_file() -> None:
    # given a real file whose sections were found in the music (letters, no names)
    arrangement = load_arrangement(MIDI_DIR / "complex_18parts.mid")
    plan = plan_dynamics(arrangement, "build")
    assert plan is not None
    # then its most repeated sections became the verse (the sparser) and the chorus (the denser)
    assert plan.method == "repetition"
    assert plan.summary == "dynamics build (by repetition and density): C -4 dB, D +2 dB"
    assert {lv.name for lv in plan.levels if lv.gain_db} == {"C", "D"}


# --- what a listener hears -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(soundfont: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The generated song rendered as written and with dynamics (measured before mastering)."""
    arrangement = load_arrangement(_song())
    folder = tmp_path_factory.mktemp("dynamics")
    with pytest.MonkeyPatch.context() as monkeypatch:
        plain, _ = _render_measured(arrangement, {}, folder / "plain.wav", soundfont, monkeypatch)
        shaped, sections = _render_measured(
            arrangement,
            {"dynamics": {"Verse": -6, "Chorus": 3}},
            folder / "shaped.wav",
            soundfont,
            monkeypatch,
        )
    return {"plain": plain, "shaped": shaped, "sections": sections, "out": folder / "shaped.wav"}


def test_each_section_changes_by_the_requested_db_before_mastering(generated: dict[str, Any]) -> None:
    asked = {"Intro": 0.0, "Verse": -6.0, "Chorus": 3.0, "Outro": 0.0}
    for section, plain, shaped in zip(
        generated["sections"], generated["plain"], generated["shaped"], strict=True
    ):
        assert shaped - plain == pytest.approx(asked[section["name"]], abs=1.5), section["name"]


def test_the_master_keeps_its_loudness_targets(generated: dict[str, Any]) -> None:
    rate, samples = read_wav(generated["out"])
    assert integrated_loudness(samples.astype(np.float32), rate) == pytest.approx(-14.0, abs=0.5)
    assert true_peak_dbtp(samples.astype(np.float32), rate) <= -1.0


def test_the_click_keeps_its_level_through_the_sections(
    soundfont: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the song with only the click audible (every part muted), with and without dynamics
    arrangement = load_arrangement(_song(["Verse", "Chorus"]))
    muted = {str(index): {"mute": True} for index in range(len(arrangement.parts))}
    plain, _ = _render_measured(
        arrangement, {"click": True, "mix": muted}, tmp_path / "a.wav", soundfont, monkeypatch
    )
    shaped, _ = _render_measured(
        arrangement,
        {"click": True, "mix": muted, "dynamics": {"Verse": -8, "Chorus": 4}},
        tmp_path / "b.wav",
        soundfont,
        monkeypatch,
    )
    # then the click is not shaped
    assert shaped == pytest.approx(plain, abs=0.05)


def test_a_real_file_arranged_gets_its_dynamics_at_every_occurrence(
    soundfont: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a real file arranged so that its two most repeated sections come back, with "build"
    arrangement = load_arrangement(MIDI_DIR / "complex_18parts.mid")
    items = ["Intro", "C", "D", "C x2", "D"]
    plain, sections = _render_measured(
        arrangement, {"arrangement": items}, tmp_path / "a.wav", soundfont, monkeypatch
    )
    shaped, _ = _render_measured(
        arrangement, {"arrangement": items, "dynamics": "build"}, tmp_path / "b.wav", soundfont, monkeypatch
    )
    # then every occurrence of C is 4 dB quieter and of D 2 dB fuller, the intro as written
    asked = {"Intro": 0.0, "C": -4.0, "D": 2.0}
    for section, before, after in zip(sections, plain, shaped, strict=True):
        assert after - before == pytest.approx(asked[section["name"]], abs=1.5), section
    rate, samples = read_wav(tmp_path / "b.wav")
    assert integrated_loudness(samples.astype(np.float32), rate) == pytest.approx(-14.0, abs=0.5)
    assert true_peak_dbtp(samples.astype(np.float32), rate) <= -1.0


def test_parse_dynamics_round_trips_the_cli_text() -> None:
    assert parse_dynamics("Verse=-4,Chorus=2") == {"Chorus": 2.0, "Verse": -4.0}
    for as_written in ("", None, {}, {"Verse": 0}):
        assert parse_dynamics(as_written) == ""


def test_a_mix_change_served_from_cached_stems_shapes_the_band_alike(
    soundfont: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given per-part stems cached for the song with dynamics and a click
    arrangement = load_arrangement(_song(["Verse", "Chorus"]))
    data: dict[str, Any] = {
        "click": True,
        "dynamics": {"Verse": -6, "Chorus": 3},
        "mix": {"2": {"gain_db": -3}},
    }
    stems = tmp_path / "stems"
    fresh, sections = _render_measured(arrangement, data, tmp_path / "a.wav", soundfont, monkeypatch)
    assert prepare_stems(arrangement, VariantSettings.from_dict(data), soundfont=soundfont, stem_dir=stems)
    # when the same mix change is served from them (the click inside their unity sum)
    settings = VariantSettings.from_dict(data)
    measured: list[float] = []
    plan_master = render_module.plan_master
    spans = [(s["start_s"] + 2 * BEAT_S, s["end_s"] - 2 * BEAT_S) for s in sections]

    def spy(paths: list[Path], gains: list[float], stem_set: Any, config: Any) -> Any:
        measured.extend(_section_loudness(paths, gains, stem_set.frames, spans))
        return plan_master(paths, gains, stem_set, config)

    monkeypatch.setattr(render_module, "plan_master", spy)
    result = render_variant(
        arrangement, settings, out_path=tmp_path / "b.wav", soundfont=soundfont, stem_dir=stems
    )
    # then it sounds like the fresh render, section by section
    assert result.stems_reused
    assert measured == pytest.approx(fresh, abs=0.2)
    assert result.dynamics["sections"][0] == {"index": 0, "name": "Verse", "gain_db": -6.0}
