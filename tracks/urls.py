from django.urls import path

from tracks import views
from tracks.pages import melody, render_outputs, setlists, sounds
from tracks.pages import requests as request_pages
from tracks.pages import review as review_pages

app_name = "tracks"

urlpatterns = [
    path("", views.home, name="home"),
    path("tracks/new/", views.track_upload, name="upload"),
    path("tracks/<int:pk>/", views.track_detail, name="detail"),
    path("tracks/<int:pk>/revisions/new/", views.revision_upload, name="revision-upload"),
    path("tracks/<int:pk>/render/", views.render_create, name="render-create"),
    path("tracks/<int:pk>/default-sound/", sounds.track_default_sound, name="track-default-sound"),
    path("tracks/<int:pk>/thread/", views.thread, name="thread"),
    path("tracks/<int:pk>/comments/", views.comment_create, name="comment-create"),
    path("comments/<int:pk>/resolve/", views.comment_resolve_view, name="comment-resolve"),
    path("comments/<int:pk>/listen/", review_pages.comment_listen, name="comment-listen"),
    path("comments/<int:pk>/recommend/", review_pages.comment_recommend, name="comment-recommend"),
    path("revisions/<int:pk>/melody/", melody.revision_melody, name="revision-melody"),
    path("renders/<int:pk>/panel/", views.render_panel, name="render-panel"),
    path("renders/<int:pk>/audio/", views.render_audio, name="render-audio"),
    path("renders/<int:pk>/as/", render_outputs.render_as, name="render-as"),
    path("setlists/", setlists.setlist_index, name="setlists"),
    path("setlists/<int:pk>/", setlists.setlist_detail, name="setlist-detail"),
    path("setlists/<int:pk>/change/", setlists.setlist_change, name="setlist-change"),
    path("setlists/shared/<str:token>/", setlists.setlist_shared, name="setlist-shared"),
    path("inbox/", views.inbox, name="inbox"),
    path("requests/", request_pages.request_inbox, name="requests"),
    path("requests/new/", request_pages.request_new, name="request-new"),
    path("requests/<int:pk>/", request_pages.request_detail, name="request-detail"),
    path("requests/<int:pk>/<slug:step>/", request_pages.request_step, name="request-step"),
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/<int:pk>/open/", views.notification_open, name="notification-open"),
]
