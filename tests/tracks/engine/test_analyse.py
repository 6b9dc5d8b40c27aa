"""Analysis rules on small generated files: key evidence, melody choice, end of song, names, spelling."""

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import mido
import pytest

from tracks.engine import load_arrangement, melody_analysis, note_name, note_number, suggest_keys
from tracks.engine.notes import uses_flats

TPB = 480


@dataclass
class Track:
    notes: Sequence[tuple[float, float, int]]  # (start beat, length in beats, pitch)
    name: str | None = None
    channel: int = 0
    program: int | None = 0
    extra: list[tuple[float, mido.Message]] = field(default_factory=list)  # (beat, message)


def song(
    tracks: Sequence[Track],
    *,
    key_signature: str | None = None,
    bpm: float = 120.0,
    raw_names: dict[int, bytes] | None = None,
) -> bytes:
    """A type-1 file: a conductor track, then one track per ``Track`` (1-based track numbers)."""
    midi = mido.MidiFile(type=1, ticks_per_beat=TPB)
    conductor = mido.MidiTrack()
    conductor.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    conductor.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    if key_signature:
        conductor.append(mido.MetaMessage("key_signature", key=key_signature, time=0))
    midi.tracks.append(conductor)
    for number, spec in enumerate(tracks, start=1):
        track = mido.MidiTrack()
        name = spec.name
        if raw_names and number in raw_names:
            name = raw_names[number].decode("latin-1")  # mido writes text as Latin-1: bytes as given
        if name:
            track.append(mido.MetaMessage("track_name", name=name, time=0))
        events: list[tuple[int, int, mido.Message]] = []
        if spec.program is not None:
            events.append((0, 0, mido.Message("program_change", channel=spec.channel, program=spec.program)))
        for start, length, pitch in spec.notes:
            on = mido.Message("note_on", channel=spec.channel, note=pitch, velocity=90)
            off = mido.Message("note_off", channel=spec.channel, note=pitch, velocity=0)
            events.append((round(start * TPB), 2, on))
            events.append((round((start + length) * TPB), 1, off))
        for beat, message in spec.extra:
            events.append((round(beat * TPB), 3, message))
        now = 0
        for tick, _, message in sorted(events, key=lambda item: (item[0], item[1])):
            track.append(message.copy(time=tick - now))
            now = tick
        midi.tracks.append(track)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def scale_melody(
    tonic: int, bars: int, *, major: bool = True, start_bar: int = 0
) -> list[tuple[float, float, int]]:
    steps = (0, 2, 4, 5, 7, 9, 11, 12) if major else (0, 2, 3, 5, 7, 8, 10, 12)
    # A tune that leans on the tonic triad, as tunes do: eighths up and down the scale.
    contour = (0, 2, 4, 2, 0, 4, 7, 4, 5, 4, 2, 1, 0, 2, 4, 0)
    notes = []
    for index in range(bars * 8):
        degree = contour[index % len(contour)]
        notes.append((start_bar * 4 + index * 0.5, 0.5, tonic + steps[degree]))
    return notes


def chords(
    tonic: int, bars: int, *, major: bool = True, start_bar: int = 0
) -> list[tuple[float, float, int]]:
    third = 4 if major else 3
    progression = ((0, third, 7), (5, 9 if major else 8, 12), (7, 11, 14), (0, third, 7))
    notes = []
    for bar in range(bars):
        root, mid, top = progression[bar % 4]
        for offset in (root, mid, top):
            notes.append((float((start_bar + bar) * 4), 4.0, tonic - 12 + offset))
    return notes


def test_a_bogus_c_major_signature_does_not_beat_the_notes() -> None:
    # Given a song in Ab major whose file carries the placeholder C major signature at tick 0
    data = song(
        [Track(scale_melody(68, 16)), Track(chords(56, 16), channel=1)],
        key_signature="C",
    )
    # When it is analysed
    analysis = load_arrangement(data).analysis
    # Then the notes win, and say so
    assert analysis["key"] == "Ab major"
    assert analysis["key_source"] == "notes"
    assert 0 <= analysis["key_confidence"] <= 1
    assert analysis["keys"][0] == {"key": "Ab major", "start_bar": 1}


def test_a_key_signature_that_fits_the_notes_is_kept() -> None:
    data = song([Track(scale_melody(67, 8)), Track(chords(55, 8), channel=1)], key_signature="G")
    analysis = load_arrangement(data).analysis
    assert (analysis["key"], analysis["key_source"]) == ("G major", "signature")
    assert analysis["key_confidence"] >= 0.8


