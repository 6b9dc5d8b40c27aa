"""Writing MP3 and WAV files: playable, tagged, and never half-written."""

import subprocess
import threading
import wave
from pathlib import Path
from typing import cast

import numpy as np
import pytest
from mutagen.id3 import ID3
from mutagen.wave import WAVE

import tracks.engine.encode as encode_module
from tracks.engine import EngineConfig, mp3frames
from tracks.engine.encode import (
    AudioWriter,
    Mp3Encoder,
    SegmentedMp3Encoder,
    SpliceFailed,
    open_audio_writer,
    open_mp3_encoder,
    probe_duration,
    write_audio,
)
from tracks.engine.errors import InvalidSettings, RenderFailed

RATE = 44100
TAGS = {"title": "Wonderwall (A major, 0.9x)", "artist": "Backtrack", "key": "A major", "bpm": "78.6"}


def _tone(seconds: float, level: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    left = level * np.sin(2 * np.pi * 440 * t)
    return np.stack([left, 0.5 * left], axis=1).astype(np.float32)


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """An empty directory of our own (other fixtures may put things in tmp_path)."""
    directory = tmp_path / "out"
    directory.mkdir()
    return directory


def _leftovers(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def test_mp3_is_playable_for_the_right_duration_and_carries_its_tags(out_dir):
    # Given 3 seconds of mastered audio
    out = out_dir / "render.mp3"

    # When it is written as MP3 with tags
    write_audio(_tone(3.0), RATE, out, tags=TAGS)

    # Then ffprobe decodes it at its length and a tag reader sees title, key and tempo
    assert probe_duration(out) == pytest.approx(3.0, abs=0.1)
    tags = ID3(out)
    assert tags["TIT2"].text == [TAGS["title"]]
    assert tags["TPE1"].text == ["Backtrack"]
    assert tags["TKEY"].text == ["A major"]
    assert tags["TBPM"].text == ["79"]
    assert _leftovers(out_dir) == ["render.mp3"]


def test_streaming_encoder_publishes_the_file_only_when_closed(out_dir):
    # Given an encoder fed block by block, as a render feeds it while mixing
    out = out_dir / "stream.mp3"
    with open_mp3_encoder(out, RATE, tags={"title": "Streamed"}, quality=7) as encoder:
        for block in np.array_split(_tone(2.0), 7):
            encoder.write(block)
        # When it is still running
        # Then nothing is visible under the final name
        assert not out.exists()

    # And once closed the whole file is there
    assert probe_duration(out) == pytest.approx(2.0, abs=0.1)
    assert ID3(out)["TIT2"].text == ["Streamed"]
    assert _leftovers(out_dir) == ["stream.mp3"]


def test_an_error_while_streaming_leaves_no_file(out_dir):
    out = out_dir / "broken.mp3"

    def render() -> None:
        with open_mp3_encoder(out, RATE) as encoder:
            encoder.write(_tone(0.5))
            raise RuntimeError("synthesis crashed")

    with pytest.raises(RuntimeError):
        render()
    assert _leftovers(out_dir) == []


def test_wav_is_16_bit_pcm_of_the_same_audio(out_dir):
    # Given a tone
    samples = _tone(1.0)
    out = out_dir / "render.wav"

    # When it is written as WAV
    write_audio(samples, RATE, out, tags={"title": "Tone"})

    # Then it reads back as 16-bit stereo at the same rate, equal to the input within the dither
    assert cast(ID3, WAVE(out).tags)["TIT2"].text == ["Tone"]
    with wave.open(str(out)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (2, 2, RATE)
        frames = reader.readframes(reader.getnframes())
    decoded = np.frombuffer(frames, dtype="<i2").reshape(-1, 2) / 32767.0
    np.testing.assert_allclose(decoded, samples, atol=2.5 / 32767)
    assert probe_duration(out) == pytest.approx(1.0, abs=0.01)


def test_float_wav_keeps_samples_exactly(out_dir):
    samples = _tone(0.5)
    out = out_dir / "render.wav"
    write_audio(samples, RATE, out, float_wav=True)
    data = np.frombuffer(out.read_bytes()[44:], dtype="<f4").reshape(-1, 2)
    np.testing.assert_array_equal(data, samples)


def test_samples_over_full_scale_are_clipped_not_wrapped(out_dir):
    # Given samples beyond full scale (a limiter bug upstream)
    loud = np.full((RATE // 2, 2), 1.7, dtype=np.float32)
    loud[::2] *= -1
    out = out_dir / "loud.wav"

    # When written as 16-bit
    write_audio(loud, RATE, out)

    # Then they stay at the rails instead of wrapping around to the other sign
    decoded = np.frombuffer(out.read_bytes()[44:], dtype="<i2").reshape(-1, 2)
    assert decoded[1::2].min() >= 32766
    assert decoded[::2].max() <= -32767


@pytest.mark.parametrize("bitrate", ["7k", "193k", "loud"])
def test_a_bad_bitrate_is_refused_and_leaves_nothing(out_dir, bitrate):
    out = out_dir / "render.mp3"
    with pytest.raises(InvalidSettings, match="bitrate"):
        write_audio(_tone(0.5), RATE, out, bitrate=bitrate)
    assert _leftovers(out_dir) == []


def test_an_unwritable_directory_fails_with_a_reason(out_dir):
    out = out_dir / "missing" / "render.mp3"
    with pytest.raises(RenderFailed, match="cannot write"):
        write_audio(_tone(0.5), RATE, out)
    assert not out.exists()


def test_a_failing_ffmpeg_leaves_neither_the_file_nor_a_partial(out_dir, monkeypatch):
    # Given an ffmpeg that starts writing its output, then dies with an error
    fake = out_dir / "bin" / "ffmpeg"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        'for last; do :; done\nprintf "ID3 half an mp3" > "$last"\n'
        "head -c 1000 >/dev/null\n"
        'echo "Error while encoding: No space left on device" >&2\nexit 1\n'
    )
    fake.chmod(0o755)
    out_dir = out_dir / "renders"
    out_dir.mkdir()

    # When a render is encoded with it
    with pytest.raises(RenderFailed, match="ffmpeg failed: Error while encoding: No space left on device"):
        write_audio(_tone(2.0), RATE, out_dir / "render.mp3", config=EngineConfig(ffmpeg=str(fake)))

    # Then the directory holds nothing at all
    assert _leftovers(out_dir) == []


def test_nothing_to_encode_is_a_failure(out_dir):
    with pytest.raises(RenderFailed, match="silent"):
        write_audio(np.zeros((0, 2), dtype=np.float32), RATE, out_dir / "empty.mp3")
    assert _leftovers(out_dir) == []


def test_an_unknown_format_is_refused(out_dir):
    with pytest.raises(InvalidSettings, match=r"\.mp3 or \.wav"):
        write_audio(_tone(0.5), RATE, out_dir / "render.ogg")
    assert _leftovers(out_dir) == []


def _music(seconds: float) -> np.ndarray:
    """A chord with percussive clicks, so LAME switches window shapes now and then."""
    t = np.arange(int(seconds * RATE)) / RATE
    chord = sum(0.15 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))
    clicks = np.zeros_like(t)
    clicks[:: RATE // 4] = 0.5
    left = chord + np.convolve(clicks, np.exp(-np.arange(200) / 30.0))[: t.size]
    return np.stack([left, np.roll(left, 300)], axis=1).astype(np.float32)


def _decode(path: Path) -> np.ndarray:
    raw = subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-i", str(path), "-f", "f32le", "-"], capture_output=True, check=True
    ).stdout
    return np.frombuffer(raw, dtype="<f4").reshape(-1, 2)


def _snr_db(reference: np.ndarray, decoded: np.ndarray) -> float:
    error = decoded - reference
    return float(10 * np.log10(np.sum(reference**2) / np.sum(error**2)))


def _feed_in_parallel(writer: AudioWriter, samples: np.ndarray) -> None:
    def feed(index: int) -> None:
        start, stop = writer.segments[index]
        end = samples.shape[0] if stop is None else stop
        for position in range(start, end, 10_000):
            writer.write_segment(index, samples[position : min(end, position + 10_000)])

    threads = [threading.Thread(target=feed, args=(index,)) for index in range(len(writer.segments))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_segments_encoded_in_parallel_splice_into_one_gapless_stream(out_dir):
    # Given 8 s of music split into three segments, each fed from its own thread
    samples = _music(8.0)
    out = out_dir / "spliced.mp3"
    writer = SegmentedMp3Encoder(out, RATE, total_frames=samples.shape[0], count=3, tags=TAGS)
    assert len(writer.segments) == 3
    _feed_in_parallel(writer, samples)
    writer.close()

    # Then the file decodes to exactly the input length (the LAME tag's padding is right) ...
    decoded = _decode(out)
    assert decoded.shape == samples.shape
    # ... as faithfully as one encoder would have done it, including around the splices
    single = out_dir / "single.mp3"
    write_audio(samples, RATE, single)
    reference_snr = _snr_db(samples, _decode(single))
    assert _snr_db(samples, decoded) > reference_snr - 1.0
    for start, _stop in writer.segments[1:]:
        around = slice(start, start + 40 * 1152)  # warm-up frames, the splice and what follows
        assert _snr_db(samples[around], decoded[around]) > reference_snr - 3.0
    # ... it carries the tags, and nothing else is left in the directory
    assert ID3(out)["TKEY"].text == ["A major"]
    assert probe_duration(out) == pytest.approx(8.0, abs=0.05)
    assert _leftovers(out_dir) == ["single.mp3", "spliced.mp3"]


def test_the_spliced_stream_has_a_consistent_lame_tag(out_dir):
    samples = _music(6.0)
    out = out_dir / "spliced.mp3"
    with SegmentedMp3Encoder(out, RATE, total_frames=samples.shape[0], count=2) as writer:
        writer.write(samples)  # fed in order from one thread also works

    # (no tags were asked for, so the file starts with the Info frame)
    data = out.read_bytes()
    offsets = mp3frames.frame_offsets(out)
    info = data[: offsets[1]]
    tag = mp3frames.info_offset(info)
    assert tag is not None
    frames = int.from_bytes(info[tag + 8 : tag + 12], "big")
    assert frames == len(offsets) - 2
    assert int.from_bytes(info[tag + 12 : tag + 16], "big") == len(data)
    delay_padding = int.from_bytes(info[tag + 141 : tag + 144], "big")
    assert delay_padding >> 12 == mp3frames.ENCODER_DELAY
    assert frames * 1152 - (delay_padding >> 12) - (delay_padding & 0xFFF) == samples.shape[0]
    assert int.from_bytes(info[tag + 152 : tag + 154], "big") == mp3frames.crc16(data[offsets[1] :])
    assert int.from_bytes(info[tag + 154 : tag + 156], "big") == mp3frames.crc16(info[: tag + 154])
    # No frame borrows bytes from the one before (no bit reservoir), so any two can follow each other.
    for offset in offsets[1:-1]:
        main_data_begin = int.from_bytes(data[offset + 4 : offset + 6], "big") >> 7
        assert main_data_begin == 0
    toc = info[tag + 16 : tag + 116]
    assert toc[0] == 0
    assert list(toc) == sorted(toc)
    assert toc[50] == pytest.approx(128, abs=3)


def test_open_audio_writer_segments_only_long_stereo_mp3s(out_dir):
    long_song = 60 * RATE
    with open_audio_writer(out_dir / "a.mp3", RATE, total_frames=long_song, parallel=2) as writer:
        assert isinstance(writer, SegmentedMp3Encoder)
        assert len(writer.segments) == 2
        writer.abort()
    short = open_audio_writer(out_dir / "b.mp3", RATE, total_frames=15 * RATE, parallel=2)
    serial = open_audio_writer(out_dir / "c.mp3", RATE, total_frames=long_song, parallel=1)
    wav = open_audio_writer(out_dir / "d.wav", RATE, total_frames=long_song, parallel=2)
    for writer in (short, serial, wav):
        assert len(writer.segments) == 1
        writer.abort()
    assert _leftovers(out_dir) == []


def test_a_segment_fed_the_wrong_length_fails_and_leaves_nothing(out_dir):
    samples = _music(4.0)
    writer = SegmentedMp3Encoder(out_dir / "x.mp3", RATE, total_frames=samples.shape[0], count=2)
    start, stop = writer.segments[0]
    writer.write_segment(0, samples[start:stop])
    writer.write_segment(1, samples[writer.segments[1][0] : -1000])
    with pytest.raises(RenderFailed, match="segment 1"):
        writer.close()
    assert _leftovers(out_dir) == []


def test_a_failing_segment_encoder_leaves_nothing(out_dir, monkeypatch):
    fake = out_dir / "bin" / "ffmpeg"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nhead -c 1000 >/dev/null\necho 'Error: out of memory' >&2\nexit 1\n")
    fake.chmod(0o755)
    out_dir = out_dir / "renders"
    out_dir.mkdir()
    samples = _music(4.0)

    with (
        pytest.raises(RenderFailed, match="ffmpeg failed: Error: out of memory"),
        SegmentedMp3Encoder(
            out_dir / "x.mp3", RATE, total_frames=samples.shape[0], count=2, ffmpeg=str(fake)
        ) as writer,
    ):
        writer.write(samples)
    assert _leftovers(out_dir) == []


def test_too_short_for_segments_is_refused(out_dir):
    with pytest.raises(InvalidSettings, match="too few"):
        SegmentedMp3Encoder(out_dir / "x.mp3", RATE, total_frames=RATE, count=2)
    assert _leftovers(out_dir) == []


def test_more_audio_than_a_segmented_encoder_was_opened_for_is_refused(out_dir):
    samples = _music(4.0)
    writer = SegmentedMp3Encoder(out_dir / "x.mp3", RATE, total_frames=samples.shape[0] - 500, count=2)
    with pytest.raises(RenderFailed, match="fewer frames"):
        writer.write(samples)
    assert _leftovers(out_dir) == []


def test_ffmpegs_lame_tag_is_laid_out_as_the_splicer_expects(out_dir):
    # Given 2 s encoded by this machine's ffmpeg exactly as a segment is (same command and options)
    samples = _tone(2.0)
    path = out_dir / "segment.mp3"
    lame = encode_module._Lame(
        path, RATE, channels=2, kbps=192, quality=7, ffmpeg="ffmpeg", options=SegmentedMp3Encoder.LAME_OPTIONS
    )
    lame.write(samples.astype("<f4").tobytes())
    lame.finish()

    # When its first frame is read as the splicer reads it
    data = path.read_bytes()
    offsets = mp3frames.frame_offsets(path)  # the file is bare frames: no ID3 tag in front
    info = data[: offsets[1]]
    tag = mp3frames.info_offset(info)

    # Then the Info tag sits after the stereo side info, with every field at the offset patched later
    assert tag == 4 + 32
    assert info[tag : tag + 4] == b"Info"
    assert int.from_bytes(info[tag + 4 : tag + 8], "big") == 0x0F  # frames, bytes, TOC, quality
    assert int.from_bytes(info[tag + 8 : tag + 12], "big") == len(offsets) - 2  # audio frames
    assert int.from_bytes(info[tag + 12 : tag + 16], "big") == len(data)  # stream bytes
    delay_padding = int.from_bytes(info[tag + 141 : tag + 144], "big")
    assert delay_padding >> 12 == mp3frames.ENCODER_DELAY
    assert (len(offsets) - 2) * 1152 - mp3frames.ENCODER_DELAY - (delay_padding & 0xFFF) == samples.shape[0]
    assert int.from_bytes(info[tag + 148 : tag + 152], "big") == len(data)  # music length
    assert int.from_bytes(info[tag + 152 : tag + 154], "big") == mp3frames.crc16(data[offsets[1] :])
    assert tag + 154 == 190  # the tag CRC field follows the 190 bytes it covers
    assert int.from_bytes(info[tag + 154 : tag + 156], "big") == mp3frames.crc16(info[:190])
    # And the splicer accepts it
    assert mp3frames.read_segment(path, first_frame=0).audio_frames == len(offsets) - 2


def test_a_splice_that_fails_leaves_nothing_and_later_mp3s_get_one_segment(out_dir, monkeypatch, caplog):
    # Given an ffmpeg whose LAME tag the splicer does not recognise
    monkeypatch.setattr(encode_module, "_UNSPLICEABLE", set())

    def unexpected_layout(path, *, first_frame):
        raise mp3frames.Mp3FormatError(f"{Path(path).name}: unexpected Info tag layout")

    monkeypatch.setattr(mp3frames, "read_segment", unexpected_layout)
    samples = _music(4.0)

    # When a segmented MP3 is finished
    writer = SegmentedMp3Encoder(out_dir / "x.mp3", RATE, total_frames=samples.shape[0], count=2)
    writer.write(samples)
    with pytest.raises(SpliceFailed, match="could not splice"):
        writer.close()

    # Then nothing is left behind, a warning says why, and that ffmpeg's long MP3s get one segment now
    assert _leftovers(out_dir) == []
    assert "encoded in one segment" in caplog.text
    later = open_audio_writer(out_dir / "y.mp3", RATE, total_frames=60 * RATE, parallel=2)
    assert isinstance(later, Mp3Encoder)
    assert len(later.segments) == 1
    later.abort()
