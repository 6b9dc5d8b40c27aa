from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from backtrack.admin import admin_login
from backtrack.metrics import metrics
from backtrack.views import healthz

urlpatterns = [
    # Before admin.site.urls, so the admin's login answers a throttled attempt with 429.
    path("admin/login/", admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("performers.api.urls")),
    path("api/", include("tracks.api.urls")),
    path("", include("performers.urls")),
    path("", include("tracks.urls")),
]
