from django.urls import path

from tracks.api import views

urlpatterns = [
    path("tracks/", views.TrackListCreateApi.as_view(), name="api-tracks"),
    path("tracks/<int:pk>/", views.TrackDetailApi.as_view(), name="api-track-detail"),
    path("tracks/<int:pk>/revisions/", views.RevisionListCreateApi.as_view(), name="api-track-revisions"),
    path(
        "tracks/<int:pk>/key-suggestions/",
        views.KeySuggestionsApi.as_view(),
        name="api-track-key-suggestions",
    ),
    path("tracks/<int:pk>/chosen-key/", views.ChosenKeyApi.as_view(), name="api-track-chosen-key"),
    path("tracks/<int:pk>/renders/", views.TrackRenderListApi.as_view(), name="api-track-renders"),
    path("tracks/<int:pk>/comments/", views.CommentListCreateApi.as_view(), name="api-track-comments"),
    path("renders/", views.RenderCreateApi.as_view(), name="api-renders"),
    path("renders/<int:pk>/", views.RenderDetailApi.as_view(), name="api-render-detail"),
    path("renders/<int:pk>/download/", views.RenderDownloadApi.as_view(), name="api-render-download"),
    path("comments/<int:pk>/", views.CommentDetailApi.as_view(), name="api-comment-detail"),
    path("comments/<int:pk>/resolve/", views.CommentResolveApi.as_view(), name="api-comment-resolve"),
    path("notifications/", views.NotificationListApi.as_view(), name="api-notifications"),
    path("notifications/read/", views.NotificationReadApi.as_view(), name="api-notifications-read"),
]
