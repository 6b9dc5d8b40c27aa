"""Two machines on one box: workers with their own caches and temp folders against one Redis, one
database and one S3 server (moto on loopback). Renders spread over both, a mix change is served by
the worker that lacks the stems (fetched, not synthesized), a worker killed mid-render has its render
re-run on the other, and no render is done twice."""

# ruff: noqa: F811 - the S3 fixtures are imported from tests.s3 and requested by name

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.factories import PerformerFactory
from tests.integration.conftest import RECOVERY_ENV
from tests.integration.test_render_pipeline import ffprobe_duration, poll, upload_track
from tests.integration.worker import Worker, purge_test_queue
from tests.s3 import s3_server, s3_storage  # noqa: F401 (fixtures)
from tracks.models import Render

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


class Machines:
    """Workers that share Redis, the database and the bucket, each with its own disk."""

    def __init__(self, tmp_path: Path, media: Path, s3_env: dict[str, str]) -> None:
        self.tmp_path = tmp_path
        self.media = media
        self.s3_env = s3_env
        self.workers: list[Worker] = []

    def worker(self, name: str, *, beat: bool = False, queues: str | None = None) -> Worker:
        disk = self.tmp_path / name
        (disk / "tmp").mkdir(parents=True, exist_ok=True)
        env = {
            **self.s3_env,
            **RECOVERY_ENV,
            "TMPDIR": str(disk / "tmp"),
            "RENDER_THREADS": "1",
            # Storage declared fast: a mix change on the machine without the stems fetches them
            # (on loopback moto, synthesizing these short songs is cheaper, and would be chosen).
            "RENDER_STEMS_FETCH_MB_PER_S": "100000",
        }
        worker = Worker(disk, self.media, disk / "render-cache", beat=beat, env=env, queues=queues)
        self.workers.append(worker)
        return worker

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()


@pytest.fixture
def machines(
    transactional_db: None, tmp_path: Path, isolated_media: Path, s3_storage: Any
) -> Iterator[Machines]:
    purge_test_queue(unacked=True)
    farm = Machines(tmp_path, isolated_media, s3_storage.env)
    try:
        yield farm
    finally:
        farm.stop()
        purge_test_queue(unacked=True)


def renders_run_by(worker: Worker) -> list[str]:
    """Task ids of the renders this worker finished (succeeded in Celery's log)."""
    return re.findall(r"Task tracks\.tasks\.render_run\[([0-9a-f-]+)\] succeeded", worker.output())


