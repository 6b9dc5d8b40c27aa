"""Project-level views: the health endpoint."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from backtrack import health


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Report each dependency; 200 when all answer, 503 otherwise (load balancers read the status)."""
    probes = {
        "database": health.probe_database(),
        "redis": health.probe_redis(),
        "fluidsynth": health.probe_fluidsynth(),
        "soundfont": health.probe_soundfont(),
        "ffmpeg": health.probe_ffmpeg(),
    }
    healthy = all(probe.ok for probe in probes.values())
    body = {
        "status": "ok" if healthy else "unavailable",
        "checks": {name: {"ok": probe.ok, "detail": probe.detail} for name, probe in probes.items()},
    }
    return JsonResponse(body, status=200 if healthy else 503)
