"""Benchmark: from POST /api/renders/ to a downloadable MP3, through real Celery workers.

Not a test. In a scratch database and media folder (nothing of yours is touched), with the test
settings (TimGM6mb) and a queue of its own, it uploads a generated 3-minute 8-part song and measures:

1. a first render (+2 semitones, 0.8x) with one worker: POST -> status done -> MP3 downloaded;
2. a mix-only change of that variant (served from the worker's cached stems);
3. the identical request again (answered from the database: same render, no new task);
4. throughput: N distinct renders with one worker, then N with two workers, and the ratio.

    .venv/bin/python bench/api_render.py [--minutes 3] [--renders 4] [--pool prefork|threads|solo]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.process_groups import stop_process_groups  # noqa: E402


def configure_environment(scratch: Path) -> dict[str, str]:
    env = {
        "DJANGO_SETTINGS_MODULE": "backtrack.test_settings",
        "DATABASE_URL": f"sqlite:///{scratch / 'bench.sqlite3'}",
        "MEDIA_ROOT": str(scratch / "media"),
        "RENDER_CACHE_DIR": str(scratch / "render-cache"),
        "BACKTRACK_TEST_QUEUE": f"backtrack-bench-{uuid.uuid4().hex[:8]}",
        "RENDER_MAX_ACTIVE_PER_USER": "100",
        "THROTTLE_RENDERS": "10000/hour",
        "THROTTLE_UPLOADS": "10000/hour",
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.update(env)
    return {**os.environ, **env}


class Worker:
    pool = "prefork"

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self.handle = log.open("wb")
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("celery")), "-A", "backtrack", "worker", "-P", self.pool,
                "-c", "1", "--loglevel=INFO", "-n", f"bench-{uuid.uuid4().hex[:6]}@%h",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
            ],
            cwd=REPO_ROOT, env=env, stdout=self.handle, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while " ready." not in log.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"worker did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.1)

    def stop(self) -> None:
        stop_process_groups([(self.process, self.handle)])


def wait_for_log(worker: Worker, *words: str, count: int, timeout: float = 120.0) -> float:
    """Seconds until ``count`` lines of the worker's log hold all ``words``."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        lines = worker.log_path.read_text(errors="replace").splitlines()
        if sum(all(word in line for word in words) for line in lines) >= count:
            return time.perf_counter() - start
        time.sleep(0.05)
    raise SystemExit(f"the worker log never showed {count} lines with {words}")


