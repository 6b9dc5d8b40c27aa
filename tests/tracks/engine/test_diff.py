"""The revision diff on constructed revisions: what changed, in bars and parts, from the notes."""

from __future__ import annotations

import io

import mido

from tracks.engine import load_arrangement
from tracks.engine.diff import diff_arrangements, match_parts

TPB = 480
BARS = 32


def _song(
    *,
    bpm: float = 100.0,
    bass_name: str = "Bass",
    bass_shift: dict[int, int] | None = None,
    bars: int = BARS,
    with_strings: bool = True,
    bass_program: int = 33,
    transpose: int = 0,
) -> bytes:
    """A 4/4 song: a melody, a bass line (one note a beat), strings; ``bass_shift`` moves the bass of
    the given 1-based bars by semitones."""
    midi = mido.MidiFile(type=1, ticks_per_beat=TPB)
    conductor = mido.MidiTrack(
        [
            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0),
            mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0),
        ]
    )
    midi.tracks.append(conductor)
    shift = bass_shift or {}

    def part(name: str, channel: int, program: int, pitch_of: object, per_bar: int) -> None:
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0)])
        track.append(mido.Message("program_change", channel=channel, program=program, time=0))
        step = TPB * 4 // per_bar
        for bar in range(1, bars + 1):
            for beat in range(per_bar):
                pitch = pitch_of(bar, beat) + transpose  # type: ignore[operator]
                track.append(mido.Message("note_on", channel=channel, note=pitch, velocity=90, time=0))
                track.append(mido.Message("note_off", channel=channel, note=pitch, velocity=0, time=step))
        midi.tracks.append(track)

    part("Melody", 0, 73, lambda bar, beat: 72 + (bar + beat) % 5, 2)
    part(bass_name, 1, bass_program, lambda bar, beat: 40 + (beat * 2) % 7 + shift.get(bar, 0), 4)
    if with_strings:
        part("Strings", 2, 48, lambda bar, beat: 60 + bar % 3, 1)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def _diff(before: bytes, after: bytes) -> dict:
    return diff_arrangements(load_arrangement(before), load_arrangement(after)).to_dict()


def _part(diff: dict, name: str) -> dict:
    return next(part for part in diff["parts"] if part["name"] == name)


def test_a_bass_line_changed_in_bars_17_to_24_is_reported_as_exactly_that():
    # given: the same song with the bass moved up a tone in bars 17-24
    before = _song()
    after = _song(bass_shift=dict.fromkeys(range(17, 25), 2))

    # when
    diff = _diff(before, after)

    # then
    assert _part(diff, "Bass") == {"name": "Bass", "status": "changed", "changed_bars": [[17, 24]]}
    assert _part(diff, "Melody")["status"] == "same"
    assert _part(diff, "Strings") == {"name": "Strings", "status": "same", "changed_bars": []}
    assert diff["tempo_changed"] is False
    assert diff["bars_before"] == diff["bars_after"] == BARS


def test_two_separate_changes_are_two_ranges():
    diff = _diff(_song(), _song(bass_shift={3: 1, 4: 1, 30: -1}))

    assert _part(diff, "Bass")["changed_bars"] == [[3, 4], [30, 30]]


def test_a_renamed_part_is_same_not_added_and_removed():
    # given: only the bass part's name changed
    diff = _diff(_song(), _song(bass_name="Fretless"))

    # then
    statuses = {part["name"]: part["status"] for part in diff["parts"]}
    assert statuses == {"Melody": "same", "Fretless": "same", "Strings": "same"}
    assert _part(diff, "Fretless")["renamed_from"] == "Bass"


def test_a_renamed_and_rewritten_part_is_changed_not_added_and_removed():
    diff = _diff(_song(), _song(bass_name="Fretless", bass_shift={9: 5}))

    assert [part["status"] for part in diff["parts"]] == ["same", "changed", "same"]
    assert _part(diff, "Fretless")["changed_bars"] == [[9, 9]]


def test_a_tempo_change_alone_changes_no_part():
    diff = _diff(_song(bpm=100), _song(bpm=90))

    assert diff["tempo_changed"] is True
    assert {part["status"] for part in diff["parts"]} == {"same"}


def test_added_and_removed_parts_and_a_longer_song():
    # given: the strings are dropped and the song grows by 4 bars
    diff = _diff(_song(), _song(with_strings=False, bars=BARS + 4))

    assert _part(diff, "Strings") == {"name": "Strings", "status": "removed", "changed_bars": [[1, BARS]]}
    assert _part(diff, "Bass")["changed_bars"] == [[BARS + 1, BARS + 4]]
    assert diff["bars_before"] == BARS
    assert diff["bars_after"] == BARS + 4

    reverse = _diff(_song(with_strings=False), _song())
    assert _part(reverse, "Strings")["status"] == "added"


def test_a_transposed_revision_reports_the_key_change_and_every_bar_changed():
    diff = _diff(_song(), _song(transpose=-5))

    assert diff["key_changed"] is True
    assert diff["tempo_changed"] is False
    assert all(part["changed_bars"] == [[1, BARS]] for part in diff["parts"])
    assert _diff(_song(), _song())["key_changed"] is False


def test_another_instrument_on_the_same_notes_is_changed_everywhere_it_plays():
    diff = _diff(_song(), _song(bass_program=35))

    assert _part(diff, "Bass") == {"name": "Bass", "status": "changed", "changed_bars": [[1, BARS]]}


def test_parts_are_matched_by_name_before_program():
    before = load_arrangement(_song()).parts
    after = load_arrangement(_song(bass_name="Fretless")).parts

    pairs = [
        (old.name if old else None, new.name if new else None) for old, new in match_parts(before, after)
    ]

    assert pairs == [("Melody", "Melody"), ("Bass", "Fretless"), ("Strings", "Strings")]
