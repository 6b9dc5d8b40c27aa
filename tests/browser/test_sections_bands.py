"""Section bands under the waveform in real Chromium with a real worker: each band spans the seconds its
section plays (its edges at that song time on the waveform), pressing one (mouse or keyboard) plays from
there, a phone-width page does not scroll sideways however many sections the song has, and a section
loop keeps looping after instant listening swapped the player's <audio> for a new mix.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from playwright.sync_api import Page, Request, expect

from performers.services import user_register
from tests.browser.conftest import SCREENSHOTS
from tests.browser.test_instant_listening import (  # noqa: F401 (autoplay_page is a fixture)
    PASSWORD,
    _playing,
    _signed_in,
    _wait_done,
    autoplay_page,
)
from tracks import selectors
from tracks.demo import compose_song
from tracks.services import render_request, revision_sections, track_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Band edges against the waveform: a pixel of rounding either side, and the band's own border.
EDGE_PX = 2.5
# Where a seek lands: the file seeks to the frame, the readout says it at once.
SEEK_S = 0.1

BANDS_JS = """() => {
  const wave = document.querySelector('.waveform').getBoundingClientRect();
  const p = window.Backtrack.currentPlayer();
  return {
    wave: { left: wave.left, width: wave.width },
    duration: p.duration(),
    bands: Array.from(document.querySelectorAll('.section-strip-band')).map((b) => {
      const box = b.getBoundingClientRect();
      return { left: box.left, right: box.right, width: box.width, text: b.textContent,
               title: b.title, name: b.getAttribute('aria-label') };
    }),
  };
}"""

# Counts the player's jumps backwards (the loop going back) and where each landed.
WATCH_JUMPS_JS = """() => {
  const state = { jumps: [], last: window.Backtrack.currentPlayer().position() };
  window.__loopWatch = state;
  setInterval(() => {
    const now = window.Backtrack.currentPlayer().position();
    if (now < state.last - 1) state.jumps.push(now);
    state.last = now;
  }, 50);
}"""


def test_bands_line_up_with_the_waveform_seek_fit_a_phone_and_loop_across_a_swap(
    live_server: Any,
    celery_worker: Any,
    autoplay_page: Any,  # noqa: F811 (the fixture imported above)
    screenshot: Any,
) -> None:
    base = live_server.url
    producer = user_register(username="maker", password=PASSWORD, role="producer")
    # Four minutes: many sections, more than fit side by side at phone width at any readable size.
    upload = SimpleUploadedFile("long.mid", compose_song(style="pop", minutes=4, parts=4, seed=5))
    track = track_create(producer=producer, title="Long Night", genre="pop", midi=upload)
    revision = track.current_revision
    sections = revision_sections(revision=revision)
    assert len(sections) >= 10, sections
    parts = revision.analysis["parts"]
    bass = next(p for p in parts if "bass" in str(p.get("role", "")).lower() or "Bass" in p["name"])
    singer = user_register(username="lee", password=PASSWORD, role="performer")
    first, _ = render_request(user=singer, revision=revision, settings={"transpose": 0, "tempo": 1.0})
    first = _wait_done(first.pk)

    page: Page = autoplay_page()
    _signed_in(page, base, singer)
    page.goto(f"{base}/tracks/{track.pk}/?render={first.pk}")
    strip = page.locator("[data-section-strip]")
    expect(strip.locator(".section-strip-band")).to_have_count(len(sections))

    # --- each band spans its section's seconds over the render's length, on the waveform's scale --------
    shown = page.evaluate(BANDS_JS)
    wave, duration = shown["wave"], shown["duration"]
    assert duration >= sections[-1]["end_s"] - 0.01  # (the render has its tail after the song)
    for section, band in zip(sections, shown["bands"], strict=True):
        left = wave["left"] + section["start_s"] / duration * wave["width"]
        right = wave["left"] + section["end_s"] / duration * wave["width"]
        assert abs(band["left"] - left) <= EDGE_PX, (section, band, left)
        assert abs(band["right"] - right) <= EDGE_PX, (section, band, right)
        assert section["name"] in band["title"]
        assert section["name"] in band["name"]
        # Readable: a label is the whole name when there is room for it.
        if band["width"] >= 90:
            assert band["text"] == section["name"], band

    screenshot(page, "sections-bands-desktop")

    # --- pressing a band plays from there: mouse, then keyboard -----------------------------------------
    position = "() => window.Backtrack.currentPlayer().position()"
    strip.locator(".section-strip-band").nth(3).click()
    page.wait_for_function(f"(at) => Math.abs(({position})() - at) < {SEEK_S}", arg=sections[3]["start_s"])
    strip.locator(".section-strip-band").nth(4).focus()
    page.keyboard.press("ArrowRight")  # one tab stop; arrows move between the bands
    page.keyboard.press("Enter")
    page.wait_for_function(f"(at) => Math.abs(({position})() - at) < {SEEK_S}", arg=sections[5]["start_s"])
    # The waveform above shows the same moment: its slider is where the band starts.
    slider = page.locator(".waveform").get_attribute("aria-valuenow")
    assert abs(int(slider or -1) - sections[5]["start_s"]) <= 0.51

    # --- a loop keeps looping after a live mix swap replaced the <audio> ---------------------------------
    # The shortest section after the first: the loop comes round quickly.
    index = min(range(1, len(sections)), key=lambda i: sections[i]["end_s"] - sections[i]["start_s"])
    looped = sections[index]
    loop_button = page.get_by_role("button", name=f"Loop {looped['name']}", exact=True)
    loop_button.click()
    expect(loop_button).to_have_attribute("aria-pressed", "true")
    _playing(page, looped["start_s"] + 0.3)
    original_audio = page.evaluate_handle("window.Backtrack.currentPlayer().audio")
    page.get_by_label(f"Solo {bass['name']}", exact=True).check()
    page.wait_for_function(
        "(first) => { const s = window.Backtrack.lastSwap; const p = window.Backtrack.currentPlayer();"
        " return s && s.renderId !== first && !p.audio.paused; }",
        arg=first.pk,
        timeout=30_000,
    )
    replaced = "(old) => window.Backtrack.currentPlayer().audio !== old && !old.isConnected"
    assert page.evaluate(replaced, original_audio)
    page.evaluate(WATCH_JUMPS_JS)
    length = looped["end_s"] - looped["start_s"]
    page.wait_for_function("() => window.__loopWatch.jumps.length > 0", timeout=(length + 20) * 1000)
    landed = page.evaluate("window.__loopWatch.jumps[0]")
    assert looped["start_s"] - 0.3 <= landed <= looped["start_s"] + 1.0, (landed, looped)
    expect(loop_button).to_have_attribute("aria-pressed", "true")
    _playing(page, looped["start_s"])  # and it plays on, from the loop's start
    assert page.evaluate(f"({position})()") < looped["end_s"]

    # --- an arrangement built while it plays is heard at once, and the bands follow it ----------------
    posts: list[dict[str, Any]] = []

    def remember(request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/api/renders/"):
            posts.append(request.post_data_json)

    page.on("request", remember)
    loop_button.click()  # off
    expect(loop_button).to_have_attribute("aria-pressed", "false")
    intro, chorus = sections[0], next(s for s in sections if s["name"].startswith("Chorus"))
    page.get_by_role("button", name=f"Add {intro['name']} (bars", exact=False).click()
    for _ in range(2):
        page.get_by_role("button", name=f"Add {chorus['name']} (bars", exact=False).click()
    solo_render = page.evaluate("window.Backtrack.lastSwap.renderId")
    page.get_by_role("button", name="Render this arrangement").click()
    expect(page.locator("[data-arrangement-status]")).to_contain_text("Your arrangement plays")
    assert posts[-1]["arrangement"] == [intro["name"], f"{chorus['name']} x2"], posts[-1]
    assert page.evaluate("window.__loopWatch !== undefined")  # the same document: no navigation
    page.wait_for_function(
        "(solo) => { const s = window.Backtrack.lastSwap; return s && s.renderId !== solo && s.restart; }",
        arg=solo_render,
        timeout=60_000,
    )
    expect(strip.locator(".section-strip-band")).to_have_count(3)
    arranged = page.evaluate(BANDS_JS)
    chorus_s = chorus["end_s"] - chorus["start_s"]
    edges = [0.0, intro["end_s"], intro["end_s"] + chorus_s, intro["end_s"] + 2 * chorus_s]
    scale = arranged["wave"]["width"] / arranged["duration"]
    for number, band in enumerate(arranged["bands"]):
        assert abs(band["left"] - (arranged["wave"]["left"] + edges[number] * scale)) <= EDGE_PX, band
        assert abs(band["right"] - (arranged["wave"]["left"] + edges[number + 1] * scale)) <= EDGE_PX, band

    # --- slower, with a count-in: the bands meet the bars where the server places them ------------------
    slow, _ = render_request(
        user=singer, revision=revision, settings={"transpose": 0, "tempo": 0.9, "count_in": 2}
    )
    slow = _wait_done(slow.pk)
    grid = selectors.render_bar_grid(render=slow)
    page.goto(f"{base}/tracks/{track.pk}/?render={slow.pk}")
    expect(strip.locator(".section-strip-band")).to_have_count(len(sections))
    shown = page.evaluate(BANDS_JS)
    scale = shown["wave"]["width"] / shown["duration"]
    assert grid[0] > 1.0  # the count-in comes first
    for section, band in zip(sections, shown["bands"], strict=True):
        left = shown["wave"]["left"] + grid[section["start_bar"] - 1] * scale
        assert abs(band["left"] - left) <= EDGE_PX, (section, band, left)

    # --- a phone: nothing sideways, narrow bands shortened or unlabelled (their names kept) -------------
    phone: Page = autoplay_page(width=360, height=740)
    _signed_in(phone, base, singer)
    phone.goto(f"{base}/tracks/{track.pk}/?render={first.pk}")
    expect(phone.locator(".section-strip-band")).to_have_count(len(sections))
    screenshot(phone, "sections-bands-phone")
    phone.locator("#listen").screenshot(path=str(SCREENSHOTS / "sections-bands-phone-player.png"))
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    overflowing = phone.evaluate(
        "() => Array.from(document.querySelectorAll('.section-strip-band, .section-band'))"
        ".filter(e => e.getBoundingClientRect().right > window.innerWidth + 1"
        " || e.scrollWidth > e.clientWidth + 1)"
        ".map(e => e.outerHTML.slice(0, 120))"
    )
    assert not overflowing, overflowing
    small = phone.evaluate(BANDS_JS)
    for section, band in zip(sections, small["bands"], strict=True):
        assert section["name"] in band["title"]
        assert section["name"] in band["name"]
        assert band["text"] in (section["name"], "") or len(band["text"]) < len(section["name"]), band
    # (a long song at phone width: some labels had to give way)
    assert any(band["text"] != s["name"] for s, band in zip(sections, small["bands"], strict=True))
