"""Instant listening: a render's MP3 frames travel from the worker to listeners while it renders.

The worker appends the frames its streaming render encodes to a Redis stream per render (any web
process on any machine can read it, every listener reads it independently, and a listener that goes
away costs the render nothing). A listener starts at a frame (``?from=SECONDS``), takes the frames in
order as they arrive (a mix change encodes the listener's stretch first, so frames can come out of
order) and, once the render is done, takes anything it still lacks from the stored file. A render
that cannot stream (see :func:`tracks.engine.stream.stream_blocker`) publishes nothing until it is
done, and its listeners get the stored file: today's render-then-play.

The revision's loudness profile (measured with its per-part stems, kept in ``Revision.loudness`` per
sound set) is what lets a new key or tempo stream at once: it predicts the master gain.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings as django_settings
from django.db import close_old_connections, transaction

from tracks.engine import mp3frames
from tracks.engine.stream import DECODER_DELAY, LoudnessProfile
from tracks.models import Render, RenderStatus, Revision
from tracks.services.storage import audio_open

logger = logging.getLogger(__name__)

SAMPLE_RATE = 44_100
FRAME_SAMPLES = mp3frames.SAMPLES_PER_FRAME
_END = b"end"
_READ_BLOCK_MS = 500
_STATUS_CHECK_S = 2.0  # how often a waiting listener looks at the render's row
_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        # Reads block up to _READ_BLOCK_MS, so the socket timeout must be longer than that.
        _client = redis.Redis.from_url(django_settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=10)
    return _client


def listen_key(*, render: Render) -> str:
    """Named by the row (id, settings, creation time), so a database that reuses ids (a test or
    bench run) never hands a listener another run's frames."""
    created = round(render.created_at.timestamp() * 1_000_000)
    return f"backtrack:listen:{render.pk}:{render.settings_hash[:16]}:{created}"


class ListenPublisher:
    """Publishes a render's MP3 frames (the engine's ``publish`` callback). Best effort: with Redis
    away the render goes on and its listeners get the stored file when it is done."""

    def __init__(self, *, render: Render) -> None:
        self.key = listen_key(render=render)
        self.ttl_s = int(django_settings.LISTEN_STREAM_TTL_S)
        self._broken = False

    def start(self) -> None:
        """A new attempt starts a new stream: listeners still connected go on from the frame they
        need (frames are numbered, and the same settings encode the same frames)."""
        try:
            _redis().delete(self.key)
        except redis.RedisError:
            self._broken = True
            logger.warning("%s: Redis is away; listeners will wait for the file", self.key)

    def __call__(self, first_frame: int, data: bytes) -> None:
        if self._broken:
            return
        try:
            pipe = _redis().pipeline(transaction=False)
            pipe.xadd(self.key, {"f": first_frame, "d": data})
            pipe.expire(self.key, self.ttl_s)
            pipe.execute()
        except redis.RedisError:
            self._broken = True
            logger.warning("%s: could not publish frames; listeners will wait for the file", self.key)

    def finish(self, *, status: str) -> None:
        """Tell listeners the render ended (``done`` or ``failed``)."""
        try:
            pipe = _redis().pipeline(transaction=False)
            pipe.xadd(self.key, {"end": status})
            pipe.expire(self.key, self.ttl_s)
            pipe.execute()
        except redis.RedisError:
            logger.warning("%s: could not publish the end of the render", self.key)


def listen_finish(*, render: Render, status: str) -> None:
    """After commit: listeners of ``render`` stop waiting (``done``: the file is stored)."""
    transaction.on_commit(lambda: ListenPublisher(render=render).finish(status=status))


def revision_loudness_enqueue(*, revision_id: int) -> None:
    """Measure a new revision's loudness in the background (the ``stems`` queue); best effort."""
    from tracks.services.renders import BROKER_ERRORS
    from tracks.tasks import revision_loudness_measure

    try:
        revision_loudness_measure.apply_async(args=(revision_id,), retry=False)
    except BROKER_ERRORS as exc:
        logger.warning("could not enqueue the loudness of revision %s: %s", revision_id, exc)


def revision_loudness_profile(*, revision: Revision, sound: str) -> LoudnessProfile | None:
    """The measured loudness of ``revision``'s parts with the sound set ``sound``, if any."""
    data = (revision.loudness or {}).get(sound)
    return LoudnessProfile.from_dict(data) if isinstance(data, dict) else None


def revision_loudness_record(*, revision_id: int, sound: str, profile: LoudnessProfile, plain: bool) -> bool:
    """Keep ``profile`` for the revision and sound set; one measured at the written key and tempo
    (``plain``) replaces another, others only fill a gap. Returns whether it was stored."""
    with transaction.atomic():
        revision = Revision.objects.select_for_update().filter(pk=revision_id).first()
        if revision is None:
            return False
        profiles = dict(revision.loudness or {})
        if sound in profiles and not plain:
            return False
        profiles[sound] = profile.to_dict()
        Revision.objects.filter(pk=revision_id).update(loudness=profiles)
    return True


@dataclass(frozen=True)
class StreamStart:
    frame: int  # the first song frame sent (0: the whole file, tags and all)
    seconds: float  # where that frame's audio starts in the song


