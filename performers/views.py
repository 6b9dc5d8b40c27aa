"""Pages for accounts and the performer profile."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from backtrack.throttling import TooManyAttempts, signup_attempt_check
from performers.forms import LoginForm, ProfileForm, SignupForm, add_service_errors
from performers.models import User
from performers.selectors import chosen_key_list, genre_list, profile_get
from performers.services import profile_update, user_register
from tracks.engine import note_name, transpose_key
from tracks.models import Track

KEYBOARD_LOW = 36  # C2 .. C6: the strip that shows a singer's range at a glance
KEYBOARD_HIGH = 84
BLACK_KEYS = {1, 3, 6, 8, 10}


def refused_login(response: HttpResponse, form: Form | None) -> HttpResponse:
    """A login page whose form the throttle refused answers 429 with Retry-After (page and admin)."""
    retry_after_s = getattr(form, "retry_after_s", None)
    if retry_after_s:
        response.status_code = 429
        response["Retry-After"] = str(retry_after_s)
    return response


class LoginView(auth_views.LoginView):
    """Django's login page, throttled per client address and per account (see ``LoginForm``)."""

    authentication_form = LoginForm
    redirect_authenticated_user = True

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        return refused_login(super().form_invalid(form), form)


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("tracks:home")
    form = SignupForm(request.POST or None)
    if request.method == "POST":
        try:
            signup_attempt_check(request=request)
        except TooManyAttempts as exc:
            form.add_error(None, str(exc))
            response = render(request, "performers/signup.html", {"form": form}, status=429)
            response["Retry-After"] = str(exc.retry_after_s)
            return response
    if request.method == "POST" and form.is_valid():
        try:
            user = user_register(
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password"],
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            if user.is_producer:
                messages.success(request, "Welcome to Backtrack. Upload your first arrangement.")
                return redirect("tracks:upload")
            messages.success(request, "Welcome to Backtrack. Set your vocal range to get key suggestions.")
            return redirect("profile")
    return render(request, "performers/signup.html", {"form": form})


def _profile_initial(user: User) -> dict:
    profile = profile_get(user=user)
    return {
        "display_name": profile.display_name,
        "vocal_low": note_name(profile.vocal_low) if profile.vocal_low is not None else "",
        "vocal_high": note_name(profile.vocal_high) if profile.vocal_high is not None else "",
        "genres": [genre.slug for genre in profile.genres.all()],
        "bio": profile.bio,
        "share_vocal_range": profile.share_vocal_range,
    }


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    genre_choices = [(genre.slug, genre.name) for genre in genre_list()]
    form = ProfileForm(request.POST or None, initial=_profile_initial(user), genre_choices=genre_choices)
    if request.method == "POST" and form.is_valid():
        try:
            profile_update(
                user=user,
                display_name=form.cleaned_data["display_name"],
                vocal_low=form.cleaned_data["vocal_low"],
                vocal_high=form.cleaned_data["vocal_high"],
                genres=form.cleaned_data["genres"],
                bio=form.cleaned_data["bio"],
                share_vocal_range=form.cleaned_data["share_vocal_range"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Profile saved.")
            return redirect("profile")

    chosen_keys = [
        {
            "track": chosen.track,
            "transpose": chosen.transpose,
            "key": _chosen_key_name(chosen.track, chosen.transpose),
        }
        for chosen in chosen_key_list(performer=user).select_related("track__current_revision")
    ]
    key_count = KEYBOARD_HIGH - KEYBOARD_LOW + 1
    keyboard = [
        {
            "midi": n,
            "name": note_name(n),
            "black": n % 12 in BLACK_KEYS,
            "is_c": n % 12 == 0,
            "left": round((n - KEYBOARD_LOW) * 100 / key_count, 2),
        }
        for n in range(KEYBOARD_LOW, KEYBOARD_HIGH + 1)
    ]
    return render(
        request,
        "performers/profile.html",
        {"form": form, "chosen_keys": chosen_keys, "keyboard": keyboard, "profile_user": user},
    )


def _chosen_key_name(track: Track, transpose: int) -> str:
    revision = track.current_revision
    original = (revision.analysis or {}).get("key") if revision is not None else None
    if not original:
        return f"{transpose:+d} semitones"
    return transpose_key(original, transpose)
