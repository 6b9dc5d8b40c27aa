"""Benchmark: instant listening (issue 14) against render-then-play, through a real web server and worker.

Not a test. In a scratch folder (SQLite database unless ``--database-url``, media, render cache), with
the test settings (TimGM6mb), queues of its own on ``--redis-url``, it starts the web server as the
Procfile does (``manage.py runserver``, threaded) and one Celery worker as the Procfile does (prefork,
``WORKER_CONCURRENCY`` or 2 processes, every queue), uploads each song as a producer through the API,
waits for the upload's loudness job, and then measures as a singer, over HTTP, each ``--repeat`` times
(median shown; every repeat asks for settings nobody asked for yet, so nothing is cached):

- key+tempo, render-then-play (the baseline): POST /api/renders/ -> poll GET /api/renders/{id}/
  every ``--poll`` s until done -> GET download_url: seconds from the POST to the first audio byte;
- key+tempo, streamed: POST -> GET stream_url: seconds to the first audio byte and to "playable"
  (2 s of 192 kbps audio, 48,000 bytes plus a frame, received);
- mix-only change of the written key (its per-part stems were built by the upload's job): streamed
  with ``listen_from`` -> GET stream_url?from=, first byte; baseline the same kind of change
  render-then-play;
- the streamed audio (from 0) against the stored file, both decoded by ffmpeg: same bytes, length and
  loudness difference, the file's LUFS and dBTP;
- two listeners: two new variants POSTed at the same moment, each streamed: first byte against the
  single-listener figure;
- where a stream's first byte goes: POST answered, task received by the worker (its log), render
  claimed (``started_at``), first frame published (the Redis stream entry's id is its time), first
  byte at the listener.

Between measurements it waits until the worker is idle (the stems job a first render queues would
otherwise run beside the next measurement; ``--no-settle`` keeps it). Nothing is asserted.

    .venv/bin/python bench/listen.py                       # both songs, 3 repeats
    .venv/bin/python bench/listen.py --only 3min --repeat 1
    .venv/bin/python bench/listen.py --database-url postgres://postgres@127.0.0.1:5432/bench_listen
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.process_groups import stop_process_groups  # noqa: E402

PLAYABLE_BYTES = 48_000 + 627  # 2 s at 192 kbps and one more frame
TARGET_FIRST_S = 1.0
TARGET_PLAYABLE_S = 1.5
TARGET_MIX_S = 0.3
TIMEOUT_S = 300.0
_LOG_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): ")
_TASK_LINE = re.compile(r"Task ([\w.]+)\[([0-9a-f-]+)\] (received|succeeded|retry|raised|failed)")


# -- processes ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def configure_environment(scratch: Path, args: argparse.Namespace) -> dict[str, str]:
    env = {
        "DJANGO_SETTINGS_MODULE": "backtrack.test_settings",
        "DATABASE_URL": args.database_url or f"sqlite:///{scratch / 'bench.sqlite3'}",
        "REDIS_URL": args.redis_url,
        "CELERY_BROKER_URL": args.redis_url,
        "MEDIA_ROOT": str(scratch / "media"),
        "RENDER_CACHE_DIR": str(scratch / "render-cache"),
        "SOUNDFONT_PATH": args.soundfont,
        "BACKTRACK_TEST_QUEUE": f"backtrack-listen-{uuid.uuid4().hex[:8]}",
        "RENDER_MAX_ACTIVE_PER_USER": "100",
        "THROTTLE_RENDERS": "10000/hour",
        "THROTTLE_UPLOADS": "10000/hour",
        "PYTHONUNBUFFERED": "1",
        "TMPDIR": str(scratch / "tmp"),
    }
    (scratch / "tmp").mkdir(parents=True, exist_ok=True)
    os.environ.update(env)
    os.environ.pop("WORKER_QUEUES", None)  # the default: every queue
    return dict(os.environ)


class Process:
    """A child process in its own process group, its output in a log file."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path, ready: Callable[[], bool]) -> None:
        self.log_path = log
        self.handle = log.open("wb")
        self.process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while not ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"{command[0]} did not start:\n{self.output()[-3000:]}")
            time.sleep(0.1)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process_groups([(self.process, self.handle)])


