"""Template tags of requests and review: the request beside a delivered revision, "Approved by …",
the bars-by-parts diff grid, and a suggestion's words and Listen button in the thread."""

from __future__ import annotations

import json
from typing import Any

from django import template
from django.http import Http404

from tracks import selectors
from tracks.models import Comment, Revision, Track

register = template.Library()


def diff_grid(diff: dict[str, Any]) -> dict[str, Any]:
    """Rows of cells (one per bar) for the compact grid: "changed", "same", "absent"."""
    bars = max(int(diff["bars_before"]), int(diff["bars_after"]))
    rows = []
    for part in diff["parts"]:
        changed = {bar for first, last in part["changed_bars"] for bar in range(first, last + 1)}
        cells = [
            "changed" if bar in changed else ("absent" if part["status"] == "removed" else "same")
            for bar in range(1, bars + 1)
        ]
        rows.append({**part, "cells": cells})
    return {"bars": bars, "rows": rows, "numbers": list(range(1, bars + 1))}


@register.inclusion_tag("tracks/requests_review.html", takes_context=True)
def revision_review(context: dict[str, Any], track: Track, revision: Revision | None) -> dict[str, Any]:
    approvals = list(selectors.request_approvals(track=track))
    found = selectors.request_for_revision(revision=revision) if revision is not None else None
    user = context.get("user")
    # The brief is for the request's two parties.
    if found is not None and (user is None or user.pk not in (found.performer_id, found.producer_id)):
        found = None
    grid = None
    if revision is not None and selectors.revision_previous(revision=revision) is not None:
        try:
            diff = selectors.revision_diff(revision=revision)
        except Http404:
            diff = None
        if diff is not None:
            grid = {**diff_grid(diff), **diff}
    ab = None
    pair = selectors.ab_pair(revision=revision) if revision is not None else None
    if pair is not None:
        before, after = pair
        ab = {
            "before": before,
            "after": after,
            "grid_before": json.dumps(selectors.render_bar_grid(render=before)),
            "grid_after": json.dumps(selectors.render_bar_grid(render=after)),
        }
    may_request = bool(
        user is not None and user.is_authenticated and user.is_performer and user.pk != track.producer_id
    )
    return {
        "approvals": approvals,
        "track_request": found,
        "revision": revision,
        "grid": grid,
        "ab": ab,
        "track": track,
        "may_request": may_request,
    }


@register.inclusion_tag("tracks/requests_suggestion.html", takes_context=True)
def comment_suggestion(context: dict[str, Any], comment: Comment) -> dict[str, Any]:
    user = context.get("user")
    return {
        "comment": comment,
        "summary": selectors.comment_settings_summary(comment=comment),
        "can_listen": bool(user is not None and user.is_authenticated),
        "can_recommend": bool(
            user is not None and user.is_authenticated and user.pk == comment.track.producer_id
        ),
        "is_recommended": comment.settings is not None
        and comment.track.recommended_settings == comment.settings,
        "csrf_token": context.get("csrf_token"),
    }


@register.simple_tag
def comment_bar_changed(comment: Comment) -> str:
    """ "bar 17 changed in revision 3" for a comment pinned to a bar that a later revision changed."""
    if comment.at_bar is None or comment.revision_id is None:
        return ""
    if comment.revision_id == comment.track.current_revision_id:
        return ""
    changed = selectors.comment_bar_changed_in(comment=comment)
    return f"bar {comment.at_bar} changed in revision {changed.number}" if changed is not None else ""
