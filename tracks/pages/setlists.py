"""Setlist pages: the owner's list and builder (reorder with buttons, so the keyboard can do it), and the
read-only page a share link opens without logging in."""

from __future__ import annotations

from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from backtrack.text import clock
from performers.models import User
from tracks import selectors, services
from tracks.models import Setlist


def _rows(setlist: Setlist) -> list[dict[str, Any]]:
    rows = []
    for item in setlist.items.all():
        revision = selectors.setlist_item_revision(item=item)
        rows.append(
            {
                "item": item,
                "available": revision is not None,
                "duration": clock(selectors.setlist_item_duration_s(item=item, revision=revision)),
                "summary": selectors.settings_summary(settings=item.settings) if revision is not None else "",
            }
        )
    return rows


def _context(setlist: Setlist) -> dict[str, Any]:
    return {
        "setlist": setlist,
        "rows": _rows(setlist),
        "total": clock(selectors.setlist_duration_s(setlist=setlist)),
    }


@require_GET
def setlist_shared(request: HttpRequest, token: str) -> HttpResponse:
    setlist = selectors.setlist_get_shared(token=token)
    return render(request, "tracks/setlists_shared.html", _context(setlist))


@login_required
def setlist_index(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    if request.method == "POST":
        try:
            setlist = services.setlist_create(user=user, name=request.POST.get("name"))
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect("tracks:setlists")
        return redirect("tracks:setlist-detail", setlist.pk)
    return render(request, "tracks/setlists.html", {"setlists": selectors.setlist_list(user=user)})


@login_required
@require_GET
def setlist_detail(request: HttpRequest, pk: int) -> HttpResponse:
    setlist = selectors.setlist_get(user=request.user, setlist_id=pk)
    context = _context(setlist) | {
        "tracks": selectors.track_list(user=request.user)[:200],
        "exports": setlist.exports.all()[:5],
    }
    return render(request, "tracks/setlists_detail.html", context)


@login_required
@require_POST
def setlist_change(request: HttpRequest, pk: int) -> HttpResponse:
    """One change from the builder's forms: add, move, remove, export, share or revoke."""
    setlist = selectors.setlist_get(user=request.user, setlist_id=pk)
    action = request.POST.get("action", "")
    items = {str(item.pk): item for item in setlist.items.all()}
    item = items.get(request.POST.get("item", ""))
    anchor = ""
    try:
        if action == "add":
            gap = request.POST.get("gap_s") or "0"
            services.setlist_item_add(
                setlist=setlist, track_id=request.POST.get("track"), settings={}, gap_s=float(gap)
            )
        elif action in ("up", "down") and item is not None:
            position = item.position + (-1 if action == "up" else 1)
            if 1 <= position <= len(items):
                services.setlist_item_update(item=item, position=position)
            anchor = f"#item-{item.pk}"
        elif action == "remove" and item is not None:
            services.setlist_item_delete(item=item)
        elif action in ("zip", "continuous"):
            services.setlist_export_request(
                setlist=setlist, user=cast(User, request.user), export_format=action
            )
            messages.success(request, "The export is being made; it appears below when it is ready.")
        elif action == "share":
            services.setlist_share_renew(setlist=setlist)
        elif action == "revoke":
            services.setlist_share_revoke(setlist=setlist)
    except ValueError:
        messages.error(request, "The gap must be a number of seconds.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect(f"{request.path.rsplit('change/', 1)[0]}{anchor}")