def stream_start(*, from_s: float) -> StreamStart:
    """The MP3 frame that holds the song at ``from_s`` (frames carry the encoder's delay)."""
    if from_s <= 0:
        return StreamStart(frame=0, seconds=0.0)
    frame = int((from_s * SAMPLE_RATE + DECODER_DELAY) // FRAME_SAMPLES)
    return StreamStart(frame=frame, seconds=max(0.0, (frame * FRAME_SAMPLES - DECODER_DELAY) / SAMPLE_RATE))


def render_stream_chunks(*, render: Render, start: StreamStart) -> Iterator[bytes]:
    """The render's audio from ``start``: its frames as they are published, then the stored file.

    Runs in a web thread for as long as the listener listens: it holds no database connection
    between its glances at the row, and it ends when the render is done (everything sent), failed,
    or has not moved for ``LISTEN_MAX_WAIT_S``.
    """
    render_id = render.pk
    if _ended_status(render_id) == RenderStatus.DONE:  # the file, tags and all, with its length known
        yield from _stored_frames(render_id=render_id, first=start.frame, whole=start.frame == 0)
        return
    key = listen_key(render=render)
    wanted = start.frame  # the next song frame the listener needs
    waiting: dict[
        int, bytes
    ] = {}  # frames that came early (a mix change encodes the listener's stretch first)
    last_id = "0-0"
    last_progress = time.monotonic()
    last_check = 0.0
    max_wait = float(django_settings.LISTEN_MAX_WAIT_S)
    sent_any = False
    while True:
        try:
            answer: Any = _redis().xread({key: last_id}, count=64, block=_READ_BLOCK_MS)
        except redis.RedisError:
            logger.warning("%s: could not read the stream; waiting for the file", key)
            answer = None
            time.sleep(_READ_BLOCK_MS / 1000)
        ended = None
        for _stream, entries in answer or []:
            for entry_id, fields in entries:
                last_id = entry_id
                if _END in fields:
                    ended = fields[_END].decode()
                    continue
                first = int(fields[b"f"])
                for offset, frame in enumerate(_split_frames(fields[b"d"])):
                    if first + offset >= wanted:
                        waiting[first + offset] = frame
        chunk = bytearray()
        while wanted in waiting:
            chunk += waiting.pop(wanted)
            wanted += 1
        if chunk:
            sent_any = True
            last_progress = time.monotonic()
            yield bytes(chunk)
        now = time.monotonic()
        if ended is None and now - last_check >= _STATUS_CHECK_S:
            last_check = now
            ended = _ended_status(render_id)
        if ended == RenderStatus.DONE:
            yield from _stored_frames(render_id=render_id, first=wanted, whole=not sent_any and wanted == 0)
            return
        if ended is not None:  # failed (or gone): the listener has what there was
            return
        if now - last_progress > max_wait:
            logger.info("%s: the render has not moved for %s s; the listener is let go", key, max_wait)
            return


def _ended_status(render_id: int) -> str | None:
    """``done``/``failed`` once the render ended, ``gone`` if it was deleted, else None."""
    close_old_connections()
    try:
        status = Render.objects.filter(pk=render_id).values_list("status", flat=True).first()
    finally:
        close_old_connections()
    if status is None:
        return "gone"
    return str(status) if status in (RenderStatus.DONE, RenderStatus.FAILED) else None


def _stored_frames(*, render_id: int, first: int, whole: bool) -> Iterator[bytes]:
    """The stored MP3 from song frame ``first`` (``whole``: the file as it is, tags and Info frame)."""
    close_old_connections()
    render = Render.objects.filter(pk=render_id).only("audio").first()
    close_old_connections()
    if render is None or not render.audio.name:
        return
    try:
        with audio_open(name=render.audio.name) as handle:
            data = handle.read()
    except OSError:
        logger.warning("render %s: its audio is gone", render_id)
        return
    if whole:
        yield data
        return
    frames = audio_frame_offsets(data)
    if first < len(frames):
        step = 512 * 1024
        begin = frames[first]
        for offset in range(begin, len(data), step):
            yield data[offset : offset + step]


def audio_frame_offsets(data: bytes) -> list[int]:
    """Byte offsets of the audio frames of a whole MP3 (after its ID3 tag and LAME Info frame)."""
    position = _id3_length(data)
    offsets: list[int] = []
    first = True
    while position + 4 <= len(data):
        try:
            header = mp3frames.parse_header(data[position : position + 4])
        except mp3frames.Mp3FormatError:
            break  # an ID3v1 tag or padding after the last frame
        length = header.length
        if first:
            first = False
            if mp3frames.info_offset(data[position : position + length]) is not None:
                position += length
                continue
        offsets.append(position)
        position += length
    return offsets


def _id3_length(data: bytes) -> int:
    if data[:3] != b"ID3" or len(data) < 10:
        return 0
    size = 0
    for byte in data[6:10]:
        size = (size << 7) | (byte & 0x7F)
    footer = 10 if data[5] & 0x10 else 0
    return 10 + size + footer


def _split_frames(data: bytes) -> list[bytes]:
    frames = []
    position = 0
    while position + 4 <= len(data):
        length = mp3frames.parse_header(data[position : position + 4]).length
        frames.append(data[position : position + length])
        position += length
    return frames
