"""Instant listening on real services: a real worker streams renders to listeners through Redis."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import pytest

from tests.factories import PerformerFactory
from tests.integration.test_render_pipeline import poll, upload_track
from tracks.models import Render, Revision
from tracks.services.listening import audio_frame_offsets, stream_start

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def wait_for_loudness(revision_id: int, timeout: float = 120.0) -> None:
    """The upload's background job measures the revision; streams need it for a new key."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Revision.objects.get(pk=revision_id).loudness:
            return
        time.sleep(0.1)
    raise AssertionError(f"revision {revision_id} was not measured in {timeout} s")


def stored_bytes(render_id: int) -> bytes:
    render = Render.objects.get(pk=render_id)
    with render.audio.open("rb") as handle:
        return handle.read()


def audio_frames(data: bytes, first: int = 0) -> bytes:
    """The audio frames of a whole MP3 from song frame ``first`` (no tags, no Info frame)."""
    offsets = audio_frame_offsets(data)
    return data[offsets[first] :]


def split_frames(data: bytes) -> list[bytes]:
    offsets = [*audio_frame_offsets(data), len(data)]
    return [data[start:stop] for start, stop in itertools.pairwise(offsets)]


def read_stream(client: Any, url: str, *, on_chunk: Any = None) -> tuple[Any, bytes]:
    response = client.get(url)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "audio/mpeg"
    body = bytearray()
    for chunk in response.streaming_content:
        if on_chunk is not None:
            on_chunk(chunk)
        body += chunk
    return response, bytes(body)


def test_a_new_key_plays_while_it_renders_and_the_stream_is_the_stored_mp3(celery_worker, client_for):
    # given: a measured upload
    _, track = upload_track(client_for, minutes=2.0, parts=6)
    wait_for_loudness(track["current_revision"]["id"])
    singer = client_for(PerformerFactory())

    # when: a singer asks for a new key and tempo and listens at once
    created = singer.post(
        "/api/renders/", {"track": track["id"], "transpose": 3, "tempo": 0.9}, format="json"
    ).json()
    assert created["stream_url"].endswith(f"/api/renders/{created['id']}/stream/")
    statuses_at_first_byte: list[str] = []

    def first(_chunk: bytes) -> None:
        if not statuses_at_first_byte:
            statuses_at_first_byte.append(Render.objects.get(pk=created["id"]).status)

    response, streamed = read_stream(singer, created["stream_url"], on_chunk=first)

    # then: audio came before the render was done, and it is the stored file's audio, byte for byte
    assert statuses_at_first_byte[0] in {"queued", "rendering"}, statuses_at_first_byte
    assert response["X-Stream-From"] == "0.000"
    done = poll(singer, created["id"], until={"done", "failed"})
    assert done["status"] == "done", (done["error"], celery_worker.output()[-3000:])
    assert streamed == audio_frames(stored_bytes(created["id"]))


def test_from_starts_at_the_frame_of_that_moment_and_a_done_render_streams_its_file(
    celery_worker, client_for
):
    # given: a finished render
    _, track = upload_track(client_for, minutes=0.75)
    singer = client_for(PerformerFactory())
    created = singer.post("/api/renders/", {"track": track["id"], "transpose": -2}, format="json").json()
    poll(singer, created["id"], until={"done"})
    data = stored_bytes(created["id"])

    # when: a listener starts 20 s in, and another from the start
    late, late_body = read_stream(singer, created["stream_url"] + "?from=20")
    _whole, whole_body = read_stream(singer, created["stream_url"])

    # then: the first starts at 20 s (to the frame), the second gets the whole file, tags and all
    start = stream_start(from_s=20)
    assert float(late["X-Stream-From"]) == pytest.approx(20.0, abs=0.03)
    assert late_body == audio_frames(data, start.frame)
    assert whole_body == data


def test_a_mix_change_starts_where_the_listener_is_and_listeners_come_and_go(celery_worker, client_for):
    # given: a measured upload (its stems as written are cached on the worker)
    _, track = upload_track(client_for, minutes=1.5, parts=5)
    wait_for_loudness(track["current_revision"]["id"])
    singer = client_for(PerformerFactory())

    # when: the singer mutes a part while listening 45 s in; three listeners play it, one leaves early
    created = singer.post(
        "/api/renders/",
        {"track": track["id"], "mix": {"1": {"mute": True}}, "listen_from": 45.0},
        format="json",
    ).json()
    url = created["stream_url"] + "?from=45"
    bodies: list[bytes] = []
    errors: list[BaseException] = []

    def listen() -> None:
        try:
            bodies.append(read_stream(client_for(PerformerFactory()), url)[1])
        except BaseException as exc:  # reported below
            errors.append(exc)

    listeners = [threading.Thread(target=listen) for _ in range(3)]
    for listener in listeners:
        listener.start()
    leaving = singer.get(url)
    next(iter(leaving.streaming_content))
    leaving.close()  # the listener goes away after the first chunk
    for listener in listeners:
        listener.join(timeout=120)

    # then: the render finished from the cached stems, every listener got the same audio, and that
    # audio is the stored file's from 45 s (frames past the splice are the very same bytes)
    done = poll(singer, created["id"], until={"done", "failed"})
    assert done["status"] == "done", (done["error"], celery_worker.output()[-3000:])
    assert done["stems_reused"] is True
    assert not errors, errors
    assert len(bodies) == 3
    assert bodies[0] == bodies[1] == bodies[2]
    stored = audio_frames(stored_bytes(created["id"]), stream_start(from_s=45).frame)
    heard, kept = split_frames(bodies[0]), split_frames(stored)
    assert len(heard) == len(kept)
    assert heard[20:] == kept[20:]  # the frames around the splice of the two encodes may differ
