from django.urls import path

from tracks.api import listening, melody, review, setlists, sounds, views
from tracks.api import requests as request_api
from tracks.api import sections as section_api

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
    path("revisions/<int:pk>/melody/", melody.RevisionMelodyApi.as_view(), name="api-revision-melody"),
    path(
        "revisions/<int:pk>/sections/",
        section_api.RevisionSectionsApi.as_view(),
        name="api-revision-sections",
    ),
    path(
        "tracks/<int:pk>/arrangements/",
        section_api.TrackArrangementsApi.as_view(),
        name="api-track-arrangements",
    ),
    path(
        "arrangements/<int:pk>/",
        section_api.SavedArrangementDetailApi.as_view(),
        name="api-arrangement-detail",
    ),
    path("sounds/", sounds.SoundListApi.as_view(), name="api-sounds"),
    path("renders/", views.RenderCreateApi.as_view(), name="api-renders"),
    path("renders/<int:pk>/", views.RenderDetailApi.as_view(), name="api-render-detail"),
    path("renders/<int:pk>/download/", views.RenderDownloadApi.as_view(), name="api-render-download"),
    path("renders/<int:pk>/stream/", listening.RenderStreamApi.as_view(), name="api-render-stream"),
    path("comments/<int:pk>/", views.CommentDetailApi.as_view(), name="api-comment-detail"),
    path("comments/<int:pk>/resolve/", views.CommentResolveApi.as_view(), name="api-comment-resolve"),
    path("comments/<int:pk>/listen/", review.CommentListenApi.as_view(), name="api-comment-listen"),
    path("comments/<int:pk>/recommend/", review.CommentRecommendApi.as_view(), name="api-comment-recommend"),
    path("revisions/<int:pk>/diff/", review.RevisionDiffApi.as_view(), name="api-revision-diff"),
    path("requests/", request_api.RequestListCreateApi.as_view(), name="api-requests"),
    path("requests/<int:pk>/", request_api.RequestDetailApi.as_view(), name="api-request-detail"),
    path("requests/<int:pk>/accept/", request_api.RequestAcceptApi.as_view(), name="api-request-accept"),
    path("requests/<int:pk>/decline/", request_api.RequestDeclineApi.as_view(), name="api-request-decline"),
    path("requests/<int:pk>/deliver/", request_api.RequestDeliverApi.as_view(), name="api-request-deliver"),
    path("requests/<int:pk>/changes/", request_api.RequestChangesApi.as_view(), name="api-request-changes"),
    path("requests/<int:pk>/approve/", request_api.RequestApproveApi.as_view(), name="api-request-approve"),
    path("setlists/", setlists.SetlistListCreateApi.as_view(), name="api-setlists"),
    path("setlists/<int:pk>/", setlists.SetlistDetailApi.as_view(), name="api-setlist-detail"),
    path("setlists/<int:pk>/items/", setlists.SetlistItemCreateApi.as_view(), name="api-setlist-items"),
    path(
        "setlists/<int:pk>/items/<int:item_id>/",
        setlists.SetlistItemDetailApi.as_view(),
        name="api-setlist-item-detail",
    ),
    path("setlists/<int:pk>/share/", setlists.SetlistShareApi.as_view(), name="api-setlist-share"),
    path("setlists/<int:pk>/export/", setlists.SetlistExportCreateApi.as_view(), name="api-setlist-export"),
    path(
        "setlist-exports/<int:pk>/",
        setlists.SetlistExportDetailApi.as_view(),
        name="api-setlist-export-detail",
    ),
    path(
        "setlist-exports/<int:pk>/download/",
        setlists.SetlistExportDownloadApi.as_view(),
        name="api-setlist-export-download",
    ),
    path("notifications/", views.NotificationListApi.as_view(), name="api-notifications"),
    path("notifications/read/", views.NotificationReadApi.as_view(), name="api-notifications-read"),
]
