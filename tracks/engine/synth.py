"""FluidSynth driven sample-accurately from Python, straight into float32 files.

One synth per process with the SoundFont loaded once: loading FluidR3 costs far more than a short
render, so the synth lives as long as the worker and is reset between renders. Events are applied
between ``fluid_synth_write_float`` blocks at their exact sample frame (our own scheduler: FluidSynth's
player would need a MIDI file and its own timing). Once the last event has been played and no voice
has sounded for a while, the rest of the stem is written as zeros without synthesis. Quiet stretches
*between* events are synthesized: skipping them would stop FluidSynth's clock, and with it the
modulation of its reverb and chorus, so a stem would no longer add up to the mix rendered in one synth
(measured: correlation 0.47 instead of 0.999998 between a group render and the sum of per-part stems).
"""

import contextlib
import ctypes
import io
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .errors import RenderFailed
from .smf import STATUS_SYSEX

# pyfluidsynth prints where it found the library whenever a CI variable is set; the CLI's stdout
# must stay pure JSON, so that line is swallowed.
with contextlib.redirect_stdout(io.StringIO()):
    import fluidsynth

BLOCK_FRAMES = 8192
FLUID_BLOCK = 64
QUIET_AFTER_S = 2.0  # once no voice sounds for this long, the reverb tail has died away
CHANNELS = 16
_CC_SUSTAIN, _CC_SOSTENUTO, _CC_ALL_NOTES_OFF = 64, 66, 123
# Reverb and chorus set explicitly, not left to whichever FluidSynth version's defaults: a medium
# room, a little damped so pads stay clear of the voice, and a light chorus. They are part of the
# stem cache's key (see ``synth_identity``), so changing them never serves stems made with others.
EFFECTS: dict[str, float | int] = {
    "synth.reverb.active": 1,
    "synth.reverb.room-size": 0.5,
    "synth.reverb.damp": 0.3,
    "synth.reverb.width": 0.8,
    "synth.reverb.level": 0.6,
    "synth.chorus.active": 1,
    "synth.chorus.nr": 3,
    "synth.chorus.level": 1.2,
    "synth.chorus.speed": 0.3,
    "synth.chorus.depth": 8.0,
}

_lib = ctypes.CDLL(fluidsynth.lib)
_void_p, _int, _double = ctypes.c_void_p, ctypes.c_int, ctypes.c_double
_SIGNATURES: dict[str, tuple[type, list[type]]] = {
    "new_fluid_settings": (_void_p, []),
    "delete_fluid_settings": (None, [_void_p]),  # type: ignore[dict-item]
    "fluid_settings_setnum": (_int, [_void_p, ctypes.c_char_p, _double]),
    "fluid_settings_setint": (_int, [_void_p, ctypes.c_char_p, _int]),
    "fluid_version_str": (ctypes.c_char_p, []),
    "new_fluid_synth": (_void_p, [_void_p]),
    "delete_fluid_synth": (None, [_void_p]),  # type: ignore[dict-item]
    "fluid_synth_sfload": (_int, [_void_p, ctypes.c_char_p, _int]),
    "fluid_synth_sfunload": (_int, [_void_p, _int, _int]),
    "fluid_synth_system_reset": (_int, [_void_p]),
    "fluid_synth_write_float": (_int, [_void_p, _int, _void_p, _int, _int, _void_p, _int, _int]),
    "fluid_synth_noteon": (_int, [_void_p, _int, _int, _int]),
    "fluid_synth_noteoff": (_int, [_void_p, _int, _int]),
    "fluid_synth_cc": (_int, [_void_p, _int, _int, _int]),
    "fluid_synth_program_change": (_int, [_void_p, _int, _int]),
    "fluid_synth_pitch_bend": (_int, [_void_p, _int, _int]),
    "fluid_synth_channel_pressure": (_int, [_void_p, _int, _int]),
    "fluid_synth_key_pressure": (_int, [_void_p, _int, _int, _int]),
    "fluid_synth_sysex": (
        _int,
        [_void_p, ctypes.c_char_p, _int, _void_p, _void_p, _void_p, _int],
    ),
    "fluid_synth_get_active_voice_count": (_int, [_void_p]),
    "fluid_synth_all_sounds_off": (_int, [_void_p, _int]),
    "fluid_synth_get_sfont_by_id": (_void_p, [_void_p, _int]),
    "fluid_synth_remove_sfont": (_int, [_void_p, _void_p]),
    "fluid_synth_add_sfont": (_int, [_void_p, _void_p]),
    "fluid_synth_program_reset": (_int, [_void_p]),
    "fluid_synth_get_channel_preset": (_void_p, [_void_p, _int]),
    "fluid_preset_get_banknum": (_int, [_void_p]),
    "fluid_preset_get_num": (_int, [_void_p]),
    "fluid_synth_pin_preset": (_int, [_void_p, _int, _int, _int]),
    "fluid_synth_unpin_preset": (_int, [_void_p, _int, _int, _int]),
}
# Pinning presets (FluidSynth 2.3+) is what makes loading samples on demand safe across renders;
# an older FluidSynth loads every sample of a SoundFont, as it did before.
_PINNING = {"fluid_synth_pin_preset", "fluid_synth_unpin_preset"}
DYNAMIC_SAMPLES = all(hasattr(_lib, name) for name in _PINNING)
for _name, (_restype, _argtypes) in _SIGNATURES.items():
    if _name in _PINNING and not DYNAMIC_SAMPLES:
        continue
    _function = getattr(_lib, _name)
    _function.restype = _restype
    _function.argtypes = _argtypes

