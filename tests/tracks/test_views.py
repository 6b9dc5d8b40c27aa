"""Track pages: browsing, the track page's controls, renders, the thread, uploads and the inbox.

Plain Django client tests (no browser, no worker): on-commit callbacks never run inside the test
transaction, so requesting a render stores the row without enqueuing a task.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from performers.models import ChosenKey, User
from performers.services import profile_update, user_register
from tests.factories import NotificationFactory, TrackFactory
from tracks.demo import compose_song
from tracks.models import Comment, Render, RenderStatus, Revision, Track
from tracks.services import RenderQueueUnavailable, comment_post, render_request, track_create

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-enough-secret-9"
HTMX = {"HTTP_HX_REQUEST": "true"}


def _midi(seed: int = 5, minutes: float = 0.3) -> bytes:
    return compose_song(style="pop", minutes=minutes, parts=4, seed=seed)


@pytest.fixture
def producer() -> User:
    return user_register(username="prod", password=PASSWORD, role="producer")


@pytest.fixture
def singer() -> User:
    user = user_register(username="ella", password=PASSWORD, role="performer")
    profile_update(user=user, vocal_low="G3", vocal_high="C5")
    return user


@pytest.fixture
def track(producer: User) -> Track:
    upload = SimpleUploadedFile("sunlit.mid", _midi(), content_type="audio/midi")
    return track_create(
        producer=producer, title="Sunlit Avenue", genre="pop", midi=upload, description="Bright pop."
    )


@pytest.fixture
def done_render(track: Track, singer: User) -> Render:
    """A finished render with a small fake MP3 (the page serves bytes; no worker needed)."""
    revision = track.current_revision
    melody = revision.analysis["melody_part"]
    render, _ = render_request(
        user=singer,
        revision=revision,
        settings={"transpose": 2, "tempo": 1.0, "mix": {str(melody): {"mute": True}}},
    )
    render.audio.save(f"renders/{render.pk}.mp3", ContentFile(b"ID3" + bytes(range(256)) * 40), save=False)
    render.status = RenderStatus.DONE
    render.duration_s = 20.0
    render.peaks = [0.1, 0.5, 0.9, 0.4]
    render.save()
    return render


def _track_url(track: Track) -> str:
    return reverse("tracks:detail", kwargs={"pk": track.pk})


def _label_for(html: str, text: str) -> str:
    """The id of the control whose <label> (text possibly split by a visually hidden span) is ``text``."""
    for match in re.finditer(r'<label[^>]*for="([^"]+)"[^>]*>(.*?)</label>', html, re.S):
        visible = re.sub(r"<[^>]+>", "", match.group(2))
        if " ".join(visible.split()) == text:
            return match.group(1)
    raise AssertionError(f"no label {text!r}")


# --- home -----------------------------------------------------------------------------------------


def test_home_links_log_in_and_sign_up_for_visitors(client: Client) -> None:
    html = client.get(reverse("tracks:home")).content.decode()

    assert f'<a href="{reverse("login")}">Log in</a>' in html
    assert f'<a href="{reverse("signup")}">Sign up</a>' in html
    # exactly one link of each name, so a browser check finding "the Log in link" is not ambiguous
    link_names = [
        " ".join(re.sub(r"<[^>]+>", "", text).split())
        for text in re.findall(r"<a\b[^>]*>(.*?)</a>", html, re.S)
    ]
    assert [name for name in link_names if "log in" in name.lower()] == ["Log in"]
    assert [name for name in link_names if "sign up" in name.lower()] == ["Sign up"]


def test_home_lists_tracks_with_key_and_tempo_and_links_the_title(client: Client, track: Track) -> None:
    analysis = track.current_revision.analysis

    html = client.get(reverse("tracks:home")).content.decode()

    assert f'<a href="{_track_url(track)}">Sunlit Avenue</a>' in html
    assert f"Key {analysis['key']}" in html
    assert f"{round(analysis['tempo_bpm'])} BPM" in html


def test_home_searches_by_title_and_filters_by_genre(client: Client, producer: User, track: Track) -> None:
    other = SimpleUploadedFile("harbour.mid", _midi(seed=9), content_type="audio/midi")
    track_create(producer=producer, title="Quiet Harbour", genre="ballad", midi=other)

    by_title = client.get(reverse("tracks:home"), {"q": "harbour"}).content.decode()
    by_genre = client.get(reverse("tracks:home"), {"genre": "pop"}).content.decode()

    assert "Quiet Harbour" in by_title
    assert "Sunlit Avenue" not in by_title
    assert "Sunlit Avenue" in by_genre
    assert "Quiet Harbour" not in by_genre


def test_track_titles_are_escaped_everywhere(client: Client, producer: User) -> None:
    upload = SimpleUploadedFile("x.mid", _midi(), content_type="audio/midi")
    hostile = track_create(producer=producer, title="<script>alert('x')</script>", genre="pop", midi=upload)

    for url in (reverse("tracks:home"), _track_url(hostile)):
        html = client.get(url).content.decode()
        assert "<script>alert('x')</script>" not in html
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html


def test_a_private_track_is_missing_for_everyone_but_its_producer(
    client: Client, producer: User, singer: User
) -> None:
    upload = SimpleUploadedFile("x.mid", _midi(), content_type="audio/midi")
    private = track_create(
        producer=producer, title="Work in progress", genre="pop", midi=upload, is_public=False
    )

    assert client.get(_track_url(private)).status_code == 404
    client.force_login(singer)
    assert client.get(_track_url(private)).status_code == 404
    assert "Work in progress" not in client.get(reverse("tracks:home")).content.decode()
    client.force_login(producer)
    assert client.get(_track_url(private)).status_code == 200


# --- the track page ------------------------------------------------------------------------------


def test_the_track_page_says_what_the_track_is(client: Client, track: Track) -> None:
    analysis = track.current_revision.analysis

    html = client.get(_track_url(track)).content.decode()

    assert "<h1>Sunlit Avenue</h1>" in html
    assert "Revision 1" in html
    assert analysis["key"] in html
    for part in analysis["parts"]:
        assert part["role"] in html
    assert 'class="tag melody">Melody</span>' in html


def test_the_controls_carry_the_names_outside_checks_use(client: Client, track: Track, singer: User) -> None:
    client.force_login(singer)
    parts = track.current_revision.analysis["parts"]

    html = client.get(_track_url(track)).content.decode()

    assert _label_for(html, "Key") == "id_transpose"
    assert _label_for(html, "Tempo") == "id_tempo"
    assert _label_for(html, "Count-in") == "id_count_in"
    assert _label_for(html, "Click") == "id_click"
    for part in parts:
        index = part["index"]
        name = part["name"]
        assert _label_for(html, f"Volume {name}") == f"id_gain_{index}"
        assert _label_for(html, f"Mute {name}") == f"id_mute_{index}"
        assert _label_for(html, f"Solo {name}") == f"id_solo_{index}"
    assert re.search(r"<button[^>]*>Render</button>", html)
    assert _label_for(html, "Comment") == "id_body"
    assert html.count("csrfmiddlewaretoken") >= 2


def test_the_key_select_marks_the_best_key_for_my_range(client: Client, track: Track, singer: User) -> None:
    client.force_login(singer)

    html = client.get(_track_url(track)).content.decode()

    best = re.search(r'<option value="(-?\d+)"[^>]*>([^<]*) · best for your range</option>', html)
    assert best, "no option marked as the best key"
    assert f'data-set-key="{best.group(1)}"' in html


def test_a_visitor_is_asked_to_log_in_instead_of_rendering(client: Client, track: Track) -> None:
    html = client.get(_track_url(track)).content.decode()

    assert 'id="render-form"' not in html
    assert "to render this track in your key" in html


def test_rendering_queues_a_render_and_answers_htmx_with_a_polling_panel(
    client: Client, track: Track, singer: User
) -> None:
    client.force_login(singer)
    revision = track.current_revision
    melody = revision.analysis["melody_part"]
    bpm = revision.analysis["tempo_bpm"]

    response = client.post(
        reverse("tracks:render-create", kwargs={"pk": track.pk}),
        {"transpose": "-2", "tempo": str(bpm * 0.9), "count_in": "1", "click": "on", f"mute_{melody}": "on"},
        **HTMX,
    )

    assert response.status_code == 200
    render = Render.objects.get()
    assert render.transpose == -2
    assert render.tempo == pytest.approx(0.9, abs=0.001)
    assert render.mix == {str(melody): {"gain_db": 0.0, "mute": True, "solo": False}}
    assert render.click
    assert render.count_in == 1
    html = response.content.decode()
    assert f'hx-get="{reverse("tracks:render-panel", kwargs={"pk": render.pk})}"' in html
    assert 'hx-trigger="every 1s"' in html
    assert f"render={render.pk}" in response["HX-Replace-Url"]
    assert ChosenKey.objects.get(performer=singer, track=track).transpose == -2


def test_rendering_without_htmx_redirects_to_the_render(client: Client, track: Track, singer: User) -> None:
    client.force_login(singer)

    response = client.post(
        reverse("tracks:render-create", kwargs={"pk": track.pk}),
        {"transpose": "0", "tempo": "100", "count_in": "0"},
    )

    render = Render.objects.get()
    assert response.status_code == 302
    assert response.url == f"{_track_url(track)}?render={render.pk}#listen"


def test_a_tempo_out_of_range_is_refused_next_to_the_tempo(
    client: Client, track: Track, singer: User
) -> None:
    client.force_login(singer)

    response = client.post(
        reverse("tracks:render-create", kwargs={"pk": track.pk}),
        {"transpose": "0", "tempo": "900", "count_in": "0"},
        **HTMX,
    )

    assert response.status_code == 200
    assert response["HX-Retarget"] == "#render-form"
    tempo_block = response.content.decode().split('for="id_tempo"', 1)[1].split('class="field')[0]
    assert "Choose a tempo between" in tempo_block
    assert not Render.objects.exists()


def test_rendering_needs_a_login(client: Client, track: Track) -> None:
    response = client.post(reverse("tracks:render-create", kwargs={"pk": track.pk}), {"transpose": "0"})

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    assert not Render.objects.exists()


def test_a_finished_render_shows_the_player_and_the_download(
    client: Client, track: Track, singer: User, done_render: Render
) -> None:
    client.force_login(singer)

    html = client.get(reverse("tracks:render-panel", kwargs={"pk": done_render.pk}), **HTMX).content.decode()

    assert "hx-trigger" not in html.split('id="render-list"')[0]
    assert f'src="{reverse("tracks:render-audio", kwargs={"pk": done_render.pk})}"' in html
    assert '<script id="peaks-data" type="application/json">[0.1, 0.5, 0.9, 0.4]</script>' in html
    assert f'action="{reverse("api-render-download", kwargs={"pk": done_render.pk})}"' in html
    assert re.search(r"<button[^>]*>Download MP3</button>", html)
    assert 'id="render-list" hx-swap-oob="true"' in html


def test_the_track_page_opens_with_my_latest_render_and_its_settings(
    client: Client, track: Track, singer: User, done_render: Render
) -> None:
    client.force_login(singer)
    melody = track.current_revision.analysis["melody_part"]

    html = client.get(_track_url(track)).content.decode()

    assert f'data-player data-render-id="{done_render.pk}"' in html
    assert re.search(r'<option value="2" selected>', html)
    assert re.search(rf'<input type="checkbox" name="mute_{melody}"[^>]*checked', html)


def test_the_audio_supports_byte_ranges_for_seeking(
    client: Client, singer: User, done_render: Render
) -> None:
    client.force_login(singer)
    url = reverse("tracks:render-audio", kwargs={"pk": done_render.pk})

    whole = client.get(url)
    part = client.get(url, HTTP_RANGE="bytes=3-9")

    assert whole.status_code == 200
    assert whole["Content-Type"] == "audio/mpeg"
    assert whole["Accept-Ranges"] == "bytes"
    body = b"".join(whole.streaming_content)
    assert body.startswith(b"ID3")
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 3-9/{len(body)}"
    assert b"".join(part.streaming_content) == body[3:10]
    assert client.get(url, HTTP_RANGE=f"bytes={len(body) + 5}-").status_code == 416
    # a 5000-digit position is malformed (the whole file), never a 500
    assert client.get(url, HTTP_RANGE="bytes=0-" + "9" * 5000).status_code == 200


def test_the_audio_of_an_unfinished_render_is_missing(client: Client, track: Track, singer: User) -> None:
    client.force_login(singer)
    render, _ = render_request(user=singer, revision=track.current_revision, settings={"transpose": 1})

    assert client.get(reverse("tracks:render-audio", kwargs={"pk": render.pk})).status_code == 404


# --- the feedback thread -------------------------------------------------------------------------


def test_posting_a_comment_pinned_to_a_moment_shows_its_time(
    client: Client, track: Track, singer: User, done_render: Render
) -> None:
    client.force_login(singer)

    response = client.post(
        reverse("tracks:comment-create", kwargs={"pk": track.pk}),
        {"body": "Brass <too> loud here", "render_id": done_render.pk, "at_seconds": "8.5", "status": "all"},
        **HTMX,
    )

    html = response.content.decode()
    comment = Comment.objects.get()
    assert comment.render == done_render
    assert comment.at_bar is not None
    assert "Brass &lt;too&gt; loud here" in html
    assert "Brass <too>" not in html
    seek = re.search(r'data-seek="([\d.]+)"[^>]*>at (\d+:\d\d)</button>', html)
    assert seek
    assert float(seek.group(1)) == pytest.approx(8.5, abs=0.05)
    assert seek.group(2) == "0:08"


def test_an_empty_comment_is_refused_next_to_the_comment_box(
    client: Client, track: Track, singer: User
) -> None:
    client.force_login(singer)

    response = client.post(reverse("tracks:comment-create", kwargs={"pk": track.pk}), {"body": "  "})

    assert response.status_code == 400
    body_block = response.content.decode().split('for="id_body"', 1)[1].split("</div>")[0]
    assert "This field is required." in body_block
    assert not Comment.objects.exists()


def test_replies_are_shown_under_their_comment_and_empty_replies_say_why(
    client: Client, track: Track, singer: User, producer: User
) -> None:
    first = comment_post(user=singer, track=track, body="Key is too low for me")
    client.force_login(producer)
    url = reverse("tracks:comment-create", kwargs={"pk": track.pk})

    empty = client.post(url, {"body": "", "parent": first.pk}, **HTMX).content.decode()
    client.post(url, {"body": "Try the +3 version", "parent": first.pk}, **HTMX)

    assert '<details class="reply" open>' in empty
    assert f'id="reply-{first.pk}-errors"' in empty
    reply = Comment.objects.get(parent=first)
    html = client.get(_track_url(track)).content.decode()
    replies_block = html.split(f'id="comment-{first.pk}"')[1]
    assert f'id="comment-{reply.pk}"' in replies_block
    assert "Try the +3 version" in replies_block


def test_the_producer_resolves_a_comment_and_the_filter_shows_it(
    client: Client, track: Track, singer: User, producer: User
) -> None:
    comment = comment_post(user=singer, track=track, body="Bridge drags")
    client.force_login(producer)

    response = client.post(
        reverse("tracks:comment-resolve", kwargs={"pk": comment.pk}),
        {"resolved": "on", "status": "all"},
        **HTMX,
    )

    comment.refresh_from_db()
    assert comment.resolved
    assert "Resolved" in response.content.decode()
    open_html = client.get(_track_url(track), {"status": "open"}).content.decode()
    resolved_html = client.get(_track_url(track), {"status": "resolved"}).content.decode()
    assert "Bridge drags" not in open_html
    assert "Bridge drags" in resolved_html


def test_only_the_comment_box_is_labelled_comment_even_with_resolve_buttons_shown(
    client: Client, track: Track, singer: User, producer: User
) -> None:
    # given: a thread the producer may resolve, so resolve buttons are on the page
    comment_post(user=singer, track=track, body="Bridge drags")
    client.force_login(producer)

    html = client.get(_track_url(track)).content.decode()

    # then: a label lookup for "Comment" finds the comment box and no button's aria-label
    assert ">Resolve</button>" in html
    assert _label_for(html, "Comment") == "id_body"
    aria_labels = re.findall(r'aria-label="([^"]*)"', html)
    assert [label for label in aria_labels if "comment" in label.lower()] == []


def test_strangers_cannot_resolve_and_see_no_resolve_button(
    client: Client, track: Track, singer: User, producer: User
) -> None:
    comment = comment_post(user=producer, track=track, body="Bridge drags")
    client.force_login(singer)

    html = client.get(_track_url(track)).content.decode()
    response = client.post(reverse("tracks:comment-resolve", kwargs={"pk": comment.pk}), {"resolved": "on"})

    assert ">Resolve</button>" not in html
    assert response.status_code == 403
    comment.refresh_from_db()
    assert not comment.resolved


# --- producer pages -----------------------------------------------------------------------------------


def test_upload_is_for_producers_only(client: Client, singer: User) -> None:
    assert client.get(reverse("tracks:upload")).status_code == 302
    client.force_login(singer)
    assert client.get(reverse("tracks:upload")).status_code == 403


def test_uploading_a_track_creates_it_and_opens_its_page(client: Client, producer: User) -> None:
    client.force_login(producer)

    response = client.post(
        reverse("tracks:upload"),
        {
            "title": "Night Drive",
            "genre": "pop",
            "description": "",
            "is_public": "on",
            "midi": SimpleUploadedFile("night.mid", _midi(seed=3), content_type="audio/midi"),
        },
    )

    track = Track.objects.get(title="Night Drive")
    assert response.status_code == 302
    assert response.url == _track_url(track)
    assert track.current_revision.number == 1


def test_a_bad_midi_file_says_why_next_to_the_file_field(client: Client, producer: User) -> None:
    client.force_login(producer)

    response = client.post(
        reverse("tracks:upload"),
        {"title": "Broken", "genre": "pop", "midi": SimpleUploadedFile("x.mid", b"this is not midi at all")},
    )

    assert response.status_code == 400
    midi_block = response.content.decode().split('for="id_midi"', 1)[1].split('class="field')[0]
    assert "MIDI" in midi_block
    assert 'class="errorlist' in midi_block
    assert not Track.objects.exists()
    assert not Revision.objects.exists()


def test_a_new_revision_shows_what_changed_and_answers_comments(
    client: Client, track: Track, singer: User, producer: User
) -> None:
    comment = comment_post(user=singer, track=track, body="Make it longer")
    client.force_login(producer)
    form_html = client.get(reverse("tracks:revision-upload", kwargs={"pk": track.pk})).content.decode()
    assert "Make it longer" in form_html

    response = client.post(
        reverse("tracks:revision-upload", kwargs={"pk": track.pk}),
        {
            "midi": SimpleUploadedFile("v2.mid", _midi(seed=5, minutes=0.45), content_type="audio/midi"),
            "notes": "Added a <second> verse",
            "resolves": [comment.pk],
        },
    )

    assert response.status_code == 302
    track.refresh_from_db()
    assert track.current_revision.number == 2
    comment.refresh_from_db()
    assert comment.resolved
    assert comment.resolved_in_revision == track.current_revision
    html = client.get(_track_url(track)).content.decode()
    assert "What changed since revision 1" in html
    assert "Length:" in html
    assert "Added a &lt;second&gt; verse" in html
    assert "Resolved in revision 2" in html


def test_only_the_tracks_producer_uploads_revisions(client: Client, track: Track) -> None:
    other = user_register(username="rival", password=PASSWORD, role="producer")
    client.force_login(other)

    assert client.get(reverse("tracks:revision-upload", kwargs={"pk": track.pk})).status_code == 403


def test_the_inbox_lists_open_comments_on_my_tracks(
    client: Client, track: Track, singer: User, producer: User
) -> None:
    open_comment = comment_post(user=singer, track=track, body="Chorus needs more lift")
    done = comment_post(user=singer, track=track, body="Intro too long")
    done.resolved = True
    done.save()
    client.force_login(producer)

    html = client.get(reverse("tracks:inbox")).content.decode()

    assert "Chorus needs more lift" in html
    assert "Intro too long" not in html
    assert f"#comment-{open_comment.pk}" in html
    client.force_login(singer)
    assert client.get(reverse("tracks:inbox")).status_code == 403


def test_a_failed_render_says_why_and_stops_polling(client: Client, track: Track, singer: User) -> None:
    client.force_login(singer)
    render, _ = render_request(user=singer, revision=track.current_revision, settings={"transpose": 3})
    render.status = RenderStatus.FAILED
    render.error = "the render came out silent"
    render.save()

    html = client.get(reverse("tracks:render-panel", kwargs={"pk": render.pk}), **HTMX).content.decode()

    assert "the render came out silent" in html
    assert "hx-trigger" not in html.split('id="render-list"')[0]
    assert "Download MP3" not in html


def test_a_full_render_queue_is_explained_above_the_form(
    client: Client, track: Track, singer: User, settings: Any
) -> None:
    settings.RENDER_MAX_ACTIVE_PER_USER = 0
    client.force_login(singer)

    response = client.post(
        reverse("tracks:render-create", kwargs={"pk": track.pk}),
        {"transpose": "0", "tempo": "100", "count_in": "0"},
        **HTMX,
    )

    assert response.status_code == 200
    assert response["HX-Retarget"] == "#render-form"
    assert 'class="form-errors"' in response.content.decode()
    assert "renders queued or rendering" in response.content.decode()
    assert not Render.objects.exists()


def test_when_the_queue_is_down_the_render_is_kept_and_the_page_says_so(
    client: Client, track: Track, singer: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.force_login(singer)
    kept, _ = render_request(user=singer, revision=track.current_revision, settings={"transpose": 4})

    def queue_down(**kwargs: Any) -> None:
        raise RenderQueueUnavailable(render_id=kept.pk)

    monkeypatch.setattr("tracks.views.render_request", queue_down)

    response = client.post(
        reverse("tracks:render-create", kwargs={"pk": track.pk}),
        {"transpose": "4", "tempo": "100", "count_in": "0"},
        **HTMX,
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "the render queue is unavailable right now" in html
    assert f'hx-get="{reverse("tracks:render-panel", kwargs={"pk": kept.pk})}"' in html


def test_a_moment_outside_the_render_is_refused_above_the_comment_box(
    client: Client, track: Track, singer: User, done_render: Render
) -> None:
    client.force_login(singer)

    response = client.post(
        reverse("tracks:comment-create", kwargs={"pk": track.pk}),
        {"body": "Way past the end", "render_id": done_render.pk, "at_seconds": "9999"},
        **HTMX,
    )

    errors = response.content.decode().split('class="form-errors"', 1)[1].split("</div>")[0]
    assert "that moment is past the end of the render" in errors
    assert not Comment.objects.exists()


def test_revision_and_render_params_that_are_not_plain_numbers_are_ignored(
    client: Client, track: Track, singer: User
) -> None:
    # "²" passes str.isdigit() but int() refuses it: the page and the render form used to answer 500
    client.force_login(singer)

    for query in ("?revision=²", "?render=²"):
        response = client.get(_track_url(track) + query)
        assert response.status_code == 200, query

    response = client.post(
        reverse("tracks:render-create", kwargs={"pk": track.pk}),
        {"transpose": "0", "tempo": "100", "count_in": "0", "revision": "²"},
        **HTMX,
    )
    assert response.status_code == 200


def test_home_pages_through_many_tracks_and_keeps_the_search(client: Client, producer: User) -> None:
    # Given more tracks than fit one page, all matching "Song"
    TrackFactory.create_batch(30, producer=producer)

    first = client.get(reverse("tracks:home"), {"q": "song"}).content.decode()
    second = client.get(reverse("tracks:home"), {"q": "song", "page": "2"}).content.decode()

    # Then the first page shows 24, says how many there are, and links on with the search kept
    assert first.count('class="track-card"') == 24
    assert "30 tracks found; page 1 of 2." in first
    assert 'href="?q=song&amp;page=2">Next page</a>' in first
    assert "Previous page" not in first
    # And the second page shows the rest and links back
    assert second.count('class="track-card"') == 6
    assert 'href="?q=song&amp;page=1">Previous page</a>' in second
    # A page number that is no number, or too big, still answers with a page
    for page in ("x", "²", "99999999999999999999", "-1"):
        response = client.get(reverse("tracks:home"), {"page": page})
        assert response.status_code == 200
        assert 'class="track-card"' in response.content.decode()


def test_notifications_are_listed_counted_in_the_header_and_opened(
    client: Client, track: Track, singer: User, producer: User
) -> None:
    # Given a singer who commented on a producer's track, and another user's notification
    comment = comment_post(user=singer, track=track, body="Chorus needs more lift")
    comment_post(user=singer, track=track, body="And the outro is long")
    stranger_note = NotificationFactory(text="Not for the producer")
    client.force_login(producer)

    # When the producer looks at any page, the header counts the unread notifications
    home = client.get(reverse("tracks:home")).content.decode()
    assert re.search(
        r"Notifications <span class=\"badge-count\">2<span class=\"visually-hidden\"> unread", home
    )

    # And the notifications page lists them, newest first, each linking through to its comment
    page = client.get(reverse("tracks:notifications")).content.decode()
    assert page.index("And the outro is long") < page.index("Chorus needs more lift")
    assert "Not for the producer" not in page
    note = producer.notifications.order_by("created_at").first()
    assert note is not None
    opened = client.get(reverse("tracks:notification-open", args=[note.pk]))
    assert opened.status_code == 302
    assert opened["Location"].endswith(f"#comment-{comment.pk}")
    note.refresh_from_db()
    assert note.read
    assert 'badge-count">1<' in client.get(reverse("tracks:home")).content.decode()

    # And "Mark all as read" clears the badge
    response = client.post(reverse("tracks:notifications"), follow=True)
    assert "Marked 1 notification as read." in response.content.decode()
    assert "badge-count" not in client.get(reverse("tracks:home")).content.decode()

    # Someone else's notification, or one that does not exist, is missing
    assert client.get(reverse("tracks:notification-open", args=[stranger_note.pk])).status_code == 404
    assert client.get("/notifications/99999999999999999999/open/").status_code == 404
    stranger_note.refresh_from_db()
    assert not stranger_note.read


def test_notifications_need_a_login_and_never_redirect_off_site(client: Client, singer: User) -> None:
    assert client.get(reverse("tracks:notifications")).status_code == 302
    evil = NotificationFactory(recipient=singer, url="https://evil.example/phish")
    client.force_login(singer)
    response = client.get(reverse("tracks:notification-open", args=[evil.pk]))
    assert response["Location"] == reverse("tracks:notifications")
    empty = client.get(reverse("tracks:notifications")).content.decode()
    assert "Mark all as read" not in empty
