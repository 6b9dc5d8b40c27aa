from django.urls import path

from tracks import views

app_name = "tracks"

urlpatterns = [
    path("", views.home, name="home"),
    path("tracks/new/", views.track_upload, name="upload"),
    path("tracks/<int:pk>/", views.track_detail, name="detail"),
    path("tracks/<int:pk>/revisions/new/", views.revision_upload, name="revision-upload"),
    path("tracks/<int:pk>/render/", views.render_create, name="render-create"),
    path("tracks/<int:pk>/thread/", views.thread, name="thread"),
    path("tracks/<int:pk>/comments/", views.comment_create, name="comment-create"),
    path("comments/<int:pk>/resolve/", views.comment_resolve_view, name="comment-resolve"),
    path("renders/<int:pk>/panel/", views.render_panel, name="render-panel"),
    path("renders/<int:pk>/audio/", views.render_audio, name="render-audio"),
    path("inbox/", views.inbox, name="inbox"),
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/<int:pk>/open/", views.notification_open, name="notification-open"),
]
