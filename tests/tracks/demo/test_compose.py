"""Generated demo songs: valid MIDI with the parts and length asked for, the same every time."""

import io
import itertools

import mido
import pytest

from tracks.demo import compose_song
from tracks.engine.errors import InvalidSettings


def _load(data: bytes) -> mido.MidiFile:
    return mido.MidiFile(file=io.BytesIO(data))


def _names(midi: mido.MidiFile) -> list[str]:
    return [track.name for track in midi.tracks]


def _notes(track: mido.MidiTrack) -> list[tuple[int, int, int]]:
    """(start tick, end tick, pitch) of every note in ``track``."""
    now, started, notes = 0, {}, []
    for message in track:
        now += message.time
        if message.type == "note_on" and message.velocity > 0:
            started[message.note] = now
        elif message.type in ("note_on", "note_off") and message.note in started:
            notes.append((started.pop(message.note), now, message.note))
    return notes


def _seconds(midi: mido.MidiFile) -> float:
    """Length from the end of the longest track at the song's single tempo (mido's own is slow)."""
    tempo = next(m.tempo for m in midi.tracks[0] if m.type == "set_tempo")
    ticks = max(sum(message.time for message in track) for track in midi.tracks)
    return mido.tick2second(ticks, midi.ticks_per_beat, tempo)


def _track(midi: mido.MidiFile, name: str) -> mido.MidiTrack:
    return next(track for track in midi.tracks if track.name == name)


def test_pop_song_has_a_singable_lead_melody_drums_on_channel_10_and_eight_parts():
    # Given a 3-minute pop song
    midi = _load(compose_song(style="pop", minutes=3.0, parts=8, seed=4))

    # Then it is a type 1 file with a conductor track and eight named, programmed parts
    assert (midi.type, midi.ticks_per_beat) == (1, 480)
    assert _names(midi)[1:] == ["Lead melody", "Drums", "Bass", "Piano", "Guitar", "Strings", "Pad", "Brass"]
    conductor = midi.tracks[0]
    assert any(m.type == "time_signature" and (m.numerator, m.denominator) == (4, 4) for m in conductor)
    assert any(m.type == "key_signature" and m.key == "D" for m in conductor)
    assert any(m.type == "marker" and m.text == "Chorus 1" for m in conductor)
    tempo = next(m.tempo for m in conductor if m.type == "set_tempo")
    assert 100 <= mido.tempo2bpm(tempo) <= 110

    drums = _track(midi, "Drums")
    assert {m.channel for m in drums if m.type == "note_on"} == {9}
    for track in midi.tracks[1:]:
        if track.name != "Drums":
            assert any(m.type == "program_change" for m in track), track.name

    # And the melody is one voice at a time, within A3..E5, with a few pitch bends
    melody = _track(midi, "Lead melody")
    notes = sorted(_notes(melody))
    assert all(end <= next_start for (_, end, _), (next_start, _, _) in itertools.pairwise(notes))
    pitches = [pitch for _, _, pitch in notes]
    assert min(pitches) >= 57
    assert max(pitches) <= 76
    assert any(m.type == "pitchwheel" for m in melody)
    assert any(m.type == "control_change" and m.control == 64 for m in _track(midi, "Piano"))


@pytest.mark.parametrize("minutes", [1.0, 10.0])
def test_song_lasts_as_long_as_asked(minutes):
    midi = _load(compose_song(style="pop", minutes=minutes, parts=8, seed=1))
    assert _seconds(midi) == pytest.approx(minutes * 60, rel=0.05)
    assert sum(m.type == "note_on" for track in midi.tracks for m in track) < 50_000


def test_ballad_is_in_three_four_with_a_melody_part():
    midi = _load(compose_song(style="ballad", minutes=2.0, parts=6, seed=2))
    conductor = midi.tracks[0]
    assert any(m.type == "time_signature" and m.numerator == 3 for m in conductor)
    assert any(m.type == "key_signature" and m.key == "Bb" for m in conductor)
    assert mido.tempo2bpm(next(m.tempo for m in conductor if m.type == "set_tempo")) < 80
    assert _names(midi)[1:] == ["Melody", "Piano", "Bass", "Strings", "Drums", "Pad"]
    assert midi.length == pytest.approx(120, rel=0.05)
    assert _seconds(midi) == pytest.approx(midi.length, abs=0.01)


def test_parts_counts_the_instruments_starting_with_melody_and_drums():
    midi = _load(compose_song(style="pop", minutes=0.5, parts=2))
    assert _names(midi)[1:] == ["Lead melody", "Drums"]


def test_the_same_seed_gives_the_same_song_and_another_seed_another():
    assert compose_song(minutes=1.0, seed=7) == compose_song(minutes=1.0, seed=7)
    assert compose_song(minutes=1.0, seed=7) != compose_song(minutes=1.0, seed=8)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"style": "polka"}, "style"),
        ({"parts": 1}, "parts"),
        ({"parts": 9}, "parts"),
        ({"minutes": 0}, "minutes"),
        ({"minutes": 25}, "minutes"),
    ],
)
def test_impossible_requests_are_refused(kwargs, reason):
    with pytest.raises(InvalidSettings, match=reason):
        compose_song(**kwargs)
