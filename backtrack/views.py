"""Project-level views: the health endpoint."""

from __future__ import annotations

import logging

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from backtrack import health

logger = logging.getLogger(__name__)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when every dependency answers, 503 otherwise (load balancers read the status).

    Outsiders learn only ok or not: the probes' details name hosts, paths and versions, so they go to
    staff alone.
    """
    probes = health.probe_all()
    healthy = all(probe.ok for probe in probes.values())
    for name, probe in probes.items():
        if not probe.ok:
            logger.warning("healthz: %s is down: %s", name, probe.detail)
    body: dict[str, object] = {"status": "ok" if healthy else "unavailable"}
    if request.user.is_staff:
        body["checks"] = {name: {"ok": probe.ok, "detail": probe.detail} for name, probe in probes.items()}
    return JsonResponse(body, status=200 if healthy else 503)
