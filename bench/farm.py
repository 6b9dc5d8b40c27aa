"""Benchmark: a farm of one, then two "machines" serving a stream of mixed requests from 10 singers.

Not a test. In a scratch database, with the test settings (TimGM6mb), queues of its own and moto's S3
server on loopback as the media storage, each "machine" is a Celery worker (prefork, one process,
RENDER_THREADS=1) with its own render cache and temp folder. Ten simulated singers send, at random
moments, a stream of requests over a few songs: new variants (a key or tempo nobody asked for yet),
mix changes of a variant already asked for (served from stems when a worker has them or fetches
them), and identical repeats (answered from the database). It reports, per farm size:

- renders per minute (rendered variants / time from the first request to the last MP3);
- p50 and p95 from request to downloaded MP3 (repeats included: that is what a singer waits);
- the share of mix changes that had to synthesize (no stems on the worker or in storage);
- the mean render time (claim to done), the per-render CPU cost the README's sizing model uses.

By default each machine's one worker consumes every queue. With ``--background-worker`` each machine
runs the Procfile's two workers instead, sharing its disk: ``worker`` on the renders queue only, and
``background`` on the stems and maintenance queues (``nice -n 10``, one process).

    .venv/bin/python bench/farm.py [--requests 30] [--interval 2.0] [--minutes 0.5] [--seed 1]
    .venv/bin/python bench/farm.py --background-worker
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.process_groups import stop_process_groups  # noqa: E402

SINGERS = 10
SONGS = 3


def start_s3() -> tuple[Any, str]:
    import socket

    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{port}"


def configure_environment(scratch: Path, endpoint: str, bucket: str) -> dict[str, str]:
    env = {
        "DJANGO_SETTINGS_MODULE": "backtrack.test_settings",
        "DATABASE_URL": f"sqlite:///{scratch / 'bench.sqlite3'}",
        "MEDIA_ROOT": str(scratch / "media"),
        "RENDER_CACHE_DIR": str(scratch / "web-cache"),
        "BACKTRACK_TEST_QUEUE": f"backtrack-farm-{uuid.uuid4().hex[:8]}",
        "RENDER_MAX_ACTIVE_PER_USER": "100",
        "THROTTLE_RENDERS": "10000/hour",
        "THROTTLE_UPLOADS": "10000/hour",
        "AWS_STORAGE_BUCKET_NAME": bucket,
        "AWS_S3_ENDPOINT_URL": endpoint,
        "AWS_S3_REGION_NAME": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "RENDER_SHARE_STEMS": "true",
        "RENDER_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.update(env)
    return {**os.environ, **env}


class Machine:
    """A Celery worker with its own disk (render cache, temp folder), like another host.

    ``background=True``: two workers on that disk, as the Procfile runs them: one on the renders
    queue, and one on the stems and maintenance queues at nice 10 (else one worker on every queue).
    The queue names are WORKER_QUEUES's; the test settings prefix them with BACKTRACK_TEST_QUEUE
    (backtrack/queues.py), as they do the routes the web side publishes to.
    """

    def __init__(self, env: dict[str, str], disk: Path, *, background: bool = False) -> None:
        (disk / "tmp").mkdir(parents=True, exist_ok=True)
        self.disk = disk
        self.env = {**env, "RENDER_CACHE_DIR": str(disk / "cache"), "TMPDIR": str(disk / "tmp")}
        self.workers: list[tuple[subprocess.Popen[bytes], Path, Any]] = []
        try:
            if background:
                self._start("renders", queues="renders")
                self._start("background", queues="stems,maintenance", nice=10)
            else:
                self._start("farm")
        except BaseException:
            self.stop()
            raise

    def _start(self, name: str, *, queues: str | None = None, nice: int = 0) -> None:
        log_path = self.disk / f"{name}.log"
        handle = log_path.open("wb")
        env = {**self.env, "WORKER_QUEUES": queues} if queues else self.env
        process = subprocess.Popen(
            [
                *(["nice", "-n", str(nice)] if nice else []),
                str(Path(sys.executable).with_name("celery")), "-A", "backtrack", "worker", "-P", "prefork",
                "-c", "1", "--loglevel=INFO", "-n", f"{name}-{uuid.uuid4().hex[:6]}@%h",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
            ],
            cwd=REPO_ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.workers.append((process, log_path, handle))
        deadline = time.monotonic() + 60
        while " ready." not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"worker did not start:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.1)

    def stop(self) -> None:
        stop_process_groups([(process, handle) for process, _log_path, handle in self.workers])
        self.workers = []


def request_stream(rng: random.Random, songs: list[int], count: int, interval: float) -> list[dict[str, Any]]:
    """``count`` requests at random moments (exponential gaps of mean ``interval``), each with the dice
    that decide, when it is sent, what it asks for (see ``request_payload``)."""
    stream = []
    at = 0.0
    for _ in range(count):
        at += rng.expovariate(1 / interval)
        stream.append(
            {
                "at": at,
                "roll": rng.random(),
                "singer": rng.randrange(SINGERS),
                "new": {
                    "track": rng.choice(songs),
                    "transpose": rng.randint(-5, 5),
                    "tempo": rng.choice([0.9, 1.0]),
                },
                "pick": rng.randrange(1000),
                "mix": {str(rng.randint(0, 3)): {"gain_db": float(rng.choice([-9, -6, -3, 3]))}},
            }
        )
    return stream


def request_payload(request: dict[str, Any], heard: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """A new variant (40 %), a mix change (40 %) or an identical repeat (20 %) of a variant somebody
    has already heard (its MP3 was downloaded): a singer tweaks the mix after listening."""
    if not heard or request["roll"] < 0.4:
        return "new", dict(request["new"])
    base = heard[request["pick"] % len(heard)]
    if request["roll"] < 0.8:
        return "mix", {**base, "mix": request["mix"]}
    return "repeat", dict(base)


def run_stream(clients: list[Any], stream: list[dict[str, Any]]) -> dict[str, Any]:
    from tracks.models import Render

    start = time.perf_counter()
    pending: dict[int, list[dict[str, Any]]] = {}
    waits: list[float] = []
    created: dict[int, str] = {}  # render id -> kind of the request that created it
    heard: list[dict[str, Any]] = []  # variants whose MP3 a singer downloaded
    index = 0
    while index < len(stream) or pending:
        now = time.perf_counter() - start
        if index < len(stream) and stream[index]["at"] <= now:
            request = stream[index]
            index += 1
            client = clients[request["singer"]]
            request["kind"], request["payload"] = request_payload(request, heard)
            request["posted"] = time.perf_counter()
            response = client.post("/api/renders/", request["payload"], format="json")
            if response.status_code not in (200, 202):
                raise SystemExit(f"POST answered {response.status_code}: {response.content!r}")
            render_id = int(response.json()["id"])
            created.setdefault(render_id, request["kind"])
            request["client"] = client
            pending.setdefault(render_id, []).append(request)
            continue
        done = dict(
            Render.objects.filter(pk__in=list(pending), status__in=("done", "failed")).values_list(
                "pk", "status"
            )
        )
        for render_id, status in done.items():
            if status == "failed":
                raise SystemExit(f"render {render_id} failed: {Render.objects.get(pk=render_id).error}")
            for request in pending.pop(render_id):
                download = request["client"].get(f"/api/renders/{render_id}/download/")
                with urllib.request.urlopen(download["Location"]) as body:  # noqa: S310 (loopback)
                    if len(body.read()) < 1000:
                        raise SystemExit("empty MP3")
                waits.append(time.perf_counter() - request["posted"])
                if request["kind"] == "new":
                    heard.append(request["payload"])
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    rows = Render.objects.filter(pk__in=list(created))
    mixes = [row for row in rows if created[row.pk] == "mix"]
    durations = [
        (row.finished_at - row.started_at).total_seconds()
        for row in rows
        if row.finished_at and row.started_at
    ]
    waits.sort()
    return {
        "renders": len(created),
        "requests": len(stream),
        "per_minute": len(created) * 60 / elapsed,
        "p50": statistics.median(waits),
        "p95": waits[min(len(waits) - 1, round(0.95 * (len(waits) - 1)))],
        "mix_changes": len(mixes),
        "mix_synthesized": sum(not row.stems_reused for row in mixes),
        "render_s": statistics.mean(durations),
        "elapsed": elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=30, help="requests per farm size")
    parser.add_argument("--interval", type=float, default=2.0, help="mean seconds between requests")
    parser.add_argument("--minutes", type=float, default=0.5, help="length of each song")
    parser.add_argument("--parts", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--background-worker",
        action="store_true",
        help="per machine, a renders worker and a background worker (stems, maintenance; nice 10)",
    )
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="backtrack-farm-"))
    server, endpoint = start_s3()
    import boto3

    env = configure_environment(scratch, endpoint, "farm")
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="farm")

    import django

    django.setup()
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from rest_framework.test import APIClient

    from performers.models import Genre, Profile, User
    from tests.integration.worker import purge_test_queue
    from tracks.demo import compose_song

    call_command("migrate", verbosity=0)
    Genre.objects.get_or_create(slug="pop", defaults={"name": "Pop"})
    producer = User.objects.create(username="farm-producer", is_producer=True)
    Profile.objects.create(user=producer)
    producer_client = APIClient()
    producer_client.force_authenticate(producer)
    clients = []
    for number in range(SINGERS):
        singer = User.objects.create(username=f"farm-singer-{number}", is_performer=True)
        Profile.objects.create(user=singer)
        client = APIClient()
        client.force_authenticate(singer)
        clients.append(client)

    def upload(title: str, seed: int) -> int:
        midi = compose_song(style="pop", minutes=args.minutes, parts=args.parts, seed=seed)
        response = producer_client.post(
            "/api/tracks/",
            {"title": title, "genre": "pop", "midi": SimpleUploadedFile("song.mid", midi)},
            format="multipart",
        )
        assert response.status_code == 201, response.content
        return int(response.json()["id"])

    results = {}
    machines: list[Machine] = []
    try:
        for size in (1, 2):
            # Fresh songs per farm size, so neither starts with the other's renders or stems.
            songs = [upload(f"Song {size}-{number}", seed=100 * size + number) for number in range(SONGS)]
            while len(machines) < size:
                machines.append(
                    Machine(env, scratch / f"machine-{len(machines) + 1}", background=args.background_worker)
                )
            stream = request_stream(random.Random(args.seed), songs, args.requests, args.interval)
            results[size] = run_stream(clients, stream)
    finally:
        for machine in machines:
            machine.stop()
        with contextlib.suppress(Exception):
            purge_test_queue(unacked=True)
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    print(
        f"{SINGERS} singers, {SONGS} songs of {args.minutes:g} min and {args.parts} parts; "
        f"{args.requests} requests per farm, one every {args.interval:g} s on average "
        "(40 % new variants, 40 % mix changes and 20 % repeats of variants already heard); "
        + (
            "per machine a renders worker and a background worker (stems, maintenance; nice 10)"
            if args.background_worker
            else "per machine one worker on every queue"
        )
    )
    for size, result in results.items():
        print(
            f"{size} machine(s): {result['per_minute']:5.1f} renders/min ({result['renders']} renders, "
            f"{result['requests']} requests in {result['elapsed']:.0f} s); request->MP3 p50 "
            f"{result['p50']:.1f} s, p95 {result['p95']:.1f} s; mix changes synthesized "
            f"{result['mix_synthesized']}/{result['mix_changes']}; mean render {result['render_s']:.2f} s"
        )


if __name__ == "__main__":
    main()
