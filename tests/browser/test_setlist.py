"""A singer builds a two-song setlist in real Chromium, reorders it from the keyboard, exports it as a
ZIP (a real Celery worker renders the songs) and downloads it."""

from __future__ import annotations

import io
import re
import time
import zipfile
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.factories import DEFAULT_PASSWORD, PerformerFactory, TrackFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EXPORT_TIMEOUT_S = 180


def _log_in(page: Page, base: str, username: str) -> None:
    page.goto(base + "/")
    page.get_by_role("link", name="Log in", exact=True).first.click()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text(f"Signed in as {username}")).to_be_visible()


def test_build_reorder_export_and_download_a_setlist(
    live_server: Any, new_page: Any, celery_worker: Any
) -> None:
    base = live_server.url
    PerformerFactory(username="robin")
    TrackFactory(title="Harbour Lights")
    TrackFactory(title="Night Train", revision__seed=3)

    page = new_page()
    _log_in(page, base, "robin")
    page.goto(base + "/setlists/")
    page.get_by_label("Setlist name").fill("Friday gig")
    page.get_by_role("button", name="Create setlist").click()
    expect(page.get_by_role("heading", name="Friday gig", level=1)).to_be_visible()

    for title in ("Harbour Lights", "Night Train"):
        page.get_by_label("Song to add").select_option(label=title)
        page.get_by_label("Gap after it (seconds)").fill("2")
        page.get_by_role("button", name="Add song").click()
    songs = page.locator("ol.setlist-songs > li strong")
    expect(songs).to_have_text(["Harbour Lights", "Night Train"])
    expect(page.locator("[data-total-duration]")).to_have_text(re.compile(r"^\d+:\d\d$"))

    # reorder from the keyboard: focus "Move down" of the first song and press Enter
    page.get_by_role("button", name="Move down Harbour Lights").focus()
    page.keyboard.press("Enter")
    expect(songs).to_have_text(["Night Train", "Harbour Lights"])

    page.get_by_role("button", name="Export ZIP of MP3s").click()
    download_link = page.get_by_role("link", name="Download export")
    deadline = time.monotonic() + EXPORT_TIMEOUT_S
    while not download_link.count():
        assert time.monotonic() < deadline, "the export did not finish"
        expect(page.get_by_text("failed")).to_have_count(0)
        time.sleep(1)
        page.reload()
    with page.expect_download() as info:
        download_link.click()
    download = info.value
    assert download.suggested_filename == "Friday gig.zip"
    with open(download.path(), "rb") as handle:
        archive = zipfile.ZipFile(io.BytesIO(handle.read()))
    names = archive.namelist()
    assert names[0].startswith("01 Night Train (")
    assert names[1].startswith("02 Harbour Lights (")
    assert names[2] == "setlist.m3u8"
