"""Stopping the child processes (Celery workers, web servers) the benchmarks start in sessions of
their own, so that their own children (encoders) go with them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from typing import IO


def stop_process_groups(children: list[tuple[subprocess.Popen[bytes], IO[bytes]]]) -> None:
    """A warm shutdown for every (process, log) at once, then whatever is left of each process
    group is killed, and the logs closed."""
    for process, _log in children:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process, log in children:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