# A fresh synth warns about channels without presets until the SoundFont is moved in: noise.
_FLUID_WARN = 2
_lib.fluid_set_log_function.restype = _void_p
_lib.fluid_set_log_function.argtypes = [_int, _void_p, _void_p]
_lib.fluid_set_log_function(_FLUID_WARN, None, None)


def fluidsynth_version() -> str:
    return (_lib.fluid_version_str() or b"unknown").decode()


def synth_identity() -> str:
    """What besides the events and the SoundFont decides a stem's samples: FluidSynth and its effects."""
    effects = ",".join(f"{name}={value}" for name, value in sorted(EFFECTS.items()))
    loading = "samples loaded per preset; " if DYNAMIC_SAMPLES else ""
    return f"fluidsynth {fluidsynth_version()}; {loading}{effects}"


@dataclass(frozen=True)
class StemJob:
    """Events for one render (a part, a group of parts, or the click) and where to write it."""

    out_path: str
    n_frames: int
    end_frame: int
    frame: np.ndarray
    status: np.ndarray
    d1: np.ndarray
    d2: np.ndarray
    sysex: list[bytes]
    # Through the reverb and chorus. The click is not: a click is for timing, and its dry attack is
    # what a player locks to (it also saves the stem an effects pass, most of a click stem's cost).
    effects: bool = True


@dataclass(frozen=True)
class StemResult:
    out_path: str
    synthesized_frames: int


# Every FluidSynth call that may read or free samples (selecting a preset, pinning or unpinning one,
# adding, removing or unloading a SoundFont, deleting a synth) holds this lock: the synths of a
# process share their SoundFonts, whose sample bookkeeping FluidSynth does not lock, and its sample
# cache takes a reference to a cached sample after releasing its own lock. Rendering frees nothing
# (see ``Synth``), so ``fluid_synth_write_float`` runs unlocked on every thread at once.
_SAMPLES_LOCK = threading.Lock()

Preset = tuple[int, int]  # (bank, program)


