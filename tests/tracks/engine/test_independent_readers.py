"""The engine's own readers checked against independent ones, on the real files in the repository.

The engine reads MIDI with its own SMF reader (byte-level validation first, every tempo change, pedal
and controller kept) and decodes nothing: it writes audio through ffmpeg. pretty_midi and pydub are not
used at run time (see the README), but they are independent implementations of the same formats, so
the tests use them as oracles: a bug in our reader or writer shows as a disagreement.
"""

from pathlib import Path

import numpy as np
import pretty_midi
import pytest
from pydub import AudioSegment

from tracks.engine import VariantSettings, load_arrangement, render_variant

from .conftest import MIDI_DIR

REAL_FILES = sorted(path.name for path in MIDI_DIR.glob("*.mid"))


@pytest.mark.parametrize("name", REAL_FILES)
def test_note_counts_agree_with_pretty_midi(name):
    # given
    path = MIDI_DIR / name
    oracle = pretty_midi.PrettyMIDI(str(path))

    # when
    analysis = load_arrangement(path).analysis

    # then: every note is read, drums and pitched parts alike
    pitched = sum(len(instrument.notes) for instrument in oracle.instruments if not instrument.is_drum)
    drums = sum(len(instrument.notes) for instrument in oracle.instruments if instrument.is_drum)
    assert sum(part["notes"] for part in analysis["parts"] if not part["is_drum"]) == pitched
    assert sum(part["notes"] for part in analysis["parts"] if part["is_drum"]) == drums


@pytest.mark.parametrize("name", REAL_FILES)
def test_note_times_agree_with_pretty_midi(name):
    # given: pretty_midi's note onsets and ends in seconds, through its own tempo map
    path = MIDI_DIR / name
    oracle = pretty_midi.PrettyMIDI(str(path))
    expected_starts = np.sort([note.start for inst in oracle.instruments for note in inst.notes])

    # when
    arrangement = load_arrangement(path)

    # then: every tempo change is honoured (286 of them in bohemian_gm.mid), to the millisecond,
    # counted from the end of the empty bars the engine cut before the music (one in bohemian_gm.mid)
    lead_s = oracle.tick_to_time(arrangement.lead_trim_ticks)
    assert np.sort(arrangement.notes.start) == pytest.approx(expected_starts - lead_s, abs=1e-3)


def test_a_rendered_mp3_decodes_to_its_reported_length_with_pydub(tmp_path: Path, soundfont: Path):
    # given
    arrangement = load_arrangement(MIDI_DIR / "folk_jig_melody.mid")

    # when
    result = render_variant(
        arrangement,
        VariantSettings(transpose=-3, tempo=1.25),
        out_path=tmp_path / "jig.mp3",
        soundfont=soundfont,
        stem_dir=tmp_path / "stems",
    )

    # then: an independent decoder agrees on the format and the length (within one MP3 frame)
    audio = AudioSegment.from_file(tmp_path / "jig.mp3", format="mp3")
    assert (audio.channels, audio.frame_rate) == (2, 44100)
    assert audio.duration_seconds == pytest.approx(result.duration_s, abs=0.03)
    assert audio.dBFS > -30