def start_worker(env: dict[str, str], scratch: Path, concurrency: int, *, trace: bool) -> Process:
    log = scratch / "worker.log"
    log.touch()
    arguments = [
        "-A", "backtrack", "worker", "-P", "prefork", f"--concurrency={concurrency}", "--loglevel=INFO",
        "-n", f"listen-{uuid.uuid4().hex[:6]}@%h",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    command = (
        [sys.executable, __file__, "--child", "worker", *arguments]
        if trace
        else [str(Path(sys.executable).with_name("celery")), *arguments]
    )
    return Process(command, env, log, lambda: " ready." in log.read_text(errors="replace"))


def start_web(env: dict[str, str], scratch: Path, port: int, *, trace: bool) -> Process:
    def answering() -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
        return False

    arguments = ["runserver", f"127.0.0.1:{port}", "--noreload"]
    command = (
        [sys.executable, __file__, "--child", "web", *arguments]
        if trace
        else [sys.executable, "manage.py", *arguments]
    )
    return Process(command, env, scratch / "web.log", answering)


# -- HTTP -----------------------------------------------------------------------------------------


class Api:
    """A logged-in client (token) of the web server; a connection per thread."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.headers = {"Authorization": f"Token {token}"}
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT_S)
            self._local.connection = connection
        return connection

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        for attempt in range(2):
            connection = self._connection()
            try:
                connection.request(method, path, body=body, headers={**self.headers, **(headers or {})})
                response = connection.getresponse()
                data = response.read()
                if response.getheader("Connection", "").lower() == "close" or response.will_close:
                    connection.close()
                    self._local.connection = None
                return response.status, data
            except (http.client.HTTPException, ConnectionError):
                connection.close()
                self._local.connection = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps(payload).encode() if payload is not None else None
        status, data = self.request(
            method, path, body, {"Content-Type": "application/json"} if body else None
        )
        if status >= 400:
            raise SystemExit(f"{method} {path} answered {status}: {data[:500]!r}")
        return dict(json.loads(data))

    def upload(self, title: str, midi: bytes) -> dict[str, Any]:
        boundary = uuid.uuid4().hex
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\n{title}\r\n'.encode(),
            f'--{boundary}\r\nContent-Disposition: form-data; name="genre"\r\n\r\npop\r\n'.encode(),
            f'--{boundary}\r\nContent-Disposition: form-data; name="midi"; filename="song.mid"\r\n'
            "Content-Type: audio/midi\r\n\r\n".encode()
            + midi
            + b"\r\n",
            f"--{boundary}--\r\n".encode(),
        ]
        status, data = self.request(
            "POST",
            "/api/tracks/",
            b"".join(parts),
            {"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        if status != 201:
            raise SystemExit(f"upload answered {status}: {data[:500]!r}")
        return dict(json.loads(data))

    def listen(self, url: str, started: float, *, keep: bool = True) -> dict[str, Any]:
        """GET ``url`` on a fresh connection, reading the body as it comes: seconds from ``started``
        (perf_counter) to the headers, the first body byte, ``PLAYABLE_BYTES`` and the end."""
        path = urllib.parse.urlsplit(url)
        target = path.path + (f"?{path.query}" if path.query else "")
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT_S)
        try:
            connection.request("GET", target, headers=self.headers)
            response = connection.getresponse()
            result: dict[str, Any] = {"headers_s": time.perf_counter() - started, "status": response.status}
            result["header"] = {name.lower(): value for name, value in response.getheaders()}
            if response.status != 200:
                result["error"] = response.read()[:500]
                return result
            body = bytearray()
            received = 0
            while True:
                chunk = response.read1(65536)
                if not chunk:
                    break
                now = time.perf_counter() - started
                if received == 0:
                    result["first_s"] = now
                    result["first_wall"] = time.time()
                received += len(chunk)
                if received >= PLAYABLE_BYTES and "playable_s" not in result:
                    result["playable_s"] = now
                if keep:
                    body += chunk
            result["end_s"] = time.perf_counter() - started
            result["bytes"] = received
            result["data"] = bytes(body)
            return result
        finally:
            connection.close()


# -- measurements ---------------------------------------------------------------------------------


def wait_render(api: Api, render_id: int, poll: float) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        body = api.json("GET", f"/api/renders/{render_id}/")
        if body["status"] == "done":
            return body
        if body["status"] == "failed":
            raise SystemExit(f"render {render_id} failed: {body['error']}")
        time.sleep(poll)
    raise SystemExit(f"render {render_id} not done after {TIMEOUT_S} s")


def render_then_play(api: Api, payload: dict[str, Any], poll: float) -> dict[str, Any]:
    """The baseline: POST, poll until done, download; seconds to the download's first byte."""
    started = time.perf_counter()
    created = api.json("POST", "/api/renders/", payload)
    if created["status"] == "done":
        raise SystemExit(f"render {created['id']} was already done: the settings were not new ({payload})")
    done = wait_render(api, int(created["id"]), poll)
    done_s = time.perf_counter() - started
    heard = api.listen(done["download_url"], started, keep=False)
    if heard["status"] != 200:
        raise SystemExit(f"download answered {heard['status']}: {heard.get('error')!r}")
    return {"id": int(created["id"]), "first_s": heard["first_s"], "done_s": done_s, "end_s": heard["end_s"]}


def stream(api: Api, payload: dict[str, Any], *, from_s: float = 0.0, keep: bool = True) -> dict[str, Any]:
    """POST, then GET stream_url at once: seconds to the first byte and to playable."""
    started_wall = time.time()
    started = time.perf_counter()
    created = api.json("POST", "/api/renders/", payload)
    posted_s = time.perf_counter() - started
    if created["status"] == "done":
        raise SystemExit(f"render {created['id']} was already done: the settings were not new ({payload})")
    url = created["stream_url"] + (f"?from={from_s:g}" if from_s else "")
    heard = api.listen(url, started, keep=keep)
    if heard["status"] != 200:
        raise SystemExit(f"stream answered {heard['status']}: {heard.get('error')!r}")
    return {
        "id": int(created["id"]),
        "posted_s": posted_s,
        "started_wall": started_wall,
        "status_at_start": heard["header"].get("x-render-status"),
        "stream_from": heard["header"].get("x-stream-from"),
        **{key: heard.get(key) for key in ("first_s", "playable_s", "end_s", "first_wall", "data")},
    }


def download(api: Api, render_id: int) -> bytes:
    status, data = api.request("GET", f"/api/renders/{render_id}/download/")
    if status != 200:
        raise SystemExit(f"download of {render_id} answered {status}")
    return data


def new_settings() -> Iterator[tuple[int, float]]:
    """Key and tempo pairs nobody asked for yet, near 0.9x (the written key is the mix-change base)."""
    for tempo in (0.9, 0.85, 0.95, 0.8, 1.05, 1.1):
        for step in range(1, 13):
            for transpose in (step, -step):
                yield transpose, tempo


# -- where the time goes --------------------------------------------------------------------------


def worker_tasks(log: str) -> dict[str, dict[str, float]]:
    """Task id -> {"name", "received", "ended"} (local-time log stamps as epoch seconds)."""
    tasks: dict[str, dict[str, Any]] = {}
    for line in log.splitlines():
        stamp, task = _LOG_TIME.match(line), _TASK_LINE.search(line)
        if not (stamp and task):
            continue
        when = dt.datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        entry = tasks.setdefault(task.group(2), {"name": task.group(1)})
        entry["received" if task.group(3) == "received" else "ended"] = when
    return tasks


def forget_streams(redis_url: str, *, also: str = "") -> None:
    """Drop listening streams an earlier run left in this Redis database: they are named by render id
    and settings, and a fresh database gives the same ids to the same requests."""
    import redis

    client = redis.Redis.from_url(redis_url)
    for pattern in ("backtrack:listen:*", *([also] if also else [])):
        for key in client.scan_iter(match=pattern, count=500):
            client.delete(key)


def wait_idle(worker: Process, *, grace: float = 0.4, timeout: float = TIMEOUT_S) -> float:
    """Until every task the worker received has ended and none is waiting (seconds waited)."""
    import redis
    from django.conf import settings

    from backtrack.queues import QUEUES, queue_name

    client: Any = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    names = [queue_name(queue, prefix=str(getattr(settings, "TEST_QUEUE_PREFIX", ""))) for queue in QUEUES]
    started = time.monotonic()
    time.sleep(grace)  # a finished render queues its stems job just after its row says done
    while time.monotonic() - started < timeout:
        waiting = sum(int(client.llen(name)) for name in names)
        tasks = worker_tasks(worker.output())
        if not waiting and all("ended" in task for task in tasks.values()):
            return time.monotonic() - started
        time.sleep(0.1)
    raise SystemExit("the worker did not become idle")


def breakdown(result: dict[str, Any], worker: Process) -> dict[str, float | None]:
    """Seconds from the POST to each step of a streamed render's first frame."""
    import redis
    from django.conf import settings

    from tracks.models import Render
    from tracks.services.listening import listen_key

    render = Render.objects.get(pk=result["id"])
    origin = result["started_wall"]
    received = worker_tasks(worker.output()).get(render.task_id, {}).get("received")
    client: Any = redis.Redis.from_url(settings.REDIS_URL)
    first = client.xrange(listen_key(render=render), count=1)
    published = int(first[0][0].decode().split("-")[0]) / 1000 if first else None

    def since(moment: float | None) -> float | None:
        return None if moment is None else moment - origin

    return {
        "posted": result["posted_s"],
        "enqueued": since(render.enqueued_at.timestamp() if render.enqueued_at else None),
        "received": since(received),
        "claimed": since(render.started_at.timestamp() if render.started_at else None),
        "published": since(published),
        "first_byte": result["first_s"],
        "render_s": (render.finished_at - render.started_at).total_seconds()
        if render.finished_at and render.started_at
        else None,
    }


# -- tracing (--trace): timing wrappers installed in the bench's own child processes ---------------

# Functions on the path from a request to a stream's first frame ("module:attribute"); each call
# prints "TRACE <end epoch> <seconds> <pid> <thread> <name>" to the process's log. Patched where
# they are looked up at call time (the module that calls them), never in the product's files.
TRACE_WEB = [
    "tracks.api.views:RenderCreateApi.post",
    "tracks.services:render_request",
    "tracks.services.renders:render_settings_normalise",
    "tracks.services.renders:arrangement_check",
    "tracks.services.renders:dynamics_check",
    "tracks.services.renders:sound_settings_apply",
    "tracks.services.renders:sound_slugs",
    "tracks.services.renders:_lock_requester",
    "tracks.services.renders:_check_active_limit",
    "tracks.services.renders:_remember_key",
    "tracks.services.renders:render_enqueue",
    "tracks.api.views:RenderDetailOutputSerializer.to_representation",
    "tracks.api.listening:RenderStreamApi.get",
    "tracks.services.listening:_ended_status",
    "tracks.services.listening:_stored_frames",
]
TRACE_WORKER = [
    "tracks.services:render_claim",
    "tracks.tasks:stems_fetch",
    "tracks.services:render_execute",
    "tracks.services.render_execution:revision_arrangement_load",
    "tracks.services.render_execution:engine_use_sections",
    "tracks.services.render_execution:sound_path",
    "tracks.services.render_execution:revision_loudness_profile",
    "tracks.services.render_execution:stream_variant",
    "tracks.services.render_execution:render_variant",
    "tracks.services.render_execution:audio_store",
    "tracks.services.listening:ListenPublisher.start",
    "tracks.services.listening:ListenPublisher.__call__:3",
    "tracks.engine.stream:arranged_song",
    "tracks.engine.stream:profile_for_stems",
    "tracks.engine.stream:_perform",
    "tracks.engine.stream:effective_part_gains",
    "tracks.engine.stream:predicted_master_gain_db",
    "tracks.engine.stream:_click_hits",
    "tracks.engine.stream:_load_manifest",
    "tracks.engine.stream:_synthesize_live",
    "tracks.engine.stream:_balanced_groups",
    "tracks.engine.stream:thread_synth",
    "tracks.engine.stream:_StreamMaster.run",
    "tracks.engine.stream:_StreamMaster._song_length",
    "tracks.engine.stream:_StreamMaster._mastered_stretch",
    "tracks.engine.stream:_Source.wait_for:6",
    "tracks.engine.stream:StemMixer.__init__:4",
    "tracks.engine.mix:StemMixer.read:6",
    "tracks.engine.stream:_StreamMaster._settle:4",
    "tracks.engine.encode:_Lame.__init__",
    "tracks.engine.encode:_Lame.write:8",
    "tracks.engine.stream:_FileTail.poll:12",
]
_TRACE_RENDER = [0]
_TRACE_LINE = re.compile(r"TRACE (\d+\.\d+) (\d+\.\d+) (\d+) (\S+) (\S+)")


def install_trace(targets: list[str]) -> None:
    import functools
    import importlib

    for target in targets:
        module_name, _, rest = target.partition(":")
        path, _, limit_text = rest.partition(":")
        limit = int(limit_text) if limit_text else 0
        owner: Any = importlib.import_module(module_name)
        *parents, attribute = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        original = getattr(owner, attribute)
        if isinstance(original, staticmethod | classmethod):
            continue

        def wrap(function: Any, name: str = path, limit: int = limit) -> Any:
            calls = [0, 0]  # calls in the current render, the render they were counted in

            @functools.wraps(function)
            def timed(*args: Any, **kwargs: Any) -> Any:
                if name == "render_execute":
                    _TRACE_RENDER[0] += 1  # limited calls are counted per render
                if calls[1] != _TRACE_RENDER[0]:
                    calls[:] = [0, _TRACE_RENDER[0]]
                calls[0] += 1
                if limit and calls[0] > limit:
                    return function(*args, **kwargs)
                started = time.perf_counter()
                try:
                    return function(*args, **kwargs)
                finally:
                    print(
                        f"TRACE {time.time():.4f} {time.perf_counter() - started:.4f} {os.getpid()} "
                        f"{threading.current_thread().name.replace(' ', '_')} {name}",
                        flush=True,
                    )

            return timed

        setattr(owner, attribute, wrap(original))


def run_child(kind: str, argv: list[str]) -> None:
    """``--child web|worker``: the web server or worker with the trace installed."""
    import django

    django.setup()
    if kind == "web":
        install_trace(TRACE_WEB)
        from django.core.management import execute_from_command_line

        execute_from_command_line(["manage.py", *argv])
    else:
        install_trace(TRACE_WORKER)
        from celery.bin.celery import main as celery_main

        sys.argv = ["celery", *argv]
        celery_main()


def traces(log: str, start: float, end: float) -> list[tuple[float, float, str, str, str]]:
    """(start, seconds, pid, thread, name) of the calls that began in ``start`` .. ``end`` (epoch)."""
    found = []
    for line in log.splitlines():
        match = _TRACE_LINE.search(line)  # a worker's child logs its stdout
        if match:
            ended, seconds = float(match.group(1)), float(match.group(2))
            began = ended - seconds
            if start <= began <= end:
                found.append((began, seconds, match.group(3), match.group(4), match.group(5)))
    return sorted(found)


def timeline(label: str, result: dict[str, Any], web: Process, worker: Process) -> list[str]:
    origin = result["started_wall"]
    end = result["first_wall"] + 0.05
    lines = [f"  trace of a {label} (s after the POST was sent; call start +duration):"]
    for process, tag in ((web, "web"), (worker, "worker")):
        for began, seconds, pid, thread, name in traces(process.output(), origin - 0.01, end):
            lines.append(
                f"    {began - origin:7.3f} +{seconds:6.3f}  {tag:<6} {pid}/{thread[:14]:<14} {name}"
            )
    lines.append(f"    {result['first_s']:7.3f}          listener: first audio byte")
    return lines


# -- the streamed audio against the file ----------------------------------------------------------


def decode(data: bytes) -> Any:
    import numpy as np

    process = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", "pipe:0", "-f", "f32le", "-ac", "2", "-ar", "44100", "pipe:1"],
        input=data,
        capture_output=True,
        check=True,
    )
    return np.frombuffer(process.stdout, dtype=np.float32).reshape(-1, 2)


