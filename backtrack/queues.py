"""The Celery queues of a farm and which task goes where (settings.py and test_settings.py build on it).

Three queues, so machines can specialise (``WORKER_QUEUES``): ``renders`` (what a singer waits for),
``stems`` (per-part stems after a first render: useful, never urgent) and ``maintenance`` (the
sweeper, the storage pruner, the email digest: short and periodic). A worker serving several queues
reads them in sorted order (the Redis transport's ``sorted`` strategy): ``maintenance`` (short, and
its sweeps expire), then ``renders``, then ``stems``, so the stems job is low priority because of its
queue. Tasks not listed here go to ``renders`` (the default queue).
"""

from __future__ import annotations

from kombu import Exchange, Queue

QUEUES = ("renders", "stems", "maintenance")
DEFAULT_QUEUE = "renders"

TASK_QUEUES = {
    "tracks.tasks.render_run": "renders",
    "tracks.tasks.render_stems_prepare": "stems",
    "tracks.tasks.revision_loudness_measure": "stems",
    "tracks.tasks.renders_requeue_stale": "maintenance",
    "tracks.tasks.renders_prune": "maintenance",
    "tracks.tasks.notifications_email_digest": "maintenance",
}


def queue_name(queue: str, *, prefix: str = "") -> str:
    """The broker's name of a queue (tests prefix every queue with their own name)."""
    return f"{prefix}.{queue}" if prefix else queue


def task_routes(*, prefix: str = "") -> dict[str, dict[str, str]]:
    routes = {}
    for task, queue in TASK_QUEUES.items():
        name = queue_name(queue, prefix=prefix)
        routes[task] = {"queue": name, "exchange": name, "routing_key": name}
    return routes


def worker_queues(value: str, *, prefix: str = "") -> list[Queue]:
    """The queues named in ``WORKER_QUEUES`` (comma-separated); ValueError names an unknown one."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in QUEUES]
    if unknown or not names:
        raise ValueError(f"expected a comma-separated list of {', '.join(QUEUES)}, got {value!r}")
    # Each queue its own direct exchange and routing key: bound to a shared default exchange, one
    # message would be copied into every queue.
    full_names = [queue_name(name, prefix=prefix) for name in dict.fromkeys(names)]
    return [Queue(name, Exchange(name, type="direct"), routing_key=name) for name in full_names]
