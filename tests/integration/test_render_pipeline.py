"""End to end on real services: upload -> POST /api/renders/ -> a real worker renders -> download."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.factories import PerformerFactory, ProducerFactory, genre
from tests.integration.worker import purge_test_queue
from tracks.demo import compose_song
from tracks.models import Render

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def ffprobe_duration(path: Path) -> float:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "format=duration:stream=codec_name",
            "-of",
            "json",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    info = json.loads(out)
    assert info["streams"][0]["codec_name"] == "mp3"
    return float(info["format"]["duration"])


def poll(
    client: Any, render_id: int, *, until: set[str], timeout: float = 120.0, interval: float = 0.1
) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/api/renders/{render_id}/").json()
        if body["status"] in until:
            return body
        time.sleep(interval)
    raise AssertionError(f"render {render_id} still {body['status']} after {timeout} s")


def upload_track(client_for: Any, *, minutes: float, parts: int = 4) -> tuple[Any, dict]:
    producer = ProducerFactory()
    genre("pop")  # transactional tests start from an emptied database, without the seeded genres
    midi = SimpleUploadedFile("song.mid", compose_song(minutes=minutes, parts=parts, seed=7), "audio/midi")
    response = client_for(producer).post(
        "/api/tracks/", {"title": "Integration Song", "genre": "pop", "midi": midi}, format="multipart"
    )
    assert response.status_code == 201, response.content
    return producer, response.json()


def test_upload_render_and_download_a_playable_mp3(celery_worker, client_for, tmp_path):
    # given: a producer's upload and a singer
    _, track = upload_track(client_for, minutes=0.25)
    singer = client_for(PerformerFactory())

    # when: the singer asks for a variant and waits for the worker
    created = singer.post(
        "/api/renders/", {"track": track["id"], "transpose": 2, "tempo": 0.8, "count_in": 1}, format="json"
    )
    assert created.status_code == 202, created.content
    done = poll(singer, created.json()["id"], until={"done", "failed"})

    # then: it is done and the file downloads as a playable MP3 of the reported length
    assert done["status"] == "done", (done["error"], celery_worker.output()[-3000:])
    download = singer.get(done["download_url"])
    assert download.status_code == 200
    assert download["Content-Type"] == "audio/mpeg"
    audio = tmp_path / "download.mp3"
    audio.write_bytes(b"".join(download.streaming_content))
    duration = ffprobe_duration(audio)
    assert duration == pytest.approx(done["duration_s"], abs=0.15)
    original = track["current_revision"]["analysis"]["duration_s"]
    beats = int(track["current_revision"]["analysis"]["time_signature"].split("/")[0])
    count_in = beats * 60 / track["current_revision"]["analysis"]["tempo_bpm"] / 0.8
    assert duration == pytest.approx(original / 0.8 + count_in, abs=4.0)

    # and an identical request is answered from the database
    again = singer.post(
        "/api/renders/", {"track": track["id"], "transpose": 2, "tempo": 0.8, "count_in": 1}, format="json"
    )
    assert again.status_code == 202
    assert again.json()["id"] == done["id"]
    assert Render.objects.count() == 1


def test_a_worker_killed_mid_render_gets_the_render_rerun_once(celery_worker, client_for):
    # given: a render long enough to catch while it runs
    _, track = upload_track(client_for, minutes=1.5, parts=6)
    singer = client_for(PerformerFactory())
    render_id = singer.post("/api/renders/", {"track": track["id"], "transpose": -1}, format="json").json()[
        "id"
    ]
    poll(singer, render_id, until={"rendering", "done", "failed"}, interval=0.02)
    assert Render.objects.get(pk=render_id).status == "rendering", (
        "the render finished before it could be killed"
    )

    # when: the worker's child process dies (OOM killer, node loss) mid-render
    for pid in celery_worker.child_pids():
        os.kill(pid, signal.SIGKILL)

    # then: the message comes back, the render runs a second time and finishes
    done = poll(singer, render_id, until={"done", "failed"}, timeout=180)
    assert done["status"] == "done", (done["error"], celery_worker.output()[-3000:])
    assert done["attempts"] == 2
    assert "signal 9" in celery_worker.output()


def test_a_render_whose_worker_dies_twice_fails_instead_of_looping(celery_worker, client_for):
    # given
    _, track = upload_track(client_for, minutes=1.5, parts=6)
    singer = client_for(PerformerFactory())
    render_id = singer.post("/api/renders/", {"track": track["id"], "transpose": 3}, format="json").json()[
        "id"
    ]

    # when: the worker child is killed during the first and during the second attempt
    for attempt in (1, 2):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            render = Render.objects.get(pk=render_id)
            if render.status == "rendering" and render.attempts == attempt:
                break
            assert render.status != "done", "the render finished before it could be killed"
            time.sleep(0.02)
        for pid in celery_worker.child_pids():
            os.kill(pid, signal.SIGKILL)

    # then: the third delivery gives up with a reason
    failed = poll(singer, render_id, until={"done", "failed"}, timeout=120)
    assert failed["status"] == "failed"
    assert failed["error"] == "the render was interrupted twice; giving up"
    assert failed["attempts"] == 3


# --- recovery (the recovering_worker runs beat with shortened intervals; see conftest.RECOVERY_ENV) ---


def test_a_render_whose_whole_worker_died_is_rerun_by_the_sweeper(recovering_worker, client_for):
    # given: a render in progress
    _, track = upload_track(client_for, minutes=1.5, parts=6)
    singer = client_for(PerformerFactory())
    render_id = singer.post("/api/renders/", {"track": track["id"], "transpose": 1}, format="json").json()[
        "id"
    ]
    poll(singer, render_id, until={"rendering", "done", "failed"}, interval=0.02)
    assert Render.objects.get(pk=render_id).status == "rendering", (
        "the render finished before it could be killed"
    )

    # when: the whole worker dies at once (parent, beat and child: nobody hands the message back,
    # Redis keeps it unacked for the visibility timeout), and a worker is available again
    recovering_worker.kill()
    recovering_worker.start()

    # then: the sweeper sees the silent heartbeat and re-queues it; a second attempt renders it
    deadline = time.monotonic() + 60
    while Render.objects.get(pk=render_id).attempts < 2:
        assert time.monotonic() < deadline, ("not re-run within 60 s", recovering_worker.output()[-3000:])
        time.sleep(0.1)
    done = poll(singer, render_id, until={"done", "failed"}, timeout=120)
    assert done["status"] == "done", (done["error"], recovering_worker.output()[-3000:])
    assert done["attempts"] == 2
    assert "its worker is silent" in recovering_worker.output()


def test_a_queued_render_whose_message_redis_lost_is_rendered(recovering_worker, client_for):
    # given: a queued render while no worker takes renders (they are busy or being deployed)
    _, track = upload_track(client_for, minutes=0.25)
    singer = client_for(PerformerFactory())
    recovering_worker.stop()
    created = singer.post("/api/renders/", {"track": track["id"], "transpose": 2}, format="json")
    assert created.status_code == 202, created.content
    render_id = created.json()["id"]
    lost_task = Render.objects.get(pk=render_id).task_id
    assert lost_task

    # when: Redis restarts empty (its queued message is gone) and workers come back
    purge_test_queue()
    recovering_worker.start()

    # then: the sweeper sees the message missing from the broker, re-sends it, and it renders once
    done = poll(singer, render_id, until={"done", "failed"}, timeout=60)
    assert done["status"] == "done", (done["error"], recovering_worker.output()[-3000:])
    assert done["attempts"] == 1
    assert Render.objects.get(pk=render_id).task_id != lost_task
    assert "lost its message" in recovering_worker.output()
