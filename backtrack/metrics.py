"""``GET /metrics``: the farm in the Prometheus text format, and the counters workers keep for it.

- ``backtrack_queue_depth{queue}``: messages waiting in each Celery queue (Redis LLEN of its lists);
- ``backtrack_renders_total{status}``: renders by status, counted in the database (one grouped query);
- ``backtrack_render_seconds``: a histogram of render durations (claim to done), and
  ``backtrack_render_failures_total``: both counters that workers increment in Redis when a render
  ends. Counters, not a window over finished rows: Prometheus takes rates and percentiles from
  counters (``histogram_quantile(0.95, rate(backtrack_render_seconds_bucket[5m]))``), they cost one
  HINCRBY per render, and a scrape reads one hash however many renders there were. If Redis loses
  them, Prometheus sees a counter reset, which ``rate()`` handles.

Open to loopback clients (not through a proxy), staff, or a bearer token (``METRICS_TOKEN``).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from datetime import datetime
from typing import Any

import redis
from django.conf import settings
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

RENDER_SECONDS_BUCKETS = (5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 240.0, 300.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=1, socket_timeout=1)


def _key() -> str:
    return f"{settings.METRICS_REDIS_KEY}:renders"


def render_observe(*, status: str, started_at: datetime | None, finished_at: datetime | None) -> None:
    """Count a render that ended (``done`` or ``failed``); never raises (metrics are not the render)."""
    fields: dict[str, float] = {}
    if status == "failed":
        fields["failures"] = 1
    elif status == "done" and started_at is not None and finished_at is not None:
        seconds = max((finished_at - started_at).total_seconds(), 0.0)
        fields["count"] = 1
        fields["sum"] = seconds
        for bound in RENDER_SECONDS_BUCKETS:
            if seconds <= bound:
                fields[f"le_{bound:g}"] = 1
    if not fields:
        return
    try:
        with _redis().pipeline(transaction=True) as pipe:
            for field, amount in fields.items():
                pipe.hincrbyfloat(_key(), field, amount)
            pipe.execute()
    except redis.RedisError:
        logger.warning("could not record render metrics", exc_info=True)


def _queue_names() -> list[str]:
    names = [route["queue"] for route in settings.CELERY_TASK_ROUTES.values()]
    return list(dict.fromkeys([settings.CELERY_TASK_DEFAULT_QUEUE, *names]))


def _queue_depths() -> dict[str, int] | None:
    from backtrack.celery import app

    try:
        with app.connection_for_read() as conn:
            channel: Any = conn.default_channel
            with channel.conn_or_acquire() as client:
                depths = {}
                for name in _queue_names():
                    keys = dict.fromkeys(channel._q_for_pri(name, pri) for pri in channel.priority_steps)
                    depths[name.rsplit(".", 1)[-1]] = sum(int(client.llen(key)) for key in keys)
                return depths
    except Exception:
        logger.warning("metrics: could not read the queues", exc_info=True)
        return None


def _render_counters() -> dict[str, float]:
    try:
        raw: dict[bytes, bytes] = _redis().hgetall(_key())  # type: ignore[assignment]
    except redis.RedisError:
        logger.warning("metrics: could not read the render counters", exc_info=True)
        return {}
    return {key.decode(): float(value) for key, value in raw.items()}


def _allowed(request: HttpRequest) -> bool:
    token = str(getattr(settings, "METRICS_TOKEN", "") or "")
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header.removeprefix("Bearer ").strip(), token)
    if request.user.is_authenticated and request.user.is_staff:
        return True
    # A request that came through a proxy carries X-Forwarded-For: the proxy's loopback address is
    # not the client's.
    if "X-Forwarded-For" in request.headers:
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def _number(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))


def metrics_text() -> str:
    from tracks.models import Render, RenderStatus

    lines = [
        "# HELP backtrack_queue_depth Messages waiting in a Celery queue.",
        "# TYPE backtrack_queue_depth gauge",
    ]
    depths = _queue_depths()
    for queue, depth in (depths or {}).items():
        lines.append(f'backtrack_queue_depth{{queue="{queue}"}} {depth}')
    lines += [
        "# HELP backtrack_broker_up 1 when the broker answered this scrape.",
        "# TYPE backtrack_broker_up gauge",
        f"backtrack_broker_up {0 if depths is None else 1}",
        "# HELP backtrack_renders_total Renders by status (rows in the database).",
        "# TYPE backtrack_renders_total gauge",
    ]
    counts = dict.fromkeys(RenderStatus.values, 0)
    counts.update(
        {row["status"]: row["n"] for row in Render.objects.values("status").annotate(n=Count("id"))}
    )
    for status, count in counts.items():
        lines.append(f'backtrack_renders_total{{status="{status}"}} {count}')
    counters = _render_counters()
    lines += [
        "# HELP backtrack_render_failures_total Renders that ended failed, counted by the workers.",
        "# TYPE backtrack_render_failures_total counter",
        f"backtrack_render_failures_total {_number(counters.get('failures', 0.0))}",
        "# HELP backtrack_render_seconds Render duration, claim to done, counted by the workers.",
        "# TYPE backtrack_render_seconds histogram",
    ]
    for bound in RENDER_SECONDS_BUCKETS:
        lines.append(
            f'backtrack_render_seconds_bucket{{le="{bound:g}"}} {_number(counters.get(f"le_{bound:g}", 0.0))}'
        )
    total = _number(counters.get("count", 0.0))
    lines += [
        f'backtrack_render_seconds_bucket{{le="+Inf"}} {total}',
        f"backtrack_render_seconds_sum {counters.get('sum', 0.0):.3f}",
        f"backtrack_render_seconds_count {total}",
    ]
    return "\n".join(lines) + "\n"


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        return HttpResponse("forbidden: metrics are open to loopback, staff or METRICS_TOKEN\n", status=403)
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE)