class _SharedSoundFonts:
    """Each SoundFont loaded once per process, lent to every synth, its samples read only while used.

    FluidR3 holds ~150 MB of samples, of which a song uses a few dozen MB. A SoundFont is loaded by a
    small owner synth of its own (which selects no preset) with FluidSynth's dynamic sample loading,
    and added to each render thread's synth with ``fluid_synth_add_sfont``: the synths share its
    presets and one copy of each sample. A preset's samples are read when a synth selects it and
    stay while any render that selected it runs (:meth:`pin`); then they are freed. Measured with
    FluidR3, two render threads, three songs in a row: peak RSS 293 MB with the whole SoundFont in
    memory, 196 MB with only what the songs play. A SoundFont no synth uses is kept until another
    one is needed, then unloaded.
    """

    def __init__(self) -> None:
        self._fonts: dict[str, tuple[int, int, int, int]] = {}  # path: (settings, owner, sfont id, sfont)
        self._users: dict[str, int] = {}
        self._pins: dict[tuple[str, Preset], int] = {}  # renders holding a preset's samples

    def acquire(self, path: str) -> int:
        """The loaded SoundFont at ``path`` (loading it if needed); pair with :meth:`release`."""
        with _SAMPLES_LOCK:
            if path not in self._fonts:
                self._drop_idle(keep=None)
                settings = _lib.new_fluid_settings()
                _lib.fluid_settings_setint(settings, b"synth.dynamic-sample-loading", int(DYNAMIC_SAMPLES))
                owner = _lib.new_fluid_synth(settings)
                sfont_id = _lib.fluid_synth_sfload(owner, os.fsencode(path), 0) if owner else -1
                sfont = _lib.fluid_synth_get_sfont_by_id(owner, sfont_id) if sfont_id >= 0 else None
                if not sfont:
                    if owner:
                        _lib.delete_fluid_synth(owner)
                    _lib.delete_fluid_settings(settings)
                    raise RenderFailed(f"FluidSynth could not load the SoundFont {path}")
                self._fonts[path] = (settings, owner, sfont_id, sfont)
                self._users[path] = 0
            self._users[path] += 1
            return self._fonts[path][3]

    def release(self, path: str) -> None:
        with _SAMPLES_LOCK:
            self._users[path] -= 1
            self._drop_idle(keep=path)

    def pin(self, path: str, preset: Preset, *, synth: int, font_id: int) -> None:
        """Keep ``preset``'s samples loaded for one more render; call holding ``_SAMPLES_LOCK``."""
        key = (path, preset)
        if self._pins.get(key, 0) == 0 and DYNAMIC_SAMPLES:
            _lib.fluid_synth_pin_preset(synth, font_id, *preset)
        self._pins[key] = self._pins.get(key, 0) + 1

    def unpin(self, path: str, preset: Preset, *, synth: int, font_id: int) -> None:
        """One render fewer holds ``preset``; call holding ``_SAMPLES_LOCK``."""
        key = (path, preset)
        self._pins[key] -= 1
        if self._pins[key] == 0:
            del self._pins[key]
            if DYNAMIC_SAMPLES:
                _lib.fluid_synth_unpin_preset(synth, font_id, *preset)

    def _drop_idle(self, keep: str | None) -> None:
        for path in [path for path, users in self._users.items() if users == 0 and path != keep]:
            settings, owner, sfont_id, _sfont = self._fonts.pop(path)
            del self._users[path]
            _lib.fluid_synth_sfunload(owner, sfont_id, 0)
            _lib.delete_fluid_synth(owner)
            _lib.delete_fluid_settings(settings)


_SHARED = _SharedSoundFonts()


