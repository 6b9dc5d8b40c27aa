"""HTML pages for tracks: browse, the track page (variants, player, thread), uploads and the inbox.

Views validate with forms, call services and selectors, and render; htmx requests get partials
(the render panel while a worker runs, the feedback thread after a post).
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import reswap, retarget
from django_htmx.middleware import HtmxDetails

from backtrack import http_ranges
from backtrack.errors import LimitReached
from backtrack.text import clock, excerpt, parse_id
from backtrack.throttling import user_write_check
from performers.forms import add_service_errors
from performers.models import User
from performers.selectors import chosen_key_get, genre_list, profile_get
from tracks import rules, selectors
from tracks.forms import (
    STATUS_FILTERS,
    CommentForm,
    RenderForm,
    ResolveForm,
    RevisionUploadForm,
    TrackSearchForm,
    TrackUploadForm,
    part_labels,
)
from tracks.models import Comment, Render, RenderStatus, Revision, Track
from tracks.services import (
    RenderQueueUnavailable,
    comment_post,
    comment_resolve,
    notification_mark_read,
    render_mark_accessed,
    render_request,
    revision_create,
    track_change_check,
    track_create,
    track_create_check,
)
from tracks.services.dynamics import render_dynamics
from tracks.services.sections import revision_sections
from tracks.services.sounds import render_sound_details

RECENT_RENDERS = 8
HOME_PAGE_SIZE = 24
NOTIFICATIONS_PAGE_SIZE = 30


class HtmxHttpRequest(HttpRequest):
    """A request after django-htmx's middleware (``request.htmx`` is truthy for htmx requests)."""

    htmx: HtmxDetails


def _signed_in(request: HttpRequest) -> User:
    """The user of a view behind ``login_required``."""
    return cast(User, request.user)


def _genre_choices() -> list[tuple[str, str]]:
    return [(genre.slug, genre.name) for genre in genre_list()]


def _track_url(track: Track, **params: Any) -> str:
    url = reverse("tracks:detail", kwargs={"pk": track.pk})
    query = "&".join(f"{key}={value}" for key, value in params.items() if value not in (None, ""))
    return f"{url}?{query}" if query else url


