"""Make sure a Redis answers at REDIS_URL, starting a local one only when none does.

`--mode daemon` (make test) starts a background redis-server and leaves it running.
`--mode procfile` (make run) starts nothing now; it leaves a marker so `make run` adds a Redis
process to its Procfile, which honcho then stops on Ctrl-C with everything else.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import redis

MARKER = Path("var/redis.started-by-make-run")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except (redis.RedisError, OSError, ValueError):
        return False


def redis_command(url: str, *, daemonize: bool) -> list[str]:
    parsed = urlparse(url)
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    return [
        server,
        "--bind",
        parsed.hostname or "127.0.0.1",
        "--port",
        str(parsed.port or 6379),
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "yes" if daemonize else "no",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=["daemon", "procfile"], default="daemon")
    args = parser.parse_args(argv)
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    MARKER.unlink(missing_ok=True)
    if redis_answers(url):
        return 0
    host = urlparse(url).hostname or ""
    if host not in LOCAL_HOSTS:
        sys.stderr.write(f"error: no Redis answers at REDIS_URL={url}, and it is not on this machine.\n")
        return 1
    if args.mode == "procfile":
        MARKER.parent.mkdir(parents=True, exist_ok=True)
        MARKER.write_text(url)
        print(f"no Redis answers at {url}: make run starts one and stops it on Ctrl-C")
        return 0
    subprocess.run(redis_command(url, daemonize=True), check=True)
    for _ in range(50):
        if redis_answers(url):
            print(f"started redis-server for {url}")
            return 0
        time.sleep(0.1)
    sys.stderr.write(f"error: started redis-server but nothing answers at REDIS_URL={url}.\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