class Synth:
    """One FluidSynth instance; reuse it through ``thread_synth``.

    Every preset a render selects is pinned at once and stays pinned until the render has ended, so
    no voice can free samples from inside ``fluid_synth_write_float`` (a voice outliving its preset's
    selection, under a program change, would), and a render never frees what another thread's
    render plays. At the end of a render the presets it did not use are unpinned; the ones it used
    stay, so the next render of the same song (a remix, its stems) reads nothing again.
    """

    def __init__(self, soundfont: str, sample_rate: int = 44_100) -> None:
        self.sample_rate = sample_rate
        self._settings = self._new_settings(effects=True)
        self._dry_settings = self._new_settings(effects=False)
        self._synth = _lib.new_fluid_synth(self._settings)
        if not self._synth:
            raise RenderFailed("FluidSynth could not start")
        self.soundfont = ""
        self._sfont: int | None = None
        self._font_id = -1  # the SoundFont's id in the render synth
        self._pinned: set[Preset] = set()  # the presets this synth holds pinned
        self._used: set[Preset] = set()  # ... and those the current render selected
        self.load(soundfont)

    def _new_settings(self, *, effects: bool) -> int:
        settings = _lib.new_fluid_settings()
        _lib.fluid_settings_setnum(settings, b"synth.sample-rate", float(self.sample_rate))
        _lib.fluid_settings_setnum(settings, b"synth.gain", 0.2)
        _lib.fluid_settings_setint(settings, b"synth.midi-channels", CHANNELS)
        _lib.fluid_settings_setint(settings, b"synth.cpu-cores", 1)
        for name, value in EFFECTS.items():
            if name.endswith(".active") and not effects:
                value = 0
            if isinstance(value, int):
                _lib.fluid_settings_setint(settings, name.encode(), value)
            else:
                _lib.fluid_settings_setnum(settings, name.encode(), value)
        return int(settings)

    def load(self, soundfont: str) -> None:
        """Use ``soundfont``: the process's shared copy (see :class:`_SharedSoundFonts`)."""
        if soundfont == self.soundfont:
            return
        if not Path(soundfont).is_file():
            raise RenderFailed(f"SoundFont not found: {soundfont}")
        sfont = _SHARED.acquire(soundfont)
        with _SAMPLES_LOCK:
            if self._sfont is not None:
                self._unpin(set(self._pinned))
                _lib.fluid_synth_remove_sfont(self._synth, self._sfont)
        if self._sfont is not None:
            _SHARED.release(self.soundfont)
        self._sfont = sfont
        self.soundfont = soundfont
        with _SAMPLES_LOCK:
            self._font_id = _lib.fluid_synth_add_sfont(self._synth, sfont)
            _lib.fluid_synth_program_reset(self._synth)
            self._keep_selected()

    def reset(self, *, effects: bool = True) -> None:
        """A synth in power-on state with the already loaded SoundFont moved into it, with or without
        reverb and chorus.

        ``fluid_synth_system_reset`` leaves voice and effect internals (reverb modulation, reused voice
        filters) from the previous render, so two renders of the same events would differ slightly.
        Moving the loaded SoundFont into a freshly created synth costs milliseconds, keeps its
        samples loaded (they are pinned), and makes every render a pure function of its events.
        """
        sfont = self._sfont
        with _SAMPLES_LOCK:
            _lib.fluid_synth_remove_sfont(self._synth, sfont)
            _lib.delete_fluid_synth(self._synth)
            self._synth = _lib.new_fluid_synth(self._settings if effects else self._dry_settings)
            if not self._synth:
                raise RenderFailed("FluidSynth could not start")
            self._font_id = _lib.fluid_synth_add_sfont(self._synth, sfont)
            _lib.fluid_synth_program_reset(self._synth)
            self._used = set()
            self._keep_selected()

    def _keep_selected(self, channel: int | None = None) -> None:
        """Pin the preset ``channel`` (every channel when None) plays; call holding ``_SAMPLES_LOCK``."""
        for number in range(CHANNELS) if channel is None else (channel,):
            # The preset the channel really plays: a missing one is replaced by a fallback.
            handle = _lib.fluid_synth_get_channel_preset(self._synth, number)
            if not handle:
                continue
            preset = (_lib.fluid_preset_get_banknum(handle), _lib.fluid_preset_get_num(handle))
            self._used.add(preset)
            if preset not in self._pinned:
                _SHARED.pin(self.soundfont, preset, synth=self._synth, font_id=self._font_id)
                self._pinned.add(preset)

    def _unpin(self, presets: set[Preset]) -> None:
        """Stop holding ``presets``; call holding ``_SAMPLES_LOCK``."""
        for preset in presets:
            _SHARED.unpin(self.soundfont, preset, synth=self._synth, font_id=self._font_id)
        self._pinned -= presets

    def _finish(self) -> None:
        """Silence every voice (so none holds a sample) and stop holding the presets this render
        did not use."""
        _lib.fluid_synth_all_sounds_off(self._synth, -1)
        scratch = np.zeros((FLUID_BLOCK, 2), dtype=np.float32)
        address = scratch.ctypes.data
        _lib.fluid_synth_write_float(self._synth, FLUID_BLOCK, address, 0, 2, address, 1, 2)
        with _SAMPLES_LOCK:
            self._unpin(self._pinned - self._used)

    def render(self, job: StemJob) -> StemResult:
        """Render ``job`` into a .npy float32 (frames, 2) file, in blocks, without holding it in RAM."""
        self.reset(effects=job.effects)
        path = Path(job.out_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            np.lib.format.write_array_header_1_0(
                handle, {"descr": "<f4", "fortran_order": False, "shape": (job.n_frames, 2)}
            )
            writer = _BlockWriter(self._synth, handle, self.sample_rate)
            self._play(job, writer)
            writer.may_skip = True  # nothing more will be played: a silent rest cannot shift anything
            writer.advance_to(job.n_frames)
            writer.flush()
        self._finish()
        return StemResult(job.out_path, writer.synthesized)

    def _play(self, job: StemJob, writer: "_BlockWriter") -> None:
        synth = _lib
        handle = self._synth
        end_sent = False
        for frame, status, d1, d2 in zip(
            job.frame.tolist(), job.status.tolist(), job.d1.tolist(), job.d2.tolist(), strict=True
        ):
            if not end_sent and frame > job.end_frame:
                writer.advance_to(job.end_frame)
                self._release_everything()
                end_sent = True
            writer.advance_to(frame)
            kind, channel = status & 0xF0, status & 0x0F
            if kind == 0x90:
                writer.expect_sound()
                synth.fluid_synth_noteon(handle, channel, d1, d2)
            elif kind == 0x80:
                synth.fluid_synth_noteoff(handle, channel, d1)
            elif kind == 0xB0:
                synth.fluid_synth_cc(handle, channel, d1, d2)
            elif kind == 0xE0:
                synth.fluid_synth_pitch_bend(handle, channel, d1 | (d2 << 7))
            elif kind == 0xC0:
                with _SAMPLES_LOCK:
                    synth.fluid_synth_program_change(handle, channel, d1)
                    self._keep_selected(channel)
            elif kind == 0xD0:
                synth.fluid_synth_channel_pressure(handle, channel, d1)
            elif kind == 0xA0:
                synth.fluid_synth_key_pressure(handle, channel, d1, d2)
            elif status == STATUS_SYSEX:
                payload = job.sysex[d1].rstrip(b"\xf7")
                if payload:  # a GM or GS reset selects presets anew
                    with _SAMPLES_LOCK:
                        synth.fluid_synth_sysex(handle, payload, len(payload), None, None, None, 0)
                        self._keep_selected()
        if not end_sent:
            writer.advance_to(max(job.end_frame, writer.position))
            self._release_everything()

    def _release_everything(self) -> None:
        """The end of the music: pedals up and every note released, so nothing rings on forever."""
        for channel in range(CHANNELS):
            _lib.fluid_synth_cc(self._synth, channel, _CC_SUSTAIN, 0)
            _lib.fluid_synth_cc(self._synth, channel, _CC_SOSTENUTO, 0)
            _lib.fluid_synth_cc(self._synth, channel, _CC_ALL_NOTES_OFF, 0)


class _BlockWriter:
    """Synthesizes up to a frame into a reusable block buffer and streams full blocks to a file."""

    def __init__(self, synth: int, handle: BinaryIO, sample_rate: int) -> None:
        self._synth = synth
        self._handle = handle
        self._buffer = np.zeros((BLOCK_FRAMES, 2), dtype=np.float32)
        self._address = self._buffer.ctypes.data
        self._filled = 0
        self._quiet_after = round(QUIET_AFTER_S * sample_rate)
        self._last_sound = 0
        self.position = 0
        self.synthesized = 0
        self.may_skip = False

    def expect_sound(self) -> None:
        self._last_sound = self.position

    def advance_to(self, target: int) -> None:
        while self.position < target:
            count = min(target - self.position, BLOCK_FRAMES - self._filled)
            quiet = self.may_skip and self.position - self._last_sound >= self._quiet_after
            if quiet and count >= FLUID_BLOCK:
                # Skip whole FluidSynth blocks only, so the block grid stays where it was.
                count -= count % FLUID_BLOCK
                self._buffer[self._filled : self._filled + count] = 0.0
            else:
                offset = self._filled * 2
                _lib.fluid_synth_write_float(
                    self._synth, count, self._address, offset, 2, self._address, offset + 1, 2
                )
                self.synthesized += count
                if _lib.fluid_synth_get_active_voice_count(self._synth) > 0:
                    self._last_sound = self.position + count
            self._filled += count
            self.position += count
            if self._filled == BLOCK_FRAMES:
                self.flush()

    def flush(self) -> None:
        if self._filled:
            self._handle.write(self._buffer[: self._filled].tobytes())
            self._filled = 0


_local = threading.local()


def thread_synth(soundfont: str | os.PathLike[str], sample_rate: int = 44_100) -> Synth:
    """This thread's synth, created on first use; a different SoundFont is swapped in, not added.

    A FluidSynth instance must not be driven from two threads at once, so each render thread
    keeps its own (the main thread included).
    """
    path = str(Path(soundfont).resolve())
    synth: Synth | None = getattr(_local, "synth", None)
    if synth is None or synth.sample_rate != sample_rate:
        synth = Synth(path, sample_rate)
        _local.synth = synth
    else:
        synth.load(path)
    return synth
