"""Writes for tracks, revisions, renders, comments and notifications, one module per concern.

Services decide; views validate shapes and tasks hand off. Every function is keyword-only and raises
``ValidationError`` (bad input), ``PermissionDenied`` (not allowed), ``Http404`` (not visible) or one
of the conditions in ``errors`` so that the API and the pages can show one reason a person understands.
Callers import from ``tracks.services``; the modules behind it can change.
"""

from tracks.services.comments import comment_delete, comment_post, comment_resolve, comment_update
from tracks.services.errors import (
    CommentLimitReached,
    RenderLimitReached,
    RenderQueueUnavailable,
    TransientRenderError,
)
from tracks.services.melody import revision_melody_set
from tracks.services.notifications import (
    notification_create,
    notification_emails_digest,
    notification_emails_send,
    notification_mark_read,
)
from tracks.services.pruning import render_prune
from tracks.services.render_execution import (
    render_execute,
    render_stems_prepare,
    render_storage_name,
    revision_loudness_measure,
)
from tracks.services.renders import (
    ENQUEUE_GRACE,
    render_claim,
    render_enqueue,
    render_fail,
    render_mark_accessed,
    render_release,
    render_request,
    render_requeue_stale,
    render_settings_normalise,
    render_stems_enqueue,
)
from tracks.services.sections import (
    revision_sections,
    revision_sections_update,
    saved_arrangement_delete,
    saved_arrangement_list,
    saved_arrangement_save,
)
from tracks.services.setlists import (
    setlist_create,
    setlist_delete,
    setlist_export_request,
    setlist_item_add,
    setlist_item_delete,
    setlist_item_update,
    setlist_share_renew,
    setlist_share_revoke,
    setlist_update,
)
from tracks.services.tracks import (
    revision_create,
    track_change_check,
    track_create,
    track_create_check,
    track_update,
)

__all__ = [
    "ENQUEUE_GRACE",
    "CommentLimitReached",
    "RenderLimitReached",
    "RenderQueueUnavailable",
    "TransientRenderError",
    "comment_delete",
    "comment_post",
    "comment_resolve",
    "comment_update",
    "notification_create",
    "notification_emails_digest",
    "notification_emails_send",
    "notification_mark_read",
    "render_claim",
    "render_enqueue",
    "render_execute",
    "render_fail",
    "render_mark_accessed",
    "render_prune",
    "render_release",
    "render_request",
    "render_requeue_stale",
    "render_settings_normalise",
    "render_stems_enqueue",
    "render_stems_prepare",
    "render_storage_name",
    "revision_create",
    "revision_loudness_measure",
    "revision_melody_set",
    "revision_sections",
    "revision_sections_update",
    "saved_arrangement_delete",
    "saved_arrangement_list",
    "saved_arrangement_save",
    "setlist_create",
    "setlist_delete",
    "setlist_export_request",
    "setlist_item_add",
    "setlist_item_delete",
    "setlist_item_update",
    "setlist_share_renew",
    "setlist_share_revoke",
    "setlist_update",
    "track_change_check",
    "track_create",
    "track_create_check",
    "track_update",
]