def wait_stems_quiet(workers: list[Worker], timeout: float = 180.0) -> None:
    """Wait until no background stems task is running or waiting on any worker (between phases)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        received = finished = 0
        for worker in workers:
            for line in worker.log_path.read_text(errors="replace").splitlines():
                if "render_stems_prepare[" in line:
                    received += "received" in line
                    finished += any(word in line for word in (" succeeded ", " retry: ", " raised "))
        if received == finished:
            return
        time.sleep(0.2)
    raise SystemExit("background stems tasks did not settle")


def wait_done(client: Any, render_id: int, timeout: float = 300.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/api/renders/{render_id}/").json()
        if body["status"] == "done":
            return body
        if body["status"] == "failed":
            raise SystemExit(f"render {render_id} failed: {body['error']}")
        time.sleep(0.05)
    raise SystemExit(f"render {render_id} not done after {timeout} s")


def render_and_download(client: Any, payload: dict[str, Any]) -> tuple[float, dict[str, Any], int]:
    """Seconds from POST to the downloaded MP3; the render body; the HTTP status of the POST."""
    start = time.perf_counter()
    response = client.post("/api/renders/", payload, format="json")
    if response.status_code not in (200, 202):
        raise SystemExit(f"POST /api/renders/ answered {response.status_code}: {response.content!r}")
    body = (
        response.json() if response.json()["status"] == "done" else wait_done(client, response.json()["id"])
    )
    download = client.get(f"/api/renders/{body['id']}/download/")
    data = b"".join(download.streaming_content)
    elapsed = time.perf_counter() - start
    if download.status_code != 200 or len(data) < 1000:
        raise SystemExit(f"download failed: {download.status_code}")
    return elapsed, body, response.status_code


def throughput(client: Any, track_id: int, transposes: list[int]) -> float:
    """Renders per minute for a batch of distinct variants requested at once."""
    start = time.perf_counter()
    ids = []
    for transpose in transposes:
        response = client.post(
            "/api/renders/", {"track": track_id, "transpose": transpose, "tempo": 0.9}, format="json"
        )
        ids.append(response.json()["id"])
    for render_id in ids:
        wait_done(client, render_id)
    elapsed = time.perf_counter() - start
    return len(ids) * 60.0 / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--parts", type=int, default=8)
    parser.add_argument("--renders", type=int, default=4, help="renders per throughput batch")
    parser.add_argument(
        "--pool", default="prefork", help="Celery pool of each worker (prefork, threads, solo)"
    )
    args = parser.parse_args()
    Worker.pool = args.pool

    scratch = Path(tempfile.mkdtemp(prefix="backtrack-bench-"))
    env = configure_environment(scratch)

    import django

    django.setup()
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from rest_framework.test import APIClient

    from backtrack.celery import app
    from performers.models import Genre, Profile, User
    from tracks.demo import compose_song
    from tracks.models import Render

    call_command("migrate", verbosity=0)
    producer = User.objects.create(username="bench-producer", is_producer=True)
    singer = User.objects.create(username="bench-singer", is_performer=True)
    for user in (producer, singer):
        Profile.objects.create(user=user)
    Genre.objects.get_or_create(slug="pop", defaults={"name": "Pop"})
    producer_client, client = APIClient(), APIClient()
    producer_client.force_authenticate(producer)
    client.force_authenticate(singer)

    def upload(title: str, minutes: float, seed: int) -> int:
        midi = compose_song(style="pop", minutes=minutes, parts=args.parts, seed=seed)
        response = producer_client.post(
            "/api/tracks/",
            {"title": title, "genre": "pop", "midi": SimpleUploadedFile("song.mid", midi)},
            format="multipart",
        )
        assert response.status_code == 201, response.content
        return int(response.json()["id"])

    song = upload("Bench song", args.minutes, 11)
    warmup = upload("Warm-up", 0.1, 12)
    workers: list[Worker] = []
    try:
        workers.append(Worker(env, scratch / "worker-1.log"))
        # The first task of a fresh worker loads the SoundFont and starts its stem processes.
        cold, _, _ = render_and_download(client, {"track": warmup})

        first, body, status = render_and_download(client, {"track": song, "transpose": 2, "tempo": 0.8})
        # After a first render the worker builds per-part stems in the background (a listener is
        # still listening to the first render); the mix change is measured once they exist.
        # (the warm-up render asked for stems too: this is the second stems task)
        stems_wait = wait_for_log(workers[0], "render_stems_prepare", "succeeded", count=2)
        mix, mixed, _ = render_and_download(
            client,
            {"track": song, "transpose": 2, "tempo": 0.8, "mix": {"4": {"mute": True}, "1": {"gain_db": -4}}},
        )
        renders_before = Render.objects.count()
        identical, again, again_status = render_and_download(
            client, {"track": song, "transpose": 2, "tempo": 0.8}
        )
        new_rows = Render.objects.count() - renders_before

        # Each batch is measured from a quiet queue; the stems the previous phase asked for step
        # back while renders wait, and are left to settle in between.
        wait_stems_quiet(workers)
        one = throughput(client, song, list(range(-args.renders, 0)))
        workers.append(Worker(env, scratch / "worker-2.log"))
        render_and_download(client, {"track": warmup, "transpose": 1})  # warm the second worker too
        render_and_download(client, {"track": warmup, "transpose": 2})
        wait_stems_quiet(workers)
        two = throughput(client, song, list(range(3, 3 + args.renders)))
    finally:
        for worker in workers:
            worker.stop()
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(env["BACKTRACK_TEST_QUEUE"])

    audio_s = body["duration_s"]
    print(f"song: {args.minutes:g} min, {args.parts} parts; +2 semitones at 0.8x -> {audio_s:.1f} s of audio")
    print(f"{'worker warm-up (tiny song, cold worker)':48s} {cold:7.2f} s")
    print(f"{'POST -> downloaded MP3, one worker':48s} {first:7.2f} s   (target < 8 s)")
    print(f"{'background stems ready after the first render':48s} {stems_wait:7.2f} s later")
    print(
        f"{'mix-only change':48s} {mix:7.2f} s   ({mix / first:.2f} of the first; target < 0.5; "
        f"stems reused: {mixed['stems_reused']})"
    )
    print(
        f"{'identical request':48s} {identical:7.3f} s   (HTTP {again_status}, same render: "
        f"{again['id'] == body['id']}, new rows: {new_rows}, status {again['status']})"
    )
    print(f"{'throughput, one worker':48s} {one:7.2f} renders/min ({args.renders} renders)")
    print(f"{'throughput, two workers':48s} {two:7.2f} renders/min ({args.renders} renders)")
    print(f"{'ratio two/one':48s} {two / one:7.2f}x   (target >= 1.8)")
    print(f"(POST status of the first render: {status}; scratch folder {scratch} removed)")
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
