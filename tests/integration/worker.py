"""A real Celery worker (prefork, one child) against the real Redis and the test database.

Reusable outside tests/integration (browser tests): start `Worker(...)` inside a test that uses
`transactional_db`, and stop it before the database is flushed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection

from backtrack.celery import app as celery_app
from backtrack.queues import DEFAULT_QUEUE, QUEUES, queue_name

ROOT = Path(__file__).resolve().parents[2]
CELERY_BIN = Path(sys.executable).with_name("celery")


def celery_test_prefix() -> str:
    """The name every queue of the tests starts with (set by backtrack.test_settings only).

    No fallback to the real queues: purging those would drop a developer's real tasks.
    """
    prefix = getattr(django_settings, "TEST_QUEUE_PREFIX", None)
    if not isinstance(prefix, str) or not prefix:
        pytest.fail("TEST_QUEUE_PREFIX is not set; run the tests with backtrack.test_settings")
    return prefix


def celery_test_queue() -> str:
    """The tests' render queue (renders, and tasks without a route, are published there)."""
    return queue_name(DEFAULT_QUEUE, prefix=celery_test_prefix())


def celery_test_queues() -> list[str]:
    """The tests' renders, stems and maintenance queues."""
    return [queue_name(queue, prefix=celery_test_prefix()) for queue in QUEUES]


def database_url() -> str:
    """The test database as a URL the worker can open (pytest-django created it under a test name)."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        name = str(db["NAME"])
        if name.startswith("file:") or name == ":memory:":
            pytest.fail("the SQLite test database must be a file for a worker to open it")
        return f"sqlite:///{name}"
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    """``beat=True`` also runs the periodic tasks (the sweeper) inside the worker (``-B``);
    ``env`` adds settings (e.g. shorter recovery intervals) to the worker's environment."""

    def __init__(
        self,
        tmp_path: Path,
        media: Path,
        cache_dir: Path,
        *,
        beat: bool = False,
        env: dict[str, str] | None = None,
        queues: str | None = None,
    ) -> None:
        self.log_path = tmp_path / f"worker-{uuid.uuid4().hex[:6]}.log"
        self.beat_schedule = tmp_path / "beat-schedule" if beat else None
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "backtrack.test_settings",
            "DATABASE_URL": database_url(),
            "MEDIA_ROOT": str(media),
            "RENDER_CACHE_DIR": str(cache_dir),
            "BACKTRACK_TEST_QUEUE": celery_test_prefix(),
            "WORKER_QUEUES": queues or ",".join(QUEUES),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        self.log = self.log_path.open("ab")
        logged_before = len(self.output())  # a restarted worker's "ready" is not the old one's
        beat = ["-B", "-s", str(self.beat_schedule)] if self.beat_schedule else []
        self.process = subprocess.Popen(
            [
                str(CELERY_BIN), "-A", "backtrack", "worker", "-P", "prefork", "-c", "1",
                "--loglevel=INFO", "-n", f"test-{uuid.uuid4().hex[:8]}@%h",
                "--without-gossip", "--without-mingle", "--without-heartbeat", *beat,
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the worker exited at start:\n{self.output()}")
            if " ready." in self.output()[logged_before:]:
                return
            time.sleep(0.2)
        pytest.fail(f"the worker did not become ready in {timeout} s:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def child_pids(self) -> list[int]:
        assert self.process is not None
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return [int(child) for child in children]

    def kill(self) -> None:
        """The whole worker dies at once (node lost, OOM killer on the group): no goodbye, no requeue."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.log.close()
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        # The worker's process group also holds the engine's stem processes; none may outlive it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()
        self.process = None


def purge_test_queue(*, unacked: bool = False) -> None:
    """Empty the tests' queues; ``unacked=True`` also drops the messages a killed worker of ours left
    unacknowledged (Redis would hand them back to some worker after the visibility timeout)."""
    queues = celery_test_queues()
    with celery_app.connection_for_write() as conn:
        channel: Any = conn.default_channel
        for queue in queues:
            channel.queue_purge(queue)
        with channel.conn_or_acquire() as client:
            # Bindings outlive their code in Redis: one left by an older routing (an exchange bound
            # to several queues) would copy each message into every queue. Each test exchange is
            # bound to its own queue only; other bindings of it are dropped (the right one stays, so
            # publishers that declared it once need not declare it again).
            for key in client.scan_iter(match=f"_kombu.binding*.{celery_test_prefix()}*"):
                exchange = key.decode().split(".", 2)[2]
                for member in client.smembers(key):
                    if member.decode().split("\x06\x16")[-1] != exchange:
                        client.srem(key, member)
        if not unacked:
            return
        with channel.conn_or_acquire() as client:
            for tag, raw in client.hgetall(channel.unacked_key).items():
                with contextlib.suppress(ValueError, IndexError, TypeError):
                    if json.loads(raw)[2] in queues:
                        client.hdel(channel.unacked_key, tag)
                        client.zrem(channel.unacked_index_key, tag)
