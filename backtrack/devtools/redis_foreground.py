"""Run redis-server in the foreground for REDIS_URL (a Procfile process of `make run`)."""

from __future__ import annotations

import os

from backtrack.devtools.redis_ensure import redis_command

if __name__ == "__main__":
    command = redis_command(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), daemonize=False)
    # exec, so honcho signals redis-server itself on Ctrl-C
    os.execv(command[0], command)  # noqa: S606
