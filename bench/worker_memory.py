"""Benchmark: the memory of a real render worker (issue 15: a FluidR3 worker under 250 MB per process).

Not a test. In a scratch database, with the test settings, queues of its own and moto's S3 server on
loopback as the media storage (``bench/farm.py``'s set-up), it starts one Celery worker as the
Procfile's ``worker`` line does (``celery -A backtrack worker --concurrency=2``, prefork, the
``renders`` queue) with ``SOUNDFONT_PATH`` the SoundFont to measure (FluidR3 by default) and
``RENDER_THREADS`` the machine's cores. It waits until the pool processes have warmed up (Django,
Celery and the engine imported, the SoundFont loaded into every render thread's synth) and takes
their memory then as the idle baseline. Then, through the API, it uploads three songs
(``tests/data/midi/complex_18parts.mid``, ``bohemian_gm.mid`` and a generated 3-minute 8-part song),
asks for two keys of each at once (so both pool processes render) with the SoundFont's sound set
named explicitly, then a mix change of two of those variants, and waits until all are done.

While it runs it samples every process of the worker (main, pool children and their encoders) and
reports each one's peak RSS (``VmHWM`` in /proc/PID/status, the kernel's own high-water mark), its
RSS at the end, its RSS after warm-up, and its CPU seconds (both pool processes rendered when both
used CPU). The SoundFont's file size is printed for reference (FluidR3's samples are most of it).

    .venv/bin/python bench/worker_memory.py [--soundfont PATH] [--concurrency 2] [--threads N]
    .venv/bin/python bench/worker_memory.py --queues renders,stems,maintenance  # + the stems jobs

``--queues`` defaults to ``renders`` (the Procfile's render worker; the stems jobs the first
renders queue are left for a background worker, and purged at the end). Redis is ``REDIS_URL``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.farm import configure_environment, start_s3  # noqa: E402
from bench.process_groups import stop_process_groups  # noqa: E402

FLUIDR3 = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
MIDI_DIR = REPO_ROOT / "tests" / "data" / "midi"
SONG_FILES = ("complex_18parts.mid", "bohemian_gm.mid")
TRANSPOSES = (2, -3)
TIMEOUT_S = 900.0
MB = 1024 * 1024
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- /proc ----------------------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """``VmHWM`` and ``VmRSS`` of ``pid`` in bytes ({} once it has exited)."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmHWM", "VmRSS"):
                values[name] = int(rest.split()[0]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return {}
    return values


def proc_pss(pid: int) -> int | None:
    """Proportional set size in bytes: shared pages (the pool's copy-on-write pages of the main
    process, the libraries) divided among the processes that share them."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return None


def proc_cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def proc_children(pid: int) -> list[int]:
    """The children of every thread of ``pid`` (a child belongs to the thread that forked it)."""
    children: list[int] = []
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                children += [int(child) for child in (task / "children").read_text().split()]
    return children


def proc_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except (FileNotFoundError, ProcessLookupError):
        return "?"


def proc_threads(pid: int) -> list[str]:
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        return [
            (task / "comm").read_text().strip()
            for task in Path(f"/proc/{pid}/task").iterdir()
            if (task / "comm").exists()
        ]
    return []


# -- the worker -----------------------------------------------------------------------------------


@dataclass
class Sample:
    pid: int
    parent: int
    role: str
    name: str
    hwm: int = 0
    rss: int = 0
    cpu_s: float = 0.0
    pss: int | None = None
    idle_hwm: int | None = None
    idle_rss: int | None = None
    idle_pss: int | None = None
    exited: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class RenderWorker:
    """``celery -A backtrack worker`` as the Procfile's ``worker`` line starts it, in a session of its own."""

    def __init__(self, env: dict[str, str], disk: Path, *, concurrency: int) -> None:
        (disk / "tmp").mkdir(parents=True, exist_ok=True)
        self.log_path = disk / "worker.log"
        self.handle = self.log_path.open("wb")
        worker_env = {**env, "RENDER_CACHE_DIR": str(disk / "cache"), "TMPDIR": str(disk / "tmp")}
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("celery")), "-A", "backtrack", "worker",
                f"--hostname=renders-{uuid.uuid4().hex[:6]}@%h", "--loglevel=INFO",
                f"--concurrency={concurrency}",
            ],
            cwd=REPO_ROOT, env=worker_env, stdout=self.handle, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while " ready." not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"worker did not start:\n{self.log()}")
            time.sleep(0.1)
        self.samples: dict[int, Sample] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sampler: threading.Thread | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pool_pids(self) -> list[int]:
        return proc_children(self.process.pid)

    def sample(self) -> None:
        """Record every live process of the worker (the main one, its pool, their children)."""
        with self._lock:
            queue = [(self.process.pid, 0)]
            while queue:
                pid, parent = queue.pop()
                status = proc_status(pid)
                if not status:
                    continue
                if pid not in self.samples:
                    if pid == self.process.pid:
                        role = "main"
                    elif parent == self.process.pid:
                        role = "pool"
                    else:
                        role = "child"
                    self.samples[pid] = Sample(pid, parent, role, proc_name(pid))
                entry = self.samples[pid]
                name = proc_name(pid)
                if name != entry.name:  # exec'd (a subprocess forked from a pool process): a new memory
                    entry.name, entry.hwm = name, 0
                entry.hwm = max(entry.hwm, status.get("VmHWM", 0))
                entry.rss = status.get("VmRSS", 0)
                entry.cpu_s = proc_cpu_s(pid) or entry.cpu_s
                queue += [(child, pid) for child in proc_children(pid)]

    def wait_warm(self, threads: int, timeout: float = 120.0) -> None:
        """Until every pool process has its render threads and its RSS has settled (SoundFont loaded)."""
        deadline = time.monotonic() + timeout
        last: list[int] = []
        steady = 0
        while time.monotonic() < deadline:
            pids = self.pool_pids()
            # Python names no native threads: a warmed-up pool process has its main thread and the
            # render threads (Celery's prefork children run no other thread).
            ready = pids and all(len(proc_threads(pid)) > threads for pid in pids)
            now = [proc_status(pid).get("VmRSS", 0) for pid in pids]
            steady = steady + 1 if ready and now == last else 0
            last = now
            if steady >= 6:  # unchanged for 3 s
                return
            time.sleep(0.5)
        print("warning: the pool did not settle; the idle figures may still include the warm-up")

    def mark_idle(self) -> None:
        self.sample()
        for entry in self.samples.values():
            entry.idle_hwm, entry.idle_rss, entry.idle_pss = entry.hwm, entry.rss, proc_pss(entry.pid)

    def mark_end(self) -> None:
        self.sample()
        for entry in self.samples.values():
            entry.pss = None if entry.exited else proc_pss(entry.pid)

    def start_sampling(self, every: float = 0.2) -> None:
        def run() -> None:
            while not self._stop.wait(every):
                for entry in list(self.samples.values()):
                    if not entry.exited and not proc_status(entry.pid):
                        entry.exited = True
                self.sample()

        self._sampler = threading.Thread(target=run, name="rss-sampler", daemon=True)
        self._sampler.start()

    def stop(self) -> None:
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join()
        stop_process_groups([(self.process, self.handle)])


