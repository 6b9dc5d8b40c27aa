"""The admin's login, throttled like every other login path (``backtrack.throttling``).

Django's ``AdminSite.login`` builds its login view with ``site.login_form``: ours refuses when the
client address or the account is over its limit; ``admin_login`` answers such a refusal with 429.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from performers.forms import AdminLoginForm
from performers.views import refused_login

admin.site.login_form = AdminLoginForm


def admin_login(request: HttpRequest) -> HttpResponse:
    response = admin.site.login(request)
    form = getattr(response, "context_data", None) or {}
    return refused_login(response, form.get("form"))