def test_key_changes_are_reported_with_their_bar() -> None:
    # Given 32 bars in C major, then 16 bars in E major (a remote key, four sharps)
    melody = scale_melody(72, 32) + scale_melody(76, 16, start_bar=32)
    harmony = chords(60, 32) + chords(64, 16, start_bar=32)
    analysis = load_arrangement(song([Track(melody), Track(harmony, channel=1)])).analysis
    # Then the main key comes first at bar 1, then the change near bar 33
    keys = analysis["keys"]
    assert analysis["key"] == "C major"
    assert [entry["key"] for entry in keys] == ["C major", "E major"]
    assert keys[0]["start_bar"] == 1
    assert abs(keys[1]["start_bar"] - 33) <= 4


def test_the_melody_beats_a_counter_melody_above_it() -> None:
    # Given a busy stepwise melody, a sparser counter-melody above it with a few held double notes,
    # and piano chords, under neutral names
    melody = scale_melody(67, 16)
    counter = []
    for bar in range(0, 16, 2):
        counter.append((bar * 4.0, 3.0, 79))
        counter.append((bar * 4.0 + 2.0, 2.0, 76))  # overlaps the held note: a second voice
        counter.append((bar * 4.0 + 4.0, 2.0, 84))
    data = song(
        [
            Track(chords(55, 16), name="Track 1", channel=2),
            Track(counter, name="Track 2", channel=1),
            Track(melody, name="Track 3"),
        ]
    )
    arrangement = load_arrangement(data)
    analysis = arrangement.analysis
    # Then the melody is chosen from the music, not the highest line
    chosen = analysis["melody_part"]
    assert analysis["parts"][chosen]["track"] == 3
    assert analysis["parts"][chosen]["role"] == "lead"
    assert 0 < analysis["melody_confidence"] <= 1


def test_a_melody_with_double_stops_is_still_the_melody_and_its_top_line_counts() -> None:
    melody = scale_melody(72, 8)
    double_stops = [(start, length, pitch - 4) for start, length, pitch in melody[::6]]
    data = song([Track(melody + double_stops, program=40), Track(chords(48, 8), channel=1, program=48)])
    analysis = load_arrangement(data).analysis
    assert analysis["melody_part"] == 0
    assert analysis["melody_top_line"] is True
    sung = {pitch for pitch, _, _ in analysis["melody_histogram"]}
    assert sung == {pitch for _, _, pitch in melody}


def test_a_solo_piano_song_still_gets_a_melody_part() -> None:
    melody = scale_melody(72, 8)
    data = song([Track(melody + chords(60, 8))])
    analysis = load_arrangement(data).analysis
    assert analysis["melody_part"] == 0
    assert analysis["melody_top_line"] is True
    assert max(pitch for pitch, _, _ in analysis["melody_histogram"]) == max(p for _, _, p in melody)


def test_the_song_ends_where_its_sound_ends_not_at_trailing_pedal_data() -> None:
    # Given 4 s of music (8 beats at 120 bpm), then pedal and controller data a minute later
    pedal = [
        (70.0, mido.Message("control_change", control=64, value=127)),
        (120.0, mido.Message("control_change", control=64, value=0)),
        (130.0, mido.Message("control_change", control=7, value=100)),
    ]
    data = song([Track([(beat, 1.0, 60 + beat) for beat in range(8)], extra=pedal)])
    analysis = load_arrangement(data).analysis
    # Then the song lasts 4 s
    assert analysis["duration_s"] == pytest.approx(4.0, abs=0.01)
    assert analysis["timeline"]["end_s"] == pytest.approx(4.0, abs=0.01)
    assert analysis["start_s"] == 0.0


def test_a_sustain_pedal_down_at_the_last_note_off_holds_the_end() -> None:
    # Given a last note released at 4 s while the pedal is down, the pedal lifted at 5 s
    pedal = [
        (6.0, mido.Message("control_change", control=64, value=127)),
        (10.0, mido.Message("control_change", control=64, value=0)),
    ]
    data = song([Track([(beat, 1.0, 60 + beat) for beat in range(8)], extra=pedal)])
    assert load_arrangement(data).analysis["duration_s"] == pytest.approx(5.0, abs=0.01)


def test_track_names_are_utf8_when_valid_else_latin1() -> None:
    notes = [(beat, 1.0, 60 + beat) for beat in range(8)]
    data = song(
        [Track(notes), Track(notes, channel=1)],
        raw_names={1: "B♭ Clarinet".encode(), 2: "Café".encode("latin-1")},
    )
    names = [part["name"] for part in load_arrangement(data).analysis["parts"]]
    assert names == ["B♭ Clarinet", "Café"]


def test_a_part_sharing_a_channel_keeps_its_own_program_label() -> None:
    # Given two tracks on channel 1: the first sets a violin, the second sets nothing, a third a flute
    notes = [(beat, 1.0, 60 + beat) for beat in range(8)]
    data = song(
        [
            Track(notes, program=40, name="Violin"),
            Track(notes, program=None, name="Other"),
            Track(notes, program=73, name="Flute"),
        ]
    )
    parts = load_arrangement(data).analysis["parts"]
    assert [part["program"] for part in parts] == [40, 0, 73]
    assert parts[2]["instrument"] == "Flute"


def test_note_names_are_spelled_in_the_key() -> None:
    assert note_name(63) == "D#4"
    assert note_name(63, key="Eb major") == "Eb4"
    assert note_name(70, key="D minor") == "Bb4"
    assert note_name(66, key="B major") == "F#4"
    assert note_name(61, key="C major") == "C#4"
    assert uses_flats("Ab major")
    assert not uses_flats("E minor")
    assert not uses_flats(None)
    for number in range(128):
        for key in ("Eb major", "F# minor", None):
            assert note_number(note_name(number, key=key)) == number
    assert [note_number(name) for name in ("Bb3", "C#5", "G3")] == [58, 73, 55]


def test_a_melody_in_eb_is_shown_with_flats() -> None:
    data = song([Track(scale_melody(63, 8)), Track(chords(51, 8), channel=1)])
    analysis = load_arrangement(data).analysis
    assert analysis["key"] == "Eb major"
    melody = analysis["parts"][analysis["melody_part"]]
    assert (melody["low"], melody["high"]) == ("Eb4", "Eb5")
    suggestions = suggest_keys(
        melody_histogram=analysis["melody_histogram"], key=analysis["key"], vocal_low=55, vocal_high=72
    )
    by_shift = {item["transpose"]: item for item in suggestions}
    assert by_shift[0]["melody_low"] == "Eb4"
    assert (by_shift[2]["key"], by_shift[2]["melody_low"]) == ("F major", "F4")
    assert (by_shift[-1]["key"], by_shift[-1]["melody_low"]) == ("D major", "D4")
    assert (by_shift[1]["key"], by_shift[1]["melody_high"]) == ("E major", "E5")


def test_note_names_follow_the_key_in_force_where_the_notes_sound() -> None:
    # Given 32 bars in E major, then 16 bars in Ab major (the melody's top, Ab5, only in the Ab
    # section; the bass's top, Bb3, too)
    melody = scale_melody(64, 32) + scale_melody(68, 16, start_bar=32)
    harmony = chords(52, 32) + chords(56, 16, start_bar=32)
    arrangement = load_arrangement(song([Track(melody), Track(harmony, channel=1)]))
    analysis = arrangement.analysis
    assert [entry["key"] for entry in analysis["keys"]] == ["E major", "Ab major"]
    # Then each extreme is spelled in the key of the section where it sounds
    assert analysis["melody_range"] == {
        "low": "E4",
        "low_key": "E major",
        "high": "Ab5",
        "high_key": "Ab major",
    }
    assert (analysis["parts"][1]["low"], analysis["parts"][1]["high"]) == ("E2", "Bb3")
    # And so are the suggestions, each extreme in its own key transposed
    suggestions = suggest_keys(
        melody_histogram=analysis["melody_histogram"],
        key=analysis["key"],
        vocal_low=55,
        vocal_high=84,
        melody_range=analysis["melody_range"],
    )
    by_shift = {item["transpose"]: item for item in suggestions}
    assert (by_shift[2]["key"], by_shift[2]["melody_low"], by_shift[2]["melody_high"]) == (
        "F# major",
        "F#4",
        "Bb5",
    )
    assert (by_shift[-1]["melody_low"], by_shift[-1]["melody_high"]) == ("Eb4", "G5")
    # And a melody the producer names gets its range spelled the same way
    assert melody_analysis(arrangement, 0)["melody_range"] == analysis["melody_range"]


def test_suggestions_for_an_analysis_without_a_melody_range_use_the_main_key() -> None:
    suggestions = suggest_keys(
        melody_histogram=[[68, 4, 2.0], [80, 2, 1.0]],
        key="E major",
        vocal_low=60,
        vocal_high=84,
        melody_range={"low": "G#4", "low_key": "nonsense", "high": "G#5"},
    )
    assert {item["transpose"]: item for item in suggestions}[0]["melody_low"] == "G#4"
