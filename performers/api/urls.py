from django.urls import path

from performers.api import views

urlpatterns = [
    path("auth/register/", views.RegisterApi.as_view(), name="api-register"),
    path("auth/token/", views.TokenApi.as_view(), name="api-token"),
    path("me/", views.MeApi.as_view(), name="api-me"),
    path("me/chosen-keys/", views.ChosenKeyListApi.as_view(), name="api-me-chosen-keys"),
    path("genres/", views.GenreListApi.as_view(), name="api-genres"),
]
