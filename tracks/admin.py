from django.contrib import admin

from tracks.models import Comment, Notification, Render, Revision, Track


class RevisionInline(admin.TabularInline):
    model = Revision
    extra = 0
    fields = ("number", "notes", "original_filename", "created_by", "created_at")
    readonly_fields = fields
    show_change_link = True
    can_delete = False


@admin.register(Track)
class TrackAdmin(admin.ModelAdmin):
    list_display = ["title", "producer", "genre", "is_public", "created_at"]
    list_filter = ["is_public", "genre"]
    search_fields = ["title", "description", "producer__username"]
    raw_id_fields = ["producer", "current_revision"]
    inlines = [RevisionInline]


@admin.register(Revision)
class RevisionAdmin(admin.ModelAdmin):
    list_display = ["track", "number", "created_by", "created_at"]
    search_fields = ["track__title"]
    raw_id_fields = ["track", "created_by"]
    readonly_fields = ["analysis", "midi_sha256"]


@admin.register(Render)
class RenderAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "revision",
        "status",
        "attempts",
        "progress",
        "requested_by",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "stems_reused"]
    search_fields = ["revision__track__title", "settings_hash"]
    raw_id_fields = ["revision", "requested_by", "requesters"]
    readonly_fields = ["settings", "settings_hash", "stem_key", "task_id", "peaks"]


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    list_display = ["id", "track", "author", "parent", "resolved", "created_at"]
    list_filter = ["resolved", "is_deleted"]
    search_fields = ["body", "track__title", "author__username"]
    raw_id_fields = ["track", "author", "parent", "revision", "render", "resolved_by", "resolved_in_revision"]


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["recipient", "kind", "text", "read", "created_at"]
    list_filter = ["kind", "read"]
    raw_id_fields = ["recipient"]