def wait_for(condition: Any, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def failures(output: str) -> str:
    """A worker log's tracebacks and errors (what a failed assertion should show), else its tail."""
    lines = output.splitlines()
    markers = ("Traceback", "ERROR", "unexpectedly")
    keep = [i for i, line in enumerate(lines) if any(marker in line for marker in markers)]
    if not keep:
        return "\n".join(lines[-15:])
    return "\n".join(lines[max(0, keep[0] - 2) : keep[0] + 60])


def test_a_real_worker_renders_against_s3_and_nothing_touches_the_media_folder(
    machines, client_for, s3_storage, isolated_media, tmp_path
):
    # given: one worker on S3 storage
    machines.worker("a").start()
    _, track = upload_track(client_for, minutes=0.25)
    singer = client_for(PerformerFactory())

    # when: a singer's render
    created = singer.post("/api/renders/", {"track": track["id"], "transpose": 2}, format="json")
    done = poll(singer, created.json()["id"], until={"done", "failed"})

    # then: the MP3 is in the bucket, served by a signed URL, and MEDIA_ROOT stayed empty
    assert done["status"] == "done", (done["error"], machines.workers[0].output()[-3000:])
    response = singer.get(done["download_url"])
    assert response.status_code == 302
    audio = tmp_path / "download.mp3"
    with urllib.request.urlopen(response["Location"]) as body:  # noqa: S310 (loopback)
        audio.write_bytes(body.read())
    assert ffprobe_duration(audio) == pytest.approx(done["duration_s"], abs=0.15)
    assert any(name.startswith("renders/") for name in s3_storage.names())
    assert [path for path in isolated_media.rglob("*") if path.is_file()] == []


def test_two_machines_share_renders_stems_and_recover_each_others_work(machines, client_for, s3_storage):
    _, track = upload_track(client_for, minutes=0.25)
    revision = track["current_revision"]["id"]
    singers = [client_for(PerformerFactory()) for _ in range(3)]

    # given: machine A alone renders a first variant and (stems queue) shares its stems
    a = machines.worker("a")
    a.start()
    first = singers[0].post("/api/renders/", {"track": track["id"]}, format="json").json()
    assert poll(singers[0], first["id"], until={"done", "failed"})["status"] == "done", a.output()[-3000:]
    wait_for(lambda: s3_storage.names(f"stems/{revision}/"), timeout=120, what="stems were not shared")

    # when: A goes away and machine B, which never saw this song, gets a mix change
    a.stop()
    b = machines.worker("b")
    b.start()
    mix = (
        singers[1]
        .post("/api/renders/", {"track": track["id"], "mix": {"1": {"gain_db": -6}}}, format="json")
        .json()
    )
    mixed = poll(singers[1], mix["id"], until={"done", "failed"})

    # then: B served it from the fetched stems, without synthesis
    assert mixed["status"] == "done", (mixed["error"], b.output()[-3000:])
    assert Render.objects.get(pk=mix["id"]).stems_reused is True
    assert "fetched stems" in b.output()

    # when: both machines serve a burst of renders
    a.start()
    burst = [
        singers[index % 3].post("/api/renders/", {"track": track["id"], "transpose": t}, format="json").json()
        for index, t in enumerate((1, 2, 3, 4, -1, -2))
    ]
    for created in burst:
        assert poll(singers[0], created["id"], until={"done", "failed"}, timeout=180)["status"] == "done"

    # then: both took some
    burst_tasks = set(
        Render.objects.filter(pk__in=[c["id"] for c in burst]).values_list("task_id", flat=True)
    )
    # The workers log "succeeded" a moment after the rows say done.
    wait_for(
        lambda: burst_tasks <= set(renders_run_by(a) + renders_run_by(b)),
        timeout=30,
        what="the workers never logged every render",
    )
    assert burst_tasks & set(renders_run_by(a))
    assert burst_tasks & set(renders_run_by(b))

    # and every render was done exactly once, by one machine
    finished = renders_run_by(a) + renders_run_by(b)
    twice = {task for task in finished if finished.count(task) > 1}
    logs = (a.output() + b.output()).splitlines()
    assert not twice, [line for line in logs if any(task in line for task in twice)]
    assert len(finished) == Render.objects.count()


def test_a_machine_killed_mid_render_has_its_render_rerun_on_the_other(machines, client_for):
    # given: machine B renders a long variant; machine A (which also runs the sweeper) is up
    _, track = upload_track(client_for, minutes=1.5, parts=6)
    singer = client_for(PerformerFactory())
    b = machines.worker("b", queues="renders")
    b.start()
    render_id = singer.post("/api/renders/", {"track": track["id"], "transpose": 1}, format="json").json()[
        "id"
    ]
    poll(singer, render_id, until={"rendering", "done", "failed"}, interval=0.02)
    assert Render.objects.get(pk=render_id).status == "rendering", "the render finished before the kill"
    a = machines.worker("a", beat=True)
    a.start()

    # when: machine B dies whole (no goodbye: its message stays unacknowledged in Redis)
    b.kill()

    # then: the sweeper on A sees B's silent heartbeat, re-queues it, and A renders it, once
    done = poll(singer, render_id, until={"done", "failed"}, timeout=180)
    assert done["status"] == "done", (done["error"], failures(a.output()), failures(b.output()))
    assert done["attempts"] == 2
    task_id = Render.objects.get(pk=render_id).task_id
    # The worker logs "succeeded" after the row says done (its log passes through its main process).
    wait_for(lambda: renders_run_by(a), timeout=30, what="the worker never logged the render")
    assert renders_run_by(a) == [task_id]
    assert renders_run_by(b) == []