# -- the requests ---------------------------------------------------------------------------------


def wait_done(render_ids: list[int], worker: RenderWorker) -> None:
    from tracks.models import Render

    deadline = time.monotonic() + TIMEOUT_S
    while True:
        rows = dict(Render.objects.filter(pk__in=render_ids).values_list("pk", "status"))
        failed = [pk for pk, status in rows.items() if status == "failed"]
        if failed:
            raise SystemExit(f"render {failed[0]} failed: {Render.objects.get(pk=failed[0]).error}")
        if all(status == "done" for status in rows.values()):
            return
        if worker.process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"renders not done ({rows}); worker log:\n{worker.log()[-4000:]}")
        time.sleep(0.2)


def mb(value: int | None) -> str:
    return "-" if value is None else f"{value / MB:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--soundfont", default=FLUIDR3)
    parser.add_argument("--concurrency", type=int, default=2, help="pool processes (the Procfile's 2)")
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="RENDER_THREADS (default: the cores)"
    )
    parser.add_argument("--queues", default="renders", help="WORKER_QUEUES of the worker")
    args = parser.parse_args()
    soundfont = Path(args.soundfont).resolve()
    if not soundfont.is_file():
        raise SystemExit(f"no SoundFont at {soundfont}")

    scratch = Path(tempfile.mkdtemp(prefix="backtrack-memory-"))
    server, endpoint = start_s3()
    import boto3

    env = configure_environment(scratch, endpoint, "memory")
    overrides = {
        "SOUNDFONT_PATH": str(soundfont),
        "RENDER_THREADS": str(args.threads),
        "WORKER_QUEUES": args.queues,
        "SOUND_SETS": "",  # the installed known sets, and SOUNDFONT_PATH's
    }
    os.environ.update(overrides)
    env.update(overrides)
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="memory")

    import django

    django.setup()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    from django.conf import settings
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from rest_framework.test import APIClient

    from performers.models import Genre, Profile, User
    from tests.integration.worker import purge_test_queue
    from tracks.demo import compose_song
    from tracks.models import Render

    call_command("migrate", verbosity=0)
    Genre.objects.get_or_create(slug="pop", defaults={"name": "Pop"})
    producer = User.objects.create(username="memory-producer", is_producer=True)
    Profile.objects.create(user=producer)
    singer = User.objects.create(username="memory-singer", is_performer=True)
    Profile.objects.create(user=singer)
    producer_client, singer_client = APIClient(), APIClient()
    producer_client.force_authenticate(producer)
    singer_client.force_authenticate(singer)
    # The sound set the renders name explicitly, so none can fall back to another SoundFont.
    sound = next(
        slug for slug, entry in settings.SOUND_SETS.items() if Path(entry["path"]).resolve() == soundfont
    )

    songs = {name: (MIDI_DIR / name).read_bytes() for name in SONG_FILES}
    songs["generated_3min_8parts"] = compose_song(style="pop", minutes=3.0, parts=8, seed=7)

    worker: RenderWorker | None = None
    timings: dict[str, float] = {}
    try:
        started = time.perf_counter()
        worker = RenderWorker(env, scratch / "machine", concurrency=args.concurrency)
        worker.wait_warm(args.threads)
        timings["start"] = time.perf_counter() - started
        worker.mark_idle()
        worker.start_sampling()

        track_ids = {}
        for title, midi in songs.items():
            response = producer_client.post(
                "/api/tracks/",
                {"title": title, "genre": "pop", "midi": SimpleUploadedFile(f"{title}.mid", midi)},
                format="multipart",
            )
            assert response.status_code == 201, response.content
            track_ids[title] = int(response.json()["id"])

        def request(payload: dict[str, Any]) -> int:
            response = singer_client.post("/api/renders/", {**payload, "sound": sound}, format="json")
            if response.status_code not in (200, 202):
                raise SystemExit(f"POST answered {response.status_code}: {response.content!r}")
            return int(response.json()["id"])

        started = time.perf_counter()
        keys = [
            request({"track": track, "transpose": transpose})
            for transpose in TRANSPOSES
            for track in track_ids.values()
        ]
        wait_done(keys, worker)
        timings["keys"] = time.perf_counter() - started
        started = time.perf_counter()
        mixes = [
            request({"track": track, "transpose": TRANSPOSES[0], "mix": {"0": {"gain_db": -6.0}}})
            for track in list(track_ids.values())[:2]
        ]
        wait_done(mixes, worker)
        timings["mixes"] = time.perf_counter() - started
        time.sleep(1.0)  # a last sample after the renders' cleanup
        worker.mark_end()
        rows = list(Render.objects.filter(pk__in=keys + mixes).order_by("pk"))
        log = worker.log()
    finally:
        if worker is not None:
            worker.stop()
        with contextlib.suppress(Exception):
            purge_test_queue(unacked=True)
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    sounds = sorted({str(row.settings.get("sound", "")) for row in rows})
    if sounds != [sound]:
        raise SystemExit(f"renders did not all use {sound!r}: {sounds}")
    samples = sorted(
        worker.samples.values(), key=lambda entry: ({"main": 0, "pool": 1}.get(entry.role, 2), entry.pid)
    )
    pool = [entry for entry in samples if entry.role == "pool"]
    children = [entry for entry in samples if entry.role == "child"]

    print(
        f"SoundFont {soundfont.name}: {soundfont.stat().st_size / MB:.0f} MB file (sound set {sound!r}); "
        f"worker: prefork, concurrency {args.concurrency}, RENDER_THREADS {args.threads}, "
        f"queues {args.queues}; {os.cpu_count()} cores"
    )
    print(
        f"renders: {len(keys)} keys of {len(songs)} songs at once in {timings['keys']:.1f} s "
        f"({', '.join(songs)}; transposes {', '.join(f'{t:+d}' for t in TRANSPOSES)}), then "
        f"{len(mixes)} mix changes in {timings['mixes']:.1f} s "
        f"(stems reused {sum(row.stems_reused for row in rows[len(keys) :])}/{len(mixes)}); "
        f"tasks succeeded in the log: {log.count('succeeded in')}"
    )
    print()
    header = (
        "process",
        "pid",
        "idle RSS",
        "idle peak",
        "idle PSS",
        "peak RSS",
        "end RSS",
        "end PSS",
        "CPU s",
    )
    print("{:<24} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}".format(*header))
    for entry in [entry for entry in samples if entry.role != "child"]:
        label = "main" if entry.role == "main" else f"pool child{' (exited)' if entry.exited else ''}"
        print(
            f"{label:<24} {entry.pid:>7} {mb(entry.idle_rss):>9} {mb(entry.idle_hwm):>9} "
            f"{mb(entry.idle_pss):>9} {mb(entry.hwm):>9} {mb(None if entry.exited else entry.rss):>9} "
            f"{mb(entry.pss):>9} {entry.cpu_s:>7.1f}"
        )
    for name in sorted({entry.name for entry in children}):
        group = [entry for entry in children if entry.name == name]
        label = f"subprocess {name} x{len(group)}"
        print(
            f"{label:<24} {'':>7} {'':>9} {'':>9} {'':>9} {mb(max(entry.hwm for entry in group)):>9} "
            f"{'':>9} {'':>9} {sum(entry.cpu_s for entry in group):>7.1f}"
        )
    print(
        "(MB = MiB. RSS counts pages shared with other processes in full, PSS divides them; peak RSS is "
        "VmHWM. Subprocesses: the largest one's peak, sampled every 0.2 s; one still named after its "
        "parent was sampled between fork and exec.)"
    )
    print()
    rendering = [entry for entry in pool if entry.cpu_s > 5]
    print(
        f"peak RSS of a render process: {mb(max(entry.hwm for entry in pool))} MB (target < 250 MB); "
        f"idle: {mb(max(entry.idle_hwm or 0 for entry in pool))} MB "
        f"({len(rendering)} of {len(pool)} pool processes rendered)"
    )


if __name__ == "__main__":
    main()
