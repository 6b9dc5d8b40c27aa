"""Instant listening in real Chromium with a real worker: while a render plays, soloing a part is heard
at the same place in the song from a stream of the new render, and a new key plays from its stream
before that render is finished. Render then asks for nothing new, and Download gives that file.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urljoin, urlparse

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from playwright.sync_api import Browser, BrowserContext, Page, expect

from performers.services import user_register
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tracks import selectors
from tracks.demo import compose_song
from tracks.models import Render, RenderStatus
from tracks.services import render_request, track_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "plays-it-again-and-again-7"
RENDER_TIMEOUT_S = 120
# One MP3 frame at 44.1 kHz: the stream starts at the frame at or before the time asked.
FRAME_S = 1152 / 44100

# The share of a signal's energy in its sample-to-sample differences: near 0 for a bass line, far higher
# for a mix with drums (cymbals and hi-hats). Decodes the first bytes of an MP3 URL with Web Audio.
HIGH_ENERGY_SHARE_JS = """async (url) => {
  const response = await fetch(url, { credentials: "same-origin" });
  const reader = response.body.getReader();
  const chunks = [];
  let size = 0;
  while (size < 320000) {
    const part = await reader.read();
    if (part.done) break;
    chunks.push(part.value);
    size += part.value.length;
  }
  reader.cancel();
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) { bytes.set(chunk, at); at += chunk.length; }
  const context = new AudioContext();
  const audio = await context.decodeAudioData(bytes.buffer);
  const samples = audio.getChannelData(0);
  let total = 0, steps = 0;
  for (let i = 1; i < samples.length; i++) {
    total += samples[i] * samples[i];
    steps += (samples[i] - samples[i - 1]) ** 2;
  }
  context.close();
  return { share: steps / Math.max(total, 1e-12), rms: Math.sqrt(total / samples.length) };
}"""


@pytest.fixture
def autoplay_page(browser: Browser, live_server: Any) -> Iterator[Any]:
    """Pages of a Chromium that plays without a click; no JS error, nothing fetched from outside."""
    chromium = browser.browser_type.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"],
    )
    contexts: list[BrowserContext] = []
    problems: list[str] = []

    def make(*, width: int = 1280, height: int = 900) -> Page:
        context = chromium.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(20_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(f"JS error: {error}"))
        page.on(
            "console",
            lambda message: (
                problems.append(f"console error: {message.text}") if message.type == "error" else None
            ),
        )
        page.on(
            "request",
            lambda request: (
                problems.append(f"outside request: {request.url}")
                if not request.url.startswith((live_server.url, "data:", "blob:"))
                else None
            ),
        )
        return page

    yield make
    for context in contexts:
        context.close()
    chromium.close()
    assert not problems, "\n".join(problems)


def _signed_in(page: Page, base: str, user: Any) -> None:
    client = Client()
    client.force_login(user)
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": base}])


def _wait_done(render_id: int) -> Render:
    deadline = time.monotonic() + RENDER_TIMEOUT_S
    while time.monotonic() < deadline:
        render = Render.objects.get(pk=render_id)
        if render.status == RenderStatus.DONE:
            return render
        assert render.status != RenderStatus.FAILED, render.error
        time.sleep(0.2)
    raise AssertionError(f"render {render_id} did not finish")


def _playing(page: Page, beyond: float) -> None:
    """Wait until the page's player plays and the song is past ``beyond`` seconds."""
    page.wait_for_function(
        "(beyond) => { const p = window.Backtrack.currentPlayer();"
        " return p && !p.audio.paused && p.position() > beyond; }",
        arg=beyond,
    )


def test_a_solo_is_heard_in_place_and_a_new_key_plays_while_it_renders(
    live_server: Any, celery_worker: Any, autoplay_page: Any
) -> None:
    base = live_server.url
    producer = user_register(username="maker", password=PASSWORD, role="producer")
    # Four minutes: the new key's render (seconds of work) still runs when its first seconds play.
    upload = SimpleUploadedFile("long.mid", compose_song(style="pop", minutes=4, parts=4, seed=5))
    track = track_create(producer=producer, title="Long Night", genre="pop", midi=upload)
    revision = track.current_revision
    parts = revision.analysis["parts"]
    bass = next(p for p in parts if "bass" in str(p.get("role", "")).lower() or "Bass" in p["name"])
    singer = user_register(username="lee", password=PASSWORD, role="performer")
    first, _ = render_request(user=singer, revision=revision, settings={"transpose": 0, "tempo": 1.0})
    first = _wait_done(first.pk)

    page = autoplay_page()
    _signed_in(page, base, singer)
    posts: list[dict[str, Any]] = []
    streams: list[tuple[str, str | None]] = []
    page.on(
        "request",
        lambda r: (
            posts.append(r.post_data_json) if r.method == "POST" and r.url.endswith("/api/renders/") else None
        ),
    )
    page.on(
        "response",
        lambda r: streams.append((r.url, r.headers.get("x-stream-from"))) if "/stream/" in r.url else None,
    )
    page.goto(f"{base}/tracks/{track.pk}/?render={first.pk}")
    page.wait_for_function("() => window.Backtrack && window.Backtrack.currentPlayer()")

    # --- play with the keyboard, then solo the bass while it plays --------------------------------------
    page.locator(".waveform").focus()
    page.keyboard.press("Space")
    _playing(page, 2.0)
    page.get_by_label(f"Solo {bass['name']}", exact=True).check()
    page.wait_for_function(
        "(first) => { const s = window.Backtrack.lastSwap; const p = window.Backtrack.currentPlayer();"
        " return s && s.renderId !== first && !p.audio.paused && p.audio.currentTime > 0.3; }",
        arg=first.pk,
        timeout=30_000,
    )
    swap = page.evaluate("window.Backtrack.lastSwap")
    solo_render = Render.objects.get(pk=swap["renderId"])
    assert solo_render.mix[str(bass["index"])]["solo"] is True
    asked = posts[-1]
    assert asked["mix"][str(bass["index"])]["solo"] is True
    assert asked["listen_from"] > 2.0  # asked to start where the song was, not at the beginning
    assert swap["restart"] is False

    # The <audio> now playing is the new render's stream, opened where the song was ...
    stream_url = page.evaluate(f"fetch('/api/renders/{solo_render.pk}/').then(r => r.json())")["stream_url"]
    playing_src = page.evaluate("window.Backtrack.currentPlayer().audio.src")
    assert playing_src.startswith(urljoin(base, stream_url)), playing_src
    from_asked = float(parse_qs(urlparse(playing_src).query)["from"][0])
    assert from_asked == pytest.approx(swap["from"], abs=0.001)
    # (the same place, or further on when the stream was ready only after the song got there)
    assert from_asked >= asked["listen_from"] - 0.001
    # ... the server started at the frame at or before it, where the player put it (within half a frame)
    started = [float(header) for url, header in streams if url == playing_src and header is not None]
    assert started, streams
    assert from_asked - FRAME_S - 0.001 <= started[0] <= from_asked  # (the header has 3 decimals)
    assert swap["offset"] == pytest.approx(started[0], abs=FRAME_S / 2 + 0.001)
    # ... the waveform and readout go on with the song's time, and one <audio> is left.
    position = page.evaluate("window.Backtrack.currentPlayer().position()")
    assert position >= from_asked
    readout = page.locator("[data-time-readout]").inner_text()
    assert not readout.startswith("0:00"), readout
    assert page.locator("[data-player] audio").count() == 1
    expect(page.get_by_role("button", name="Pause", exact=True)).to_be_visible()

    # What it plays is the bass alone: almost none of the energy of the full mix's drums.
    full = page.evaluate(HIGH_ENERGY_SHARE_JS, f"/renders/{first.pk}/audio/")
    solo = page.evaluate(HIGH_ENERGY_SHARE_JS, playing_src)
    assert solo["rms"] > 0.01, solo
    assert solo["share"] < full["share"] / 3, (solo, full)

    # --- a new key plays from the start before its render is finished --------------------------------
    _wait_done(solo_render.pk)  # the one worker is free for it
    page.get_by_label("Key", exact=True).select_option("3")
    page.wait_for_function(
        "(solo) => { const s = window.Backtrack.lastSwap; const p = window.Backtrack.currentPlayer();"
        " return s && s.renderId !== solo && s.restart && !p.audio.paused && p.audio.currentTime > 0.2; }",
        arg=solo_render.pk,
        timeout=60_000,
    )
    new_key = Render.objects.get(pk=page.evaluate("window.Backtrack.lastSwap.renderId"))
    assert new_key.status != RenderStatus.DONE, "the new key played only once its render was done"
    assert new_key.transpose == 3
    assert new_key.mix[str(bass["index"])]["solo"] is True  # the mix carried over
    before = page.evaluate("window.Backtrack.currentPlayer().audio.currentTime")
    page.wait_for_function(
        "(before) => window.Backtrack.currentPlayer().audio.currentTime > before + 0.3", arg=before
    )
    assert "from=" not in page.evaluate("window.Backtrack.currentPlayer().audio.src")
    expect(page.locator("[data-live-announce]")).to_contain_text("Now playing:")
    expect(page.locator("[data-summary-key]")).to_have_text(selectors.render_key(render=new_key))

    # --- Render asks for what is heard: no new render, the page keeps playing ----------------------------
    renders_before = Render.objects.count()
    page.get_by_role("button", name="Render", exact=True).click()
    expect(page.locator("[data-live-announce]")).to_contain_text("Render asked for what you hear")
    assert not page.evaluate("window.Backtrack.currentPlayer().audio.paused")
    assert Render.objects.count() == renders_before
    assert f"render={new_key.pk}" in page.url
    _wait_done(new_key.pk)
    download = page.get_by_role("button", name="Download MP3")
    expect(download).to_be_enabled(timeout=10_000)
    action = download.locator("xpath=ancestor::form").get_attribute("action")
    assert action == f"/api/renders/{new_key.pk}/download/"

    # --- a phone-width page plays it too, without sideways scrolling ----------------------------------
    phone = autoplay_page(width=360, height=740)
    _signed_in(phone, base, singer)
    phone.goto(f"{base}/tracks/{track.pk}/?render={new_key.pk}")
    expect(phone.locator("[data-player]")).to_be_visible()
    # (the player's own controls; the sections' bands are another card's)
    overflowing = phone.evaluate(
        "() => Array.from(document.querySelectorAll('#listen, #listen *, #render-form, #render-form *'))"
        ".filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)"
        ".map(e => e.outerHTML.slice(0, 80))"
    )
    assert not overflowing, overflowing
    expect(phone.get_by_role("button", name="Download MP3")).to_be_visible()
