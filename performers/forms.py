"""Page forms for accounts and profiles: they shape input; the services decide what is allowed."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from backtrack.throttling import TooManyAttempts, login_attempt_check, login_failed
from performers.models import NOTE_MAX, NOTE_MIN
from tracks.engine import note_name, note_number

ROLE_CHOICES = [("performer", "Performer"), ("producer", "Producer")]


def add_service_errors(form: forms.BaseForm, exc: ValidationError) -> None:
    """Show a service's ValidationError next to the fields it names (the rest above the form).

    Errors about hidden fields (which render, which moment) go above the form, where people see them.
    """
    if hasattr(exc, "error_dict"):
        for field, messages in exc.message_dict.items():
            visible = field in form.fields and not form.fields[field].widget.is_hidden
            form.add_error(field if visible else None, messages)
    else:
        form.add_error(None, exc.messages)


class NoteSelect(forms.Select):
    """A select of note names whose options carry their MIDI number, so the page can play them."""

    def create_option(
        self,
        name: str,
        value: Any,
        label: int | str,
        selected: bool,
        index: int,
        subindex: int | None = None,
        attrs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if value:
            option["attrs"]["data-midi"] = str(note_number(str(value)))
        return option


def note_choices() -> list[tuple[str, str]]:
    return [("", "Not set")] + [(note_name(n), note_name(n)) for n in range(NOTE_MIN, NOTE_MAX + 1)]


class SignupForm(forms.Form):
    username = forms.CharField(label="Username", max_length=150)
    email = forms.EmailField(label="Email", required=False, help_text="Optional: for notifications.")
    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 8 characters, not only digits, not a common password.",
    )
    role = forms.ChoiceField(
        label="I am a", choices=ROLE_CHOICES, widget=forms.RadioSelect, initial="performer"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs.update({"autocomplete": "username", "autofocus": True})


class ProfileForm(forms.Form):
    display_name = forms.CharField(label="Display name", max_length=80, required=False)
    vocal_low = forms.ChoiceField(
        label="Lowest comfortable note",
        required=False,
        widget=NoteSelect(attrs={"data-note-select": ""}),
    )
    vocal_high = forms.ChoiceField(
        label="Highest comfortable note",
        required=False,
        widget=NoteSelect(attrs={"data-note-select": ""}),
    )
    genres = forms.MultipleChoiceField(
        label="Genres", required=False, widget=forms.CheckboxSelectMultiple, choices=()
    )
    bio = forms.CharField(
        label="Bio", required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 4})
    )
    share_vocal_range = forms.BooleanField(
        label="Share my vocal range with producers (so they can suggest keys for me)",
        required=False,
        help_text="Off: only you see your range and the keys suggested for it.",
    )

    def __init__(self, *args: Any, genre_choices: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["vocal_low"]).choices = note_choices()
        cast(forms.ChoiceField, self.fields["vocal_high"]).choices = note_choices()
        cast(forms.MultipleChoiceField, self.fields["genres"]).choices = genre_choices


class ThrottledLoginMixin:
    """The login throttle inside Django's authentication forms, so the page login and the admin
    login refuse alike: per client address and per account (``backtrack.throttling``).

    A refused attempt is a form error ("Too many attempts; try again in N minutes") and sets
    ``retry_after_s``, which the view turns into status 429.
    """

    request: Any
    retry_after_s: int | None = None

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = self.cleaned_data  # type: ignore[attr-defined]
        username, password = data.get("username"), data.get("password")
        if username is None or not password:
            return super().clean()  # type: ignore[misc]
        try:
            login_attempt_check(request=self.request, username=username)
        except TooManyAttempts as exc:
            self.retry_after_s = exc.retry_after_s
            raise ValidationError(str(exc), code="throttled") from exc
        try:
            return super().clean()  # type: ignore[misc]
        except ValidationError:
            login_failed(username=username)
            raise


class LoginForm(ThrottledLoginMixin, AuthenticationForm):
    pass


class AdminLoginForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass
