"""The product end to end in real Chromium, with a real Celery worker rendering real MP3s.

A singer signs up, sets a vocal range, opens a demo track, takes the suggested key, mutes the melody,
renders, hears the player load the MP3, downloads it, and comments at a moment. The producer replies,
uploads revision 2 and resolves the comment.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from playwright.sync_api import Page, expect

from performers.services import profile_update, user_register
from tracks.demo import compose_song
from tracks.management.commands.seed_demo import DEMO_PASSWORD
from tracks.models import Comment, Render, RenderStatus, Track
from tracks.services import track_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SINGER = "robin"
SINGER_PASSWORD = "sings-in-the-shower-42"
DEMO_TITLE = "Night Drive"
RENDER_TIMEOUT_MS = 120_000


def _log_in(page: Page, base: str, username: str, password: str) -> None:
    page.goto(base + "/")
    page.get_by_role("link", name="Log in", exact=True).first.click()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text(f"Signed in as {username}")).to_be_visible()


def _assert_playable_mp3(path: Path) -> float:
    data = path.read_bytes()
    assert data[:3] == b"ID3" or (data[0] == 0xFF and data[1] & 0xE0 == 0xE0), data[:8]
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=format_name,duration", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    fmt = json.loads(probe.stdout)["format"]
    assert fmt["format_name"] == "mp3"
    return float(fmt["duration"])


def test_singer_and_producer_work_a_track_through(
    live_server: Any, celery_worker: Any, new_page: Any, screenshot: Any, tmp_path: Path
) -> None:
    base = live_server.url
    call_command("seed_demo", verbosity=0)
    track = Track.objects.get(title=DEMO_TITLE)
    analysis = track.current_revision.analysis
    melody = next(p for p in analysis["parts"] if p["index"] == analysis["melody_part"])

    # --- the singer signs up and sets a vocal range ---------------------------------------------------
    singer = new_page()
    singer.goto(base + "/")
    screenshot(singer, "home-visitor")
    singer.get_by_role("link", name="Sign up", exact=True).first.click()
    singer.get_by_label("Username").fill(SINGER)
    singer.get_by_label("Password").fill(SINGER_PASSWORD)
    singer.get_by_label("Performer").check()
    singer.get_by_role("button", name="Sign up").click()
    expect(singer.get_by_role("heading", name="Your profile")).to_be_visible()

    singer.get_by_label("Lowest comfortable note").select_option("G3")
    singer.get_by_label("Highest comfortable note").select_option("C5")
    expect(singer.locator("#range-summary")).to_contain_text("G3 to C5")
    singer.get_by_role("button", name="Hear lowest note").click()
    singer.get_by_label("Pop").check()
    singer.get_by_label("Bio").fill("Alto, loves <b>soul</b> & pop.")
    singer.get_by_role("button", name="Save profile").click()
    expect(singer.get_by_text("Profile saved.")).to_be_visible()
    expect(singer.get_by_label("Lowest comfortable note")).to_have_value("G3")
    expect(singer.get_by_label("Bio")).to_have_value("Alto, loves <b>soul</b> & pop.")

    # --- opens a demo track and takes the suggested key ------------------------------------------------
    singer.get_by_role("link", name="Tracks").click()
    card = singer.locator(".track-card", has=singer.get_by_role("link", name=DEMO_TITLE))
    expect(card).to_contain_text(f"Key {analysis['key']}")
    screenshot(singer, "home")
    singer.get_by_role("link", name=DEMO_TITLE).click()
    expect(singer.get_by_role("heading", name=DEMO_TITLE, level=1)).to_be_visible()

    use_best = singer.locator(".best-key button[data-set-key]")
    best_transpose = use_best.get_attribute("data-set-key")
    use_best.click()
    key_select = singer.get_by_label("Key", exact=True)
    expect(key_select).to_have_value(best_transpose)
    expect(key_select.locator("option:checked")).to_contain_text("best for your range")

    # --- mutes the melody and renders; the status updates without a reload ---------------------------
    melody_row = singer.locator("#render-form tr.is-melody")
    expect(melody_row).to_contain_text("Melody")
    singer.get_by_label(f"Mute {melody['name']}", exact=True).check()
    expect(singer.get_by_label("Tempo", exact=True)).to_have_value(re.compile(r"^\d+(\.\d)?$"))
    singer.evaluate("window.__sameDocument = true")
    singer.get_by_role("button", name="Render", exact=True).click()
    expect(singer.locator("#render-panel")).to_contain_text(re.compile("Queued|Rendering|Ready"))
    player = singer.locator("[data-player]")
    expect(player).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    assert singer.evaluate("window.__sameDocument === true"), "the page reloaded instead of updating"
    render = Render.objects.get(revision=track.current_revision, status=RenderStatus.DONE)
    assert render.transpose == int(best_transpose)
    assert render.mix[str(melody["index"])]["mute"] is True

    # --- the player loads the MP3 and draws the waveform ----------------------------------------------
    singer.wait_for_function(
        "() => { const a = document.querySelector('[data-player] audio');"
        " return a && a.readyState >= 1 && a.duration > 0; }",
        timeout=30_000,
    )
    duration = singer.evaluate("document.querySelector('[data-player] audio').duration")
    assert duration == pytest.approx(render.duration_s, abs=1.0)
    painted = singer.evaluate(
        "() => { const c = document.querySelector('.waveform canvas');"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let lit = 0; for (let i = 3; i < d.length; i += 4) { if (d[i] > 0) lit++; } return lit; }"
    )
    assert painted > 500, "the waveform was not drawn"

    # --- downloads the MP3 ------------------------------------------------------------------------------
    with singer.expect_download() as download_info:
        singer.get_by_role("button", name="Download MP3").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".mp3")
    assert DEMO_TITLE in download.suggested_filename
    saved = tmp_path / "download.mp3"
    download.save_as(saved)
    assert _assert_playable_mp3(saved) == pytest.approx(render.duration_s, abs=1.0)

    # --- seeks by clicking the waveform and comments at that moment --------------------------------------
    box = singer.locator(".waveform").bounding_box()
    singer.mouse.click(box["x"] + box["width"] * 0.4, box["y"] + box["height"] / 2)
    singer.wait_for_function(
        f"() => Math.abs(document.querySelector('[data-player] audio').currentTime - {duration * 0.4}) < 1.5"
    )
    singer.get_by_role("button", name="Comment at current moment").click()
    expect(singer.locator("[data-moment-label]")).to_contain_text("Pinned at")
    comment_box = singer.get_by_label("Comment", exact=True)
    expect(comment_box).to_be_focused()
    comment_box.fill("Second chorus: the <brass> covers my low notes here.")
    singer.get_by_role("button", name="Post comment").click()
    posted = singer.locator(".comment", has_text="covers my low notes")
    expect(posted).to_be_visible()
    expect(posted).to_contain_text("Second chorus: the <brass> covers my low notes here.")
    seek_button = posted.locator("button.seek-time")
    expect(seek_button).to_have_text(re.compile(r"^at \d+:\d\d$"))
    expect(singer.locator(".waveform-marker")).to_have_count(1)
    comment = Comment.objects.get(body__startswith="Second chorus")
    assert comment.render_id == render.pk
    assert comment.at_bar is not None
    pinned_at = float(seek_button.get_attribute("data-seek"))
    assert pinned_at == pytest.approx(duration * 0.4, abs=1.5)

    singer.evaluate("document.querySelector('[data-player] audio').currentTime = 1")
    seek_button.click()
    singer.wait_for_function(
        f"() => Math.abs(document.querySelector('[data-player] audio').currentTime - {pinned_at}) < 1.0"
    )
    singer.evaluate("document.querySelector('[data-player] audio').pause()")
    screenshot(singer, "track-page")

    phone = new_page(width=390, height=844)
    phone.context.add_cookies(singer.context.cookies())
    phone.goto(f"{base}/tracks/{track.pk}/?render={render.pk}")
    expect(phone.locator("[data-player]")).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), "sideways scroll"
    screenshot(phone, "track-page-phone")

    singer.goto(base + "/profile/")
    expect(singer.get_by_role("cell", name=DEMO_TITLE)).to_be_visible()
    screenshot(singer, "profile")

    # --- the producer replies from the inbox -------------------------------------------------------------
    producer = new_page()
    _log_in(producer, base, "producer", DEMO_PASSWORD)
    # The header says there is news; the notification quotes the comment and opens it in its thread
    notifications_link = producer.get_by_role("link", name=re.compile(r"^Notifications \d+ unread$"))
    expect(notifications_link).to_be_visible()
    notifications_link.click()
    news = producer.get_by_role("link", name=re.compile(r"commented on .*covers my low notes"))
    expect(news).to_be_visible()
    screenshot(producer, "notifications")
    news.click()
    expect(producer.locator(f"#comment-{comment.pk}")).to_contain_text("covers my low notes")
    producer.get_by_role("link", name="Inbox").click()
    expect(producer.get_by_text("covers my low notes")).to_be_visible()
    screenshot(producer, "inbox")
    producer.locator(f"#comment-{comment.pk}").get_by_role("link", name="Open thread").click()
    thread_item = producer.locator(f"#comment-{comment.pk}")
    thread_item.get_by_text("Reply", exact=True).click()
    thread_item.get_by_label(f"Reply to {SINGER}").fill("Brass down 3 dB in the next revision.")
    thread_item.get_by_role("button", name="Post reply").click()
    expect(producer.locator(f"#comment-{comment.pk} .replies")).to_contain_text("Brass down 3 dB")

    # --- uploads revision 2 ----------------------------------------------------------------------------
    producer.get_by_role("link", name="Upload a new revision").click()
    revision_file = tmp_path / "night-drive-v2.mid"
    revision_file.write_bytes(compose_song(style="pop", minutes=1.5, seed=3))
    producer.get_by_label("MIDI file").set_input_files(str(revision_file))
    producer.get_by_label("What changed").fill("Shorter; brass softer in the second chorus.")
    screenshot(producer, "revision-upload")
    producer.get_by_role("button", name="Upload revision").click()
    expect(producer.get_by_text("Revision 2 is up.")).to_be_visible()
    expect(producer.get_by_role("heading", name="What changed since revision 1")).to_be_visible()
    expect(producer.locator(".changes")).to_contain_text("Length:")

    # --- resolves the comment ---------------------------------------------------------------------------
    producer.locator(f"#comment-{comment.pk}").get_by_role(
        "button", name=re.compile("^Resolve thread")
    ).click()
    expect(producer.locator(f"#comment-{comment.pk} > .comment-head")).to_contain_text("Resolved")
    comment.refresh_from_db()
    assert comment.resolved
    producer.get_by_role("link", name=re.compile(r"^Resolved \(1\)")).click()
    expect(producer.get_by_text("covers my low notes")).to_be_visible()

    # --- a bad file is refused with the engine's reason next to the file field ---------------------------
    producer.get_by_role("link", name="Upload", exact=True).click()
    screenshot(producer, "upload")
    producer.get_by_label("Title").fill("Not a song")
    producer.get_by_label("Genre").select_option("rock")
    bad_file = tmp_path / "notes.mid"
    bad_file.write_bytes(b"these are my lyrics, not a MIDI file")
    producer.get_by_label("MIDI file").set_input_files(str(bad_file))
    producer.get_by_role("button", name="Upload track").click()
    midi_field = producer.locator(".field.has-error", has=producer.get_by_label("MIDI file"))
    expect(midi_field.locator(".errorlist")).to_contain_text("MIDI")
    expect(producer.get_by_label("Title")).to_have_value("Not a song")
    assert not Track.objects.filter(title="Not a song").exists()
    screenshot(producer, "upload-error")


def _tab_to(page: Page, predicate: str, limit: int = 80) -> None:
    """Press Tab until ``predicate`` (JS on document.activeElement, named ``el``) holds."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(() => {{ const el = document.activeElement; return {predicate}; }})()"):
            return
    raise AssertionError(f"never reached {predicate} with the Tab key")


def test_keyboard_only_log_in_and_variant_controls(live_server: Any, new_page: Any) -> None:
    producer = user_register(username="maker", password=SINGER_PASSWORD, role="producer")
    upload = SimpleUploadedFile("k.mid", compose_song(style="pop", minutes=0.3, parts=4, seed=7))
    track = track_create(producer=producer, title="Keys Only", genre="pop", midi=upload)
    kim = user_register(username="kim", password=SINGER_PASSWORD, role="performer")
    profile_update(user=kim, vocal_low="A3", vocal_high="D5")
    analysis = track.current_revision.analysis
    melody = next(p for p in analysis["parts"] if p["index"] == analysis["melody_part"])
    page = new_page()
    page.goto(live_server.url + "/")

    # The first Tab lands on the skip link, and the focus is visible.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to content"
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"

    _tab_to(page, "el.textContent.trim() === 'Log in'")
    page.keyboard.press("Enter")
    page.wait_for_url("**/login/")
    assert page.evaluate("document.activeElement.id") == "id_username"
    page.keyboard.type("kim")
    page.keyboard.press("Tab")
    page.keyboard.type(SINGER_PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_text("Signed in as kim")).to_be_visible()

    page.goto(f"{live_server.url}/tracks/{track.pk}/")
    _tab_to(page, "el.matches('.best-key button')")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    best = page.evaluate("document.activeElement.dataset.setKey")
    page.keyboard.press("Enter")
    expect(page.get_by_label("Key", exact=True)).to_have_value(best)
    expect(page.get_by_label("Key", exact=True)).to_be_focused()
    _tab_to(page, f"el.id === 'id_mute_{melody['index']}'")
    page.keyboard.press("Space")
    expect(page.get_by_label(f"Mute {melody['name']}", exact=True)).to_be_checked()
    _tab_to(page, "el.tagName === 'BUTTON' && el.textContent.trim() === 'Render'")