def compare(streamed: bytes, stored: bytes) -> dict[str, Any]:
    from tracks.engine import integrated_loudness, true_peak_dbtp
    from tracks.services.listening import audio_frame_offsets

    offsets = audio_frame_offsets(stored)
    heard, kept = decode(streamed), decode(stored)
    return {
        "same_bytes": streamed == stored or bool(offsets and streamed == stored[offsets[0] :]),
        "length_ms": (heard.shape[0] - kept.shape[0]) / 44.1,
        "loudness_lu": integrated_loudness(heard, 44100) - integrated_loudness(kept, 44100),
        "file_lufs": integrated_loudness(kept, 44100),
        "file_dbtp": true_peak_dbtp(kept, 44100),
        "stream_dbtp": true_peak_dbtp(heard, 44100),
    }


# -- a song ---------------------------------------------------------------------------------------


def measure_song(
    name: str,
    midi: bytes,
    producer: Api,
    singer: Api,
    web: Process,
    worker: Process,
    args: argparse.Namespace,
    fresh: Iterator[tuple[int, float]],
) -> dict[str, Any]:
    from tracks.models import Revision

    track = producer.upload(name, midi)
    revision_id = int(track["current_revision"]["id"])
    uploaded = time.monotonic()
    while not Revision.objects.get(pk=revision_id).loudness:
        if time.monotonic() - uploaded > TIMEOUT_S:
            raise SystemExit(f"{name}: the revision's loudness was never measured\n{worker.output()[-3000:]}")
        time.sleep(0.1)
    measured_s = time.monotonic() - uploaded
    settle = (lambda: None) if args.no_settle else (lambda: wait_idle(worker))
    settle()

    def key_payload() -> dict[str, Any]:
        transpose, tempo = next(fresh)
        return {"track": track["id"], "transpose": transpose, "tempo": tempo}

    traced: list[str] = []
    rows: dict[str, list[Any]] = {
        "base": [], "stream": [], "mix_base": [], "mix_stream": [], "pair": [], "compare": [], "split": [],
        "mix_split": [],
    }  # fmt: skip
    for repeat in range(args.repeat):
        order = ("base", "stream") if repeat % 2 == 0 else ("stream", "base")
        for kind in order:
            if kind == "base":
                rows["base"].append(render_then_play(singer, key_payload(), args.poll))
            else:
                result = stream(singer, key_payload())
                rows["stream"].append(result)
                rows["split"].append(breakdown(result, worker))
                if args.trace and repeat == 0:
                    traced += timeline("key+tempo stream", result, web, worker)
                wait_render(singer, result["id"], args.poll)
                rows["compare"].append(compare(result.pop("data"), download(singer, result["id"])))
            settle()
        # A mix change of the written key: its stems are on the worker (the upload's loudness job).
        gain = -3.0 - repeat
        mixed = stream(
            singer,
            {"track": track["id"], "mix": {"0": {"gain_db": gain}}, "listen_from": args.listen_from},
            from_s=args.listen_from,
            keep=False,
        )
        rows["mix_stream"].append(mixed)
        rows["mix_split"].append(breakdown(mixed, worker))
        if args.trace and repeat == 0:
            traced += timeline("mix change stream", mixed, web, worker)
        wait_render(singer, mixed["id"], args.poll)
        settle()
        rows["mix_base"].append(
            render_then_play(singer, {"track": track["id"], "mix": {"1": {"gain_db": gain}}}, args.poll)
        )
        settle()
        # Two listeners on one worker, each asking for a new variant at the same moment.
        payloads = [key_payload(), key_payload()]
        barrier = threading.Barrier(2)
        pair: list[dict[str, Any]] = [{}, {}]

        def listen(
            index: int,
            payloads: list[dict[str, Any]] = payloads,
            pair: list[dict[str, Any]] = pair,
            barrier: threading.Barrier = barrier,
        ) -> None:
            barrier.wait()
            pair[index] = stream(singer, payloads[index], keep=False)

        threads = [threading.Thread(target=listen, args=(index,)) for index in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if not all(pair):
            raise SystemExit("a listener of the pair failed")
        rows["pair"].append(pair)
        settle()

    from tracks.models import Render

    reused = list(
        Render.objects.filter(pk__in=[row["id"] for row in rows["mix_stream"]]).values_list(
            "stems_reused", flat=True
        )
    )
    analysis = Revision.objects.get(pk=revision_id).analysis or {}
    audio_s = float(analysis.get("duration_s") or analysis.get("end_s") or 0.0)
    parts = len(analysis.get("parts") or [])
    return {
        "rows": rows, "measured_s": measured_s, "mix_reused": reused, "audio_s": audio_s, "parts": parts,
        "trace": traced,
    }  # fmt: skip


# -- report ---------------------------------------------------------------------------------------


def median(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def cell(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def report(name: str, audio_s: float, parts: int, result: dict[str, Any]) -> None:
    rows = result["rows"]
    single = median([row["first_s"] for row in rows["stream"]])

    def line(
        label: str, values: list[float | None], target: float | None = None, base: float | None = None
    ) -> None:
        present = [value for value in values if value is not None]
        mid = median(values)
        ratio = cell(mid / base) if mid is not None and base else ""
        verdict = "" if target is None or mid is None else ("ok" if mid <= target else "MISSED")
        spread = f"{cell(min(present))}-{cell(max(present))}" if present else "-"
        goal = cell(target, 1) if target else ""
        print(f"  {label:<44} {cell(mid):>7} {spread:>12} {ratio:>8} {goal:>7} {verdict}")

    measured = f"loudness job done {result['measured_s']:.1f} s after the upload"
    print(f"\n{name}: {audio_s:.0f} s, {parts} parts; {measured}")
    print(
        f"  {'measure (s from the request)':<44} {'median':>7} {'min-max':>12} {'vs base':>8} {'target':>7}"
    )
    base = median([row["first_s"] for row in rows["base"]])
    line("key+tempo render-then-play: first byte", [row["first_s"] for row in rows["base"]])
    line("  (of which: status done seen)", [row["done_s"] for row in rows["base"]])
    line("key+tempo stream: first byte", [row["first_s"] for row in rows["stream"]], TARGET_FIRST_S, base)
    line(
        "key+tempo stream: playable (2 s buffered)",
        [row["playable_s"] for row in rows["stream"]],
        TARGET_PLAYABLE_S,
        base,
    )
    line("key+tempo stream: whole stream received", [row["end_s"] for row in rows["stream"]], None, base)
    mix_base = median([row["first_s"] for row in rows["mix_base"]])
    line("mix change render-then-play: first byte", [row["first_s"] for row in rows["mix_base"]])
    line(
        f"mix change stream ?from={rows['mix_stream'][0]['stream_from']}: first byte",
        [row["first_s"] for row in rows["mix_stream"]],
        TARGET_MIX_S,
        mix_base,
    )
    line("mix change stream: playable", [row["playable_s"] for row in rows["mix_stream"]], None, mix_base)
    firsts = [listener["first_s"] for pair in rows["pair"] for listener in pair]
    line("two listeners: first byte (each)", firsts, None, single)
    print(f"  {'':<44} (vs base = ratio to the single listener's first byte; target <= 2.0)")
    line(
        "two listeners: playable (each)",
        [listener["playable_s"] for pair in rows["pair"] for listener in pair],
    )
    statuses = ", ".join(str(row["status_at_start"]) for row in rows["stream"])
    print(f"  render status when each stream started: {statuses}")
    print(f"  mix renders from cached stems: {result['mix_reused']}")
    print("  stream (from 0) vs stored file:")
    for number, row in enumerate(rows["compare"], 1):
        same = "yes" if row["same_bytes"] else "no"
        print(
            f"    #{number}: same bytes {same}, length {row['length_ms']:+.1f} ms, "
            f"loudness {row['loudness_lu']:+.3f} LU; file {row['file_lufs']:.2f} LUFS, "
            f"{row['file_dbtp']:.2f} dBTP (stream {row['stream_dbtp']:.2f} dBTP)"
        )
    for label, splits in (("key+tempo stream", rows["split"]), ("mix change stream", rows["mix_split"])):
        print(f"  where a {label}'s first byte goes (median s after the POST was sent):")
        keys = ("posted", "enqueued", "received", "claimed", "published", "first_byte", "render_s")
        print(
            "    " + "  ".join(f"{key} {cell(median([split[key] for split in splits]), 3)}" for key in keys)
        )
    for text in result["trace"]:
        print(text)


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        run_child(sys.argv[2], sys.argv[3:])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="", help="only the songs whose name contains this")
    parser.add_argument("--midi", nargs="*", default=None, help="MIDI files instead of the two default songs")
    parser.add_argument("--minutes", type=float, default=3.0, help="length of the generated song")
    parser.add_argument("--parts", type=int, default=8, help="parts of the generated song")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--poll", type=float, default=0.05, help="render-then-play status poll interval (s)")
    parser.add_argument(
        "--listen-from", type=float, default=60.0, help="where a mix change is listened from (s)"
    )
    parser.add_argument("--concurrency", type=int, default=int(os.environ.get("WORKER_CONCURRENCY", "2")))
    parser.add_argument("--database-url", default="", help="default: SQLite in the scratch folder")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/6")
    parser.add_argument("--soundfont", default="/usr/share/sounds/sf2/TimGM6mb.sf2")
    parser.add_argument("--no-settle", action="store_true", help="do not wait for an idle worker in between")
    parser.add_argument(
        "--trace", action="store_true", help="time the steps to the first frame (bench wrappers)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs) and print it")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="backtrack-listen-"))
    env = configure_environment(scratch, args)
    import django

    django.setup()
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from performers.models import Genre, Profile, User
    from tests.integration.worker import purge_test_queue
    from tracks.demo.compose import compose_song

    songs: list[tuple[str, bytes]]
    if args.midi:
        songs = [(Path(path).name, Path(path).read_bytes()) for path in args.midi]
    else:
        songs = [
            (
                f"generated_{args.minutes:g}min",
                compose_song(minutes=args.minutes, parts=args.parts, seed=args.seed),
            ),
            ("complex_18parts", (REPO_ROOT / "tests/data/midi/complex_18parts.mid").read_bytes()),
        ]
    songs = [(name, midi) for name, midi in songs if args.only in name]

    forget_streams(args.redis_url)
    call_command("migrate", verbosity=0)
    Genre.objects.get_or_create(slug="pop", defaults={"name": "Pop"})
    tokens = []
    for username, role in (("listen-producer", "is_producer"), ("listen-singer", "is_performer")):
        user = User.objects.create(username=username, **{role: True})
        Profile.objects.create(user=user)
        tokens.append(Token.objects.create(user=user).key)

    port = free_port()
    processes: list[Process] = []
    results = []
    try:
        web = start_web(env, scratch, port, trace=args.trace)
        processes.append(web)
        worker = start_worker(env, scratch, args.concurrency, trace=args.trace)
        processes.append(worker)
        load_before = os.getloadavg()
        producer, singer = Api(port, tokens[0]), Api(port, tokens[1])
        fresh = new_settings()
        for name, midi in songs:
            results.append((name, midi, measure_song(name, midi, producer, singer, web, worker, args, fresh)))
        load_after = os.getloadavg()
    finally:
        for process in reversed(processes):
            process.stop()
        with contextlib.suppress(Exception):
            purge_test_queue(unacked=True)
        with contextlib.suppress(Exception):
            forget_streams(args.redis_url, also=f"*{env['BACKTRACK_TEST_QUEUE']}*")  # its queues' bindings
        if args.keep:
            print(f"scratch folder (logs, database): {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)

    print(
        f"instant listening, {os.cpu_count()} cores, one worker (prefork, concurrency {args.concurrency}), "
        f"runserver, {'PostgreSQL' if args.database_url.startswith('postgres') else 'SQLite'}, "
        f"{Path(args.soundfont).name}; median of {args.repeat}; status poll every {args.poll:g} s; "
        f"load average {load_before[0]:.1f} at the start, {load_after[0]:.1f} at the end"
        + (" (traced: wrappers add a little time)" if args.trace else "")
    )
    for name, _midi, result in results:
        report(name, result["audio_s"], result["parts"], result)


if __name__ == "__main__":
    main()