# --- browse ----------------------------------------------------------------------------------------


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    form = TrackSearchForm(request.GET or None, genre_choices=_genre_choices())
    q = genre = None
    if form.is_valid():
        q = form.cleaned_data["q"] or None
        genre = form.cleaned_data["genre"] or None
    page = Paginator(selectors.track_list(user=request.user, genre=genre, q=q), HOME_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    # Page links keep the search; the form's cleaned values are safe to put back into a URL.
    search = urlencode({key: value for key, value in (("q", q), ("genre", genre)) if value})
    context = {
        "form": form,
        "page": page,
        "tracks": page.object_list,
        "searching": bool(q or genre),
        "search_query": search,
    }
    return render(request, "tracks/home.html", context)


# --- the track page --------------------------------------------------------------------------------


def _viewed_revision(track: Track, number: str | None) -> Revision | None:
    """The revision the page is about: number ``N`` from ``?revision=N``, or the current one."""
    revision_number = parse_id(number) if number else None
    if revision_number is not None:
        revision = selectors.revision_list(track=track).filter(number=revision_number).first()
        if revision is None:
            raise Http404("no such revision")
        return revision
    return track.current_revision


def _vocal_range(user: Any) -> tuple[int | None, int | None]:
    if not user.is_authenticated or not user.is_performer:
        return None, None
    profile = profile_get(user=user)
    return profile.vocal_low, profile.vocal_high


def _suggestions(track: Track, revision: Revision, user: Any) -> tuple[dict[str, Any] | None, str]:
    """Key suggestions for the user's range, or the reason there are none."""
    low, high = _vocal_range(user)
    if low is None or high is None:
        return None, ""
    try:
        return selectors.key_suggestions(track=track, revision=revision, vocal_low=low, vocal_high=high), ""
    except ValidationError as exc:
        return None, " ".join(exc.messages)


def _selected_render(request: HttpRequest, track: Track) -> Render | None:
    """The render in the player: ``?render=ID`` (of this track) or the user's latest of this track."""
    render_id = parse_id(request.GET.get("render"))
    if render_id is not None:
        chosen = selectors.render_get(user=request.user, render_id=render_id)
        if chosen.revision.track_id != track.pk:
            raise Http404("no such render")
        return chosen
    if not request.user.is_authenticated:
        return None
    mine = selectors.render_list(user=request.user, track=track).filter(requesters=request.user).first()
    return selectors.render_get(user=request.user, render_id=mine.pk) if mine is not None else None


def _render_summary(render_obj: Render, names: dict[int, str]) -> dict[str, Any]:
    """How a render differs from the original, in words, for the list of renders."""
    mix = render_obj.mix
    muted = [names.get(int(i), f"Part {int(i) + 1}") for i, entry in mix.items() if entry.get("mute")]
    solo = [names.get(int(i), f"Part {int(i) + 1}") for i, entry in mix.items() if entry.get("solo")]
    details = []
    if muted:
        details.append("muted: " + ", ".join(muted))
    if solo:
        details.append("solo: " + ", ".join(solo))
    if any(float(entry.get("gain_db", 0)) for entry in mix.values()):
        details.append("custom volumes")
    if render_obj.click:
        details.append("click")
    if render_obj.count_in:
        details.append(f"{render_obj.count_in}-bar count-in")
    if render_obj.settings.get("cues"):
        details.append("spoken cues")
    details += render_sound_details(render=render_obj, names=names)
    dynamics = render_dynamics(render=render_obj)
    if dynamics:
        details.append(dynamics["summary"])
    bpm = selectors.render_tempo_bpm(render=render_obj)
    return {
        "render": render_obj,
        "key": selectors.render_key(render=render_obj),
        "bpm": round(bpm) if bpm else None,
        "details": details,
    }


def _render_list_context(request: HttpRequest, track: Track, current: Render | None) -> dict[str, Any]:
    names = part_labels(track.current_revision.parts if track.current_revision else [])
    recent = list(selectors.render_list(user=request.user, track=track)[:RECENT_RENDERS])
    return {
        "track": track,
        "renders": [_render_summary(r, names) for r in recent],
        "current_render": current,
    }


def _panel_context(track: Track, render_obj: Render | None, **extra: Any) -> dict[str, Any]:
    context: dict[str, Any] = {"track": track, "render": render_obj, **extra}
    if render_obj is not None:
        names = part_labels(render_obj.revision.parts)
        context["summary"] = _render_summary(render_obj, names)
        context["download_filename"] = selectors.render_download_filename(render=render_obj)
        context["is_old_revision"] = render_obj.revision_id != track.current_revision_id
    return context


def _thread_context(
    request: HttpRequest,
    track: Track,
    *,
    view_render: Render | None,
    status: str,
    revision: Revision | None,
    comment_form: CommentForm | None = None,
    reply_errors: dict[int, list[str]] | None = None,
) -> dict[str, Any]:
    resolved = {"open": False, "resolved": True}.get(status)
    comments = selectors.comment_list(user=request.user, track=track, resolved=resolved)
    timelines: dict[int, Any] = {}
    user = request.user

    def entry(comment: Comment) -> dict[str, Any]:
        position = selectors.comment_position(comment=comment, render=view_render, timelines=timelines)
        if position.get("seconds") is not None:
            position["clock"] = clock(position["seconds"], floor=True)
        return {
            "comment": comment,
            "position": position,
            "can_resolve": rules.may_resolve_comment(user, comment),
            "reply_errors": (reply_errors or {}).get(comment.pk, []),
        }

    threads = []
    for comment in comments:
        item = entry(comment)
        item["replies"] = [entry(reply) for reply in comment.replies.all()]
        threads.append(item)
    counts = {
        "open": selectors.comment_list(user=user, track=track, resolved=False).count(),
        "resolved": selectors.comment_list(user=user, track=track, resolved=True).count(),
    }
    return {
        "track": track,
        "threads": threads,
        "status": status,
        "status_filters": STATUS_FILTERS,
        "counts": counts,
        "view_render": view_render,
        "thread_revision": revision,
        "comment_form": comment_form
        or CommentForm(
            initial={
                "revision": revision.pk if revision else None,
                "render_id": view_render.pk if view_render else None,
            }
        ),
        "reply_errors": reply_errors or {},
    }


def _status_param(value: str | None) -> str:
    return value if value in dict(STATUS_FILTERS) else "all"


def _track_page_context(
    request: HttpRequest,
    track: Track,
    *,
    render_form: RenderForm | None = None,
    comment_form: CommentForm | None = None,
    reply_errors: dict[int, list[str]] | None = None,
) -> dict[str, Any]:
    revision = _viewed_revision(track, request.GET.get("revision"))
    analysis: dict[str, Any] = revision.analysis if revision is not None else {}
    selected = _selected_render(request, track)
    if selected is not None and revision is not None and selected.revision_id != revision.pk:
        if request.GET.get("render"):
            revision = selected.revision
            analysis = revision.analysis
        else:
            selected = None
    suggestions, suggestions_problem = (None, "")
    if revision is not None:
        suggestions, suggestions_problem = _suggestions(track, revision, request.user)
    if render_form is None and revision is not None:
        initial: dict[str, Any] = {"revision": revision.number}
        if selected is not None:
            initial |= RenderForm.initial_from_settings(
                selected.settings, original_bpm=float(analysis.get("tempo_bpm") or 120.0)
            )
        elif request.user.is_authenticated:
            chosen = chosen_key_get(performer=request.user, track=track)
            if chosen is not None:
                initial["transpose"] = chosen
        render_form = RenderForm(
            initial=initial,
            analysis=analysis,
            suggestions=(suggestions or {}).get("suggestions"),
            sections=revision_sections(revision=revision),
        )

    revisions = list(selectors.revision_list(track=track))
    previous = next((r for r in revisions if revision is not None and r.number == revision.number - 1), None)
    changes = selectors.revision_changes(old=previous.analysis, new=analysis) if previous is not None else []
    view_render = selected if selected is not None and selected.status == RenderStatus.DONE else None
    status = _status_param(request.GET.get("status"))
    names = part_labels(list(analysis.get("parts") or []))
    best = (suggestions or {}).get("suggestions", [None])[0] if suggestions else None
    return {
        "track": track,
        "revision": revision,
        "analysis": analysis,
        "duration_label": clock(float(analysis.get("duration_s") or 0)),
        "parts": [{**part, "label": names[int(part["index"])]} for part in analysis.get("parts") or []],
        "is_current_revision": revision is not None and revision.pk == track.current_revision_id,
        "revisions": revisions,
        "previous_revision": previous,
        "changes": changes,
        "suggestions": suggestions,
        "best_suggestion": best,
        "fitting_suggestions": [s for s in (suggestions or {}).get("suggestions", []) if s.get("fits")][:6],
        "suggestions_problem": suggestions_problem,
        "render_form": render_form,
        "is_producer_of_track": rules.may_change_track(request.user, track),
        "panel": _panel_context(track, selected),
        **_render_list_context(request, track, selected),
        **_thread_context(
            request,
            track,
            view_render=view_render,
            status=status,
            revision=revision,
            comment_form=comment_form,
            reply_errors=reply_errors,
        ),
    }


@require_GET
def track_detail(request: HttpRequest, pk: int) -> HttpResponse:
    track = selectors.track_get(user=request.user, track_id=pk)
    return render(request, "tracks/track_detail.html", _track_page_context(request, track))


# --- renders -----------------------------------------------------------------------------------------


@login_required
@require_POST
def render_create(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    track = selectors.track_get(user=request.user, track_id=pk)
    revision = _viewed_revision(track, request.POST.get("revision"))
    if revision is None:
        raise Http404("this track has no revision yet")
    suggestions, _ = _suggestions(track, revision, request.user)
    form = RenderForm(
        request.POST,
        analysis=revision.analysis,
        suggestions=(suggestions or {}).get("suggestions"),
        sections=revision_sections(revision=revision),
    )
    render_obj: Render | None = None
    notice = ""
    status = 400
    if form.is_valid():
        try:
            user_write_check(scope="renders", user=request.user, what="render requests")
            render_obj, _created = render_request(
                user=_signed_in(request), revision=revision, settings=form.settings()
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        except LimitReached as exc:  # the request budget (shared with the API) or the active renders
            form.add_error(None, str(exc))
            status = 429
        except PermissionDenied as exc:
            form.add_error(None, str(exc))
        except RenderQueueUnavailable as exc:
            render_obj = selectors.render_get(user=request.user, render_id=exc.render_id)
            notice = str(exc)

    if render_obj is None:
        if request.htmx:
            response = render(
                request,
                "tracks/_render_form.html",
                {"render_form": form, "track": track, "revision": revision},
            )
            return reswap(retarget(response, "#render-form"), "outerHTML")
        context = _track_page_context(request, track, render_form=form)
        return render(request, "tracks/track_detail.html", context, status=status)

    if request.htmx:
        context = {"panel": _panel_context(track, render_obj, notice=notice, oob_list=True)}
        context |= _render_list_context(request, track, render_obj)
        response = render(request, "tracks/_render_panel.html", context)
        response["HX-Replace-Url"] = _track_url(track, render=render_obj.pk)
        return response
    if notice:
        messages.warning(request, notice)
    return redirect(_track_url(track, render=render_obj.pk) + "#listen")


@require_GET
def render_panel(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The live status of one render (htmx polls it every second until it is done or failed)."""
    render_obj = selectors.render_get(user=request.user, render_id=pk)
    track = render_obj.revision.track
    finished = not render_obj.is_active
    context = {"panel": _panel_context(track, render_obj, oob_list=finished and bool(request.htmx))}
    if finished:
        context |= _render_list_context(request, track, render_obj)
    return render(request, "tracks/_render_panel.html", context)


@require_GET
def render_audio(request: HttpRequest, pk: int) -> HttpResponseBase:
    """The render's MP3 for the page's player, inline and with byte ranges so seeking works."""
    render_obj = selectors.render_get(user=request.user, render_id=pk)
    if render_obj.status != RenderStatus.DONE or not render_obj.audio:
        raise Http404("this render has no audio yet")
    content_type = selectors.render_content_type(render=render_obj)
    if content_type not in ("audio/mpeg", "audio/wav"):
        raise Http404("this render is a download, not something to play")
    range_header = request.headers.get("Range")
    try:
        response = http_ranges.stored_file_response(
            render_obj.audio, range_header=range_header, content_type=content_type
        )
    except OSError as exc:
        raise Http404("the audio of this render is gone; render it again") from exc
    if http_ranges.range_starts_the_file(range_header):
        render_mark_accessed(render=render_obj)  # once per playback start, not per byte range
    return response


# --- the feedback thread -----------------------------------------------------------------------------


def _optional_render(request: HttpRequest, render_id: Any) -> Render | None:
    if not render_id:
        return None
    try:
        return selectors.render_get(user=request.user, render_id=int(render_id))
    except (Http404, ValueError):
        return None


@require_GET
def thread(request: HttpRequest, pk: int) -> HttpResponse:
    """The feedback thread alone, with times for the render the player plays (htmx refreshes it)."""
    track = selectors.track_get(user=request.user, track_id=pk)
    view_render = _optional_render(request, request.GET.get("render"))
    if view_render is not None and view_render.revision.track_id != track.pk:
        view_render = None
    revision = view_render.revision if view_render is not None else track.current_revision
    context = _thread_context(
        request,
        track,
        view_render=view_render,
        status=_status_param(request.GET.get("status")),
        revision=revision,
    )
    return render(request, "tracks/_thread.html", context)


@login_required
@require_POST
def comment_create(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    track = selectors.track_get(user=request.user, track_id=pk)
    form = CommentForm(request.POST)
    status = _status_param(request.POST.get("status"))
    view_render = _optional_render(request, request.POST.get("render_id"))
    comment: Comment | None = None
    refused = False
    if form.is_valid():
        data = form.cleaned_data
        try:
            parent = (
                selectors.comment_get(user=request.user, comment_id=data["parent"])
                if data["parent"]
                else None
            )
            revision = (
                selectors.revision_get(user=request.user, revision_id=data["revision"])
                if data["revision"]
                else None
            )
            comment = comment_post(
                user=_signed_in(request),
                track=track,
                body=data["body"],
                parent=parent,
                revision=revision,
                render=view_render,
                at_seconds=data["at_seconds"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        except LimitReached as exc:  # comments a minute / an hour, counted by the service
            form.add_error(None, str(exc))
            refused = True
        except Http404:
            form.add_error(None, "That comment, revision or render is not part of this track any more.")

    if comment is not None and not request.htmx:
        return redirect(
            _track_url(track, render=view_render.pk if view_render else None) + f"#comment-{comment.pk}"
        )

    # A failed reply shows its errors inside that reply's form; the main comment box stays empty.
    reply_errors: dict[int, list[str]] = {}
    parent_id = form.cleaned_data.get("parent")
    if comment is None and parent_id:
        reply_errors[int(parent_id)] = [str(error) for errors in form.errors.values() for error in errors]
        form = CommentForm(
            initial={"revision": request.POST.get("revision"), "render_id": request.POST.get("render_id")}
        )
    if request.htmx:
        done_render = (
            view_render if view_render is not None and view_render.status == RenderStatus.DONE else None
        )
        context = _thread_context(
            request,
            track,
            view_render=done_render,
            status=status,
            revision=done_render.revision if done_render else track.current_revision,
            comment_form=None if comment is not None else form,
            reply_errors=reply_errors,
        )
        return render(request, "tracks/_thread.html", context)
    context = _track_page_context(request, track, comment_form=form, reply_errors=reply_errors)
    return render(request, "tracks/track_detail.html", context, status=429 if refused else 400)


@login_required
@require_POST
def comment_resolve_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    comment = selectors.comment_get(user=request.user, comment_id=pk)
    form = ResolveForm(request.POST)
    form.is_valid()
    try:
        comment_resolve(
            user=_signed_in(request), comment=comment, resolved=form.cleaned_data.get("resolved", False)
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    track = comment.track
    if request.htmx:
        view_render = _optional_render(request, request.POST.get("render_id"))
        if view_render is not None and view_render.revision.track_id != track.pk:
            view_render = None
        context = _thread_context(
            request,
            track,
            view_render=view_render,
            status=_status_param(request.POST.get("status")),
            revision=view_render.revision if view_render else track.current_revision,
        )
        return render(request, "tracks/_thread.html", context)
    next_url = request.POST.get("next", "")
    if next_url and url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        return redirect(next_url)
    return redirect(_track_url(track) + f"#comment-{comment.pk}")


# --- producer pages -----------------------------------------------------------------------------------


def _require_producer(user: Any) -> User:
    track_create_check(user=user)
    return cast(User, user)


@login_required
@require_http_methods(["GET", "POST"])
def track_upload(request: HttpRequest) -> HttpResponse:
    producer = _require_producer(request.user)
    form = TrackUploadForm(request.POST or None, request.FILES or None, genre_choices=_genre_choices())
    refused = False
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user_write_check(scope="uploads", user=producer, what="uploads")
            track = track_create(
                producer=producer,
                title=data["title"],
                genre=data["genre"],
                midi=data["midi"],
                description=data["description"],
                is_public=data["is_public"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        except LimitReached as exc:  # one upload budget per user, shared with the API
            form.add_error(None, str(exc))
            refused = True
        else:
            messages.success(request, f"“{track.title}” is up. Here is how it was read.")
            return redirect("tracks:detail", pk=track.pk)
    status = 429 if refused else 400 if form.errors else 200
    return render(request, "tracks/track_upload.html", {"form": form}, status=status)


def _open_comment_choices(request: HttpRequest, track: Track) -> list[tuple[int, str]]:
    comments: QuerySet[Comment] = selectors.comment_list(user=request.user, track=track, resolved=False)
    choices = []
    for comment in comments:
        if comment.is_deleted:
            continue
        choices.append((comment.pk, f"{comment.author.display_name}: {excerpt(comment.body, 90)}"))
    return choices


@login_required
@require_http_methods(["GET", "POST"])
def revision_upload(request: HttpRequest, pk: int) -> HttpResponse:
    track = selectors.track_get(user=request.user, track_id=pk)
    track_change_check(user=_signed_in(request), track=track, action="uploads revisions")
    open_comments = _open_comment_choices(request, track)
    form = RevisionUploadForm(request.POST or None, request.FILES or None, open_comments=open_comments)
    refused = False
    if request.method == "POST" and form.is_valid():
        try:
            user_write_check(scope="uploads", user=request.user, what="uploads")
            revision = revision_create(
                track=track,
                user=_signed_in(request),
                midi=form.cleaned_data["midi"],
                notes=form.cleaned_data["notes"],
                resolves=[int(comment_id) for comment_id in form.cleaned_data["resolves"]],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        except LimitReached as exc:  # one upload budget per user, shared with the API
            form.add_error(None, str(exc))
            refused = True
        else:
            answered = revision.resolved_comments.count()
            note = f" It answers {answered} comment{'s' if answered != 1 else ''}." if answered else ""
            messages.success(request, f"Revision {revision.number} is up.{note}")
            return redirect("tracks:detail", pk=track.pk)
    context = {"form": form, "track": track, "current": track.current_revision}
    status = 429 if refused else 400 if form.errors else 200
    return render(request, "tracks/revision_upload.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def notifications(request: HttpRequest) -> HttpResponse:
    """The signed-in user's notifications, newest first; POST marks them all read."""
    user = _signed_in(request)
    if request.method == "POST":
        count = notification_mark_read(user=user)
        messages.success(request, f"Marked {count} notification{'s' if count != 1 else ''} as read.")
        return redirect("tracks:notifications")
    page = Paginator(selectors.notification_list(user=user), NOTIFICATIONS_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "tracks/notifications.html", {"page": page, "notifications": page.object_list})


@login_required
@require_GET
def notification_open(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark one notification read and go where it points (a comment, a track)."""
    user = _signed_in(request)
    notification = selectors.notification_get(user=user, notification_id=pk)
    notification_mark_read(user=user, ids=[notification.pk])
    target = notification.url
    if not target or not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect("tracks:notifications")
    return redirect(target)


@login_required
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    producer = _require_producer(request.user)
    comments = list(selectors.inbox_open_comments(producer=producer)[:200])
    return render(request, "tracks/inbox.html", {"comments": comments})
