"""Instant listening through the API: stream_url, ?from=, frames as a worker publishes them."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from django.core.files.storage import default_storage

from tests.factories import RenderFactory
from tracks.engine.encode import write_audio
from tracks.models import Render, RenderStatus
from tracks.services.listening import (
    ListenPublisher,
    audio_frame_offsets,
    render_stream_chunks,
    stream_start,
)
from tracks.services.render_execution import render_storage_name

# The stream's generator closes its database connection between glances at the row (a listener may
# listen for minutes), and listeners run in threads: both need real transactions.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def mp3(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """Twelve seconds of a tone as a tagged MP3, like a finished render."""
    path = tmp_path_factory.mktemp("mp3") / "tone.mp3"
    seconds = np.arange(12 * 44100) / 44100
    tone = 0.3 * np.sin(2 * np.pi * 440 * seconds)
    write_audio(np.stack([tone, tone], axis=1), 44100, path, tags={"title": "Tone"})
    return Path(path).read_bytes()


def frames_of(data: bytes) -> list[bytes]:
    offsets = [*audio_frame_offsets(data), len(data)]
    return [data[start:stop] for start, stop in itertools.pairwise(offsets)]


def store(render: Render, data: bytes, *, status: str = RenderStatus.DONE) -> Render:
    from django.core.files.base import ContentFile

    name = default_storage.save(render_storage_name(render=render), ContentFile(data))
    Render.objects.filter(pk=render.pk).update(status=status, audio=name, audio_size=len(data))
    render.refresh_from_db()
    return render


def body(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def test_a_render_answers_its_stream_url_and_keeps_where_the_listener_starts(
    client_for, performer, track, enqueued
):
    client = client_for(performer)
    # when: a mix change is asked for by a listener 42 s into the song, and a WAV
    mp3 = client.post("/api/renders/", {"track": track.pk, "listen_from": 42.5}, format="json")
    wav = client.post("/api/renders/", {"track": track.pk, "format": "wav"}, format="json")
    bad = client.post("/api/renders/", {"track": track.pk, "listen_from": -1}, format="json")
    # then: MP3 renders stream, other formats do not; a negative start is refused and names the field
    assert mp3.status_code == 202
    assert mp3.json()["stream_url"].endswith(f"/api/renders/{mp3.json()['id']}/stream/")
    assert Render.objects.get(pk=mp3.json()["id"]).listen_from == 42.5
    assert wav.json()["stream_url"] is None
    assert bad.status_code == 400
    assert "listen_from" in bad.json()["errors"]


def test_a_done_render_streams_its_whole_file_or_from_a_moment(client_for, performer, mp3):
    render = store(RenderFactory(), mp3)
    client = client_for(performer)

    whole = client.get(f"/api/renders/{render.pk}/stream/")
    late = client.get(f"/api/renders/{render.pk}/stream/?from=5")

    assert whole.status_code == 200
    assert whole["Content-Type"] == "audio/mpeg"
    assert whole["Cache-Control"] == "no-store"
    assert body(whole) == mp3  # tags, Info frame and all: players know its length
    start = stream_start(from_s=5)
    assert float(late["X-Stream-From"]) == pytest.approx(5.0, abs=0.03)
    assert body(late) == b"".join(frames_of(mp3)[start.frame :])


@pytest.mark.parametrize("value", ["soon", "-3", "nan", "1e9"])
def test_a_bad_start_is_refused_with_a_reason(client_for, performer, value):
    render = RenderFactory()
    response = client_for(performer).get(f"/api/renders/{render.pk}/stream/?from={value}")
    assert response.status_code == 400
    assert "from" in response.json()["errors"]


def test_failed_and_non_mp3_renders_and_private_tracks_do_not_stream(client_for, performer, private_track):
    failed = RenderFactory(status=RenderStatus.FAILED, error="the render came out silent")
    wav = RenderFactory(variant_settings={"format": "wav"})
    hidden = RenderFactory(revision=private_track.current_revision)
    client = client_for(performer)

    refused = client.get(f"/api/renders/{failed.pk}/stream/")
    assert refused.status_code == 409
    assert "came out silent" in refused.json()["detail"]
    assert client.get(f"/api/renders/{wav.pk}/stream/").status_code == 409
    assert client.get(f"/api/renders/{hidden.pk}/stream/").status_code == 404
    assert client.get("/api/renders/999999/stream/").status_code == 404


@pytest.fixture
def rendering(mp3: bytes) -> tuple[Render, ListenPublisher, list[bytes]]:
    """A render in progress whose worker publishes through Redis (as tracks.engine.stream does)."""
    render = cast(Render, RenderFactory(status=RenderStatus.RENDERING))
    publisher = ListenPublisher(render=render)
    publisher.start()
    return render, publisher, frames_of(mp3)


def test_listeners_get_frames_as_they_are_published_in_order_and_then_the_end(rendering, mp3, settings):
    # given: a worker that publishes the listener's stretch first (a mix change), then the start
    render, publisher, frames = rendering
    start = stream_start(from_s=4.0)
    publisher(start.frame, b"".join(frames[start.frame : start.frame + 50]))
    publisher(start.frame + 50, b"".join(frames[start.frame + 50 :]))

    # when: two listeners start at 4 s, one at 0 s; the render finishes after they connect
    got: dict[str, bytes] = {}

    def listen(name: str, first: Any) -> None:
        got[name] = b"".join(render_stream_chunks(render=render, start=first))

    threads = [
        threading.Thread(target=listen, args=("late-1", start)),
        threading.Thread(target=listen, args=("late-2", start)),
        threading.Thread(target=listen, args=("early", stream_start(from_s=0))),
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.3)  # they are connected and waiting
    publisher(0, b"".join(frames[: start.frame]))
    store(render, mp3)
    publisher.finish(status="done")
    for thread in threads:
        thread.join(timeout=30)

    # then: every listener has every frame from where it started, once, in order
    assert got["late-1"] == got["late-2"] == b"".join(frames[start.frame :])
    # (a listener that connects after the end gets the stored file itself, tags and all)
    assert got["early"] in (b"".join(frames), mp3)


def test_a_listener_that_leaves_costs_the_render_nothing(rendering, mp3):
    render, publisher, frames = rendering
    publisher(0, b"".join(frames[:40]))
    chunks = render_stream_chunks(render=render, start=stream_start(from_s=0))
    assert next(chunks) == b"".join(frames[:40])
    chunks.close()  # the browser tab is closed
    # the worker goes on publishing and finishes; a new listener gets the whole song
    publisher(40, b"".join(frames[40:]))
    store(render, mp3)
    publisher.finish(status="done")
    assert b"".join(render_stream_chunks(render=render, start=stream_start(from_s=0))) == mp3


def test_a_listener_of_a_render_that_fails_midway_stops_with_what_there_was(rendering, settings):
    render, publisher, frames = rendering
    publisher(0, b"".join(frames[:10]))
    Render.objects.filter(pk=render.pk).update(status=RenderStatus.FAILED, error="boom")
    got = b"".join(render_stream_chunks(render=render, start=stream_start(from_s=0)))
    assert got == b"".join(frames[:10])


def test_a_waiting_listener_gives_up_on_a_render_that_never_moves(settings):
    settings.LISTEN_MAX_WAIT_S = 0.5
    render = RenderFactory(status=RenderStatus.QUEUED)
    assert b"".join(render_stream_chunks(render=render, start=stream_start(from_s=0))) == b""


def test_a_stream_start_is_on_the_frame_of_that_moment():
    assert stream_start(from_s=0) == stream_start(from_s=-1)
    start = stream_start(from_s=60.0)
    assert start.seconds <= 60.0 < start.seconds + 1152 / 44100
