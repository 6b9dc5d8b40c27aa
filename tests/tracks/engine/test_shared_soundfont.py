"""A SoundFont's samples are read only while presets use them, and shared by every render thread."""

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from tracks.engine import synth
from tracks.engine.synth import StemJob

FLUIDR3 = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
REPO_ROOT = Path(__file__).resolve().parents[3]
RATE = 44_100


def _rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def _in_thread(function) -> None:
    thread = threading.Thread(target=function)
    thread.start()
    thread.join()


def _fluidr3() -> Path:
    if not FLUIDR3.is_file():
        pytest.skip("fluid-soundfont-gm is not installed")
    return FLUIDR3


def _job(out: Path, programs: list[int], *, change_under_note: bool = False) -> StemJob:
    """Half a second of middle C per program on channel 0, one after another; with
    ``change_under_note`` the next program is selected while the previous note still sounds."""
    frame, status, d1, d2 = [], [], [], []
    step = RATE // 2
    for number, program in enumerate(programs):
        start = number * step
        frame += [start, start + 1]
        status += [0xC0, 0x90]
        d1 += [program, 60]
        d2 += [0, 100]
        off = start + step + (step // 2 if change_under_note else -100)
        frame.append(off)
        status.append(0x80)
        d1.append(60)
        d2.append(0)
    order = np.argsort(frame, kind="stable")
    frames = len(programs) * step + RATE
    return StemJob(
        out_path=str(out),
        n_frames=frames,
        end_frame=frames - RATE // 2,
        frame=np.array(frame, dtype=np.int64)[order],
        status=np.array(status, dtype=np.uint8)[order],
        d1=np.array(d1, dtype=np.int32)[order],
        d2=np.array(d2, dtype=np.int16)[order],
        sysex=[],
    )


def test_loading_a_soundfont_reads_no_samples_until_a_preset_plays() -> None:
    fluidr3 = _fluidr3()
    # given a fresh process without FluidR3 (in this one, an earlier test may have loaded it, and
    # FluidSynth's sample cache would then hide a load of every sample)
    script = (
        "import threading\n"
        "from pathlib import Path\n"
        "from tracks.engine import synth\n"
        "def rss():\n"
        "    return int(Path('/proc/self/status').read_text().split('VmRSS:')[1].split()[0]) / 1024\n"
        "before = rss()\n"
        "made = []\n"
        f"thread = threading.Thread(target=lambda: made.append(synth.Synth({str(fluidr3)!r})))\n"
        "thread.start()\n"
        "thread.join()\n"
        "print(rss() - before, made[0].soundfont)\n"
    )
    # when a render thread makes its synth with it (about 150 MB of samples in the file)
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    grown_mb, loaded = result.stdout.split()
    # then only the presets' descriptions were read, not the samples
    assert float(grown_mb) < 40
    assert loaded == str(fluidr3)


def test_render_threads_share_the_samples_they_use(tmp_path: Path) -> None:
    fluidr3 = _fluidr3()
    job = _job(tmp_path / "one.npy", [0, 48, 33])  # piano, strings, bass: tens of MB of samples
    first = synth.Synth(str(fluidr3))
    first.render(job)
    before = _rss_mb()
    # when two more threads render the same presets with synths of their own
    outputs = []
    for number in range(2):
        other_job = _job(tmp_path / f"other-{number}.npy", [0, 48, 33])

        def render(job: StemJob = other_job) -> None:
            synth.Synth(str(fluidr3)).render(job)
            outputs.append(np.load(job.out_path))

        _in_thread(render)
    # then the samples were not read into memory again, and the sound is the same
    assert _rss_mb() - before < 30
    reference = np.load(job.out_path)
    for output in outputs:
        np.testing.assert_array_equal(output, reference)


def test_a_render_keeps_what_it_used_and_lets_the_rest_go(tmp_path: Path, soundfont: Path) -> None:
    one = synth.Synth(str(soundfont))
    # given a render that played piano and strings
    one.render(_job(tmp_path / "a.npy", [0, 48]))
    assert one._pinned == {(0, 0), (0, 48)} | {(128, 0)}  # the drum channel's kit is selected too
    # when the next render plays only the bass
    one.render(_job(tmp_path / "b.npy", [33]))
    # then piano and strings are no longer held for it (the power-on piano stays on the other channels)
    assert one._pinned == one._used
    assert (0, 48) not in one._pinned
    assert (0, 33) in one._pinned


def test_a_program_change_under_a_ringing_note_renders_like_a_fresh_synth(
    tmp_path: Path, soundfont: Path
) -> None:
    # A voice that outlives its preset's selection must keep its samples until it ends.
    job = _job(tmp_path / "ringing.npy", [0, 48, 33, 0, 73], change_under_note=True)
    outputs = []
    for attempt in range(2):
        path = tmp_path / f"ringing-{attempt}.npy"
        synth.Synth(str(soundfont)).render(
            StemJob(path.as_posix(), job.n_frames, job.end_frame, job.frame, job.status, job.d1, job.d2, [])
        )
        outputs.append(np.load(path))
    assert np.abs(outputs[0]).max() > 0.01
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_threads_rendering_at_once_render_what_one_thread_renders(tmp_path: Path, soundfont: Path) -> None:
    # Loading and freeing samples on several threads at once must neither crash nor change the sound.
    programs = [[0, 48, 33], [24, 0, 56], [48, 73, 0], [33, 24, 48]]
    serial = []
    for number, chosen in enumerate(programs):
        job = _job(tmp_path / f"serial-{number}.npy", chosen, change_under_note=True)
        synth.Synth(str(soundfont)).render(job)
        serial.append(np.load(job.out_path))
    parallel: dict[int, np.ndarray] = {}

    def render(number: int) -> None:
        own = synth.Synth(str(soundfont))
        for round_number in range(3):
            job = _job(
                tmp_path / f"parallel-{number}-{round_number}.npy", programs[number], change_under_note=True
            )
            own.render(job)
            parallel[number * 10 + round_number] = np.load(job.out_path)

    threads = [threading.Thread(target=render, args=(number,)) for number in range(len(programs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for key, output in parallel.items():
        np.testing.assert_array_equal(output, serial[key // 10])


def test_switching_sound_sets_moves_the_synth_to_the_new_one(tmp_path: Path, soundfont: Path) -> None:
    fluidr3 = _fluidr3()
    one = synth.Synth(str(soundfont))
    one.render(_job(tmp_path / "tim.npy", [0]))
    # when the same thread's synth is asked for another SoundFont
    one.load(str(fluidr3))
    one.render(_job(tmp_path / "fluid.npy", [0]))
    # then it plays that one
    assert one.soundfont == str(fluidr3)
    assert not np.array_equal(np.load(tmp_path / "tim.npy"), np.load(tmp_path / "fluid.npy"))


def test_switching_sound_sets_unloads_the_one_nobody_uses(soundfont: Path) -> None:
    fluidr3 = _fluidr3()
    shared = synth._SharedSoundFonts()
    # given a SoundFont taken and given back
    shared.acquire(str(soundfont))
    shared.release(str(soundfont))
    # when another is needed
    shared.acquire(str(fluidr3))
    # then only the one in use stays loaded
    assert list(shared._fonts) == [str(fluidr3)]
    shared.release(str(fluidr3))
    assert list(shared._fonts) == [str(fluidr3)]  # the last one is kept for the next render


def test_a_preset_stays_loaded_while_any_thread_holds_it(tmp_path: Path, soundfont: Path) -> None:
    key = (str(soundfont), (0, 48))
    held = synth._SHARED._pins.get(key, 0)  # by synths of earlier tests
    first, second = synth.Synth(str(soundfont)), []
    first.render(_job(tmp_path / "a.npy", [48]))
    _in_thread(lambda: second.append(synth.Synth(str(soundfont))))
    _in_thread(lambda: second[0].render(_job(tmp_path / "b.npy", [48])))
    # both synths hold the strings
    assert synth._SHARED._pins[key] == held + 2
    # when one moves on to another song, the other still holds them
    first.render(_job(tmp_path / "c.npy", [33]))
    assert synth._SHARED._pins[key] == held + 1
    _in_thread(lambda: second[0].render(_job(tmp_path / "d.npy", [33])))
    assert synth._SHARED._pins.get(key, 0) == held


def test_without_preset_pinning_every_sample_is_loaded_and_renders_alike(
    tmp_path: Path, soundfont: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a FluidSynth older than 2.3, which cannot pin presets
    def no_pinning(*_args: object) -> int:
        raise AssertionError("pinned a preset without FluidSynth support")

    monkeypatch.setattr(synth, "DYNAMIC_SAMPLES", False)
    monkeypatch.setattr(synth, "_SHARED", synth._SharedSoundFonts())
    monkeypatch.setattr(synth._lib, "fluid_synth_pin_preset", no_pinning)
    monkeypatch.setattr(synth._lib, "fluid_synth_unpin_preset", no_pinning)
    job = _job(tmp_path / "old.npy", [0, 48, 33], change_under_note=True)
    # when a synth renders
    synth.Synth(str(soundfont)).render(job)
    synth.Synth(str(soundfont)).render(_job(tmp_path / "again.npy", [33]))
    # then it played, loading the whole SoundFont as before, and the stem cache knows the difference
    played = np.load(job.out_path)
    assert np.abs(played).max() > 0.01
    assert "samples loaded per preset" not in synth.synth_identity()
