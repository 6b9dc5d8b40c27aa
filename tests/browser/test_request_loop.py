"""The request loop in real Chromium: a singer orders a track, the producer accepts and delivers, the
singer asks for changes, the producer delivers again, the singer approves; each side sees the step."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.factories import DEFAULT_PASSWORD, PerformerFactory, ProducerFactory, RevisionFactory, TrackFactory
from tracks.models import Notification, TrackRequest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _log_in(page: Page, base: str, username: str) -> None:
    page.goto(base + "/")
    page.get_by_role("link", name="Log in", exact=True).first.click()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text(f"Signed in as {username}")).to_be_visible()


def test_request_accept_deliver_changes_deliver_approve(live_server: Any, new_page: Any) -> None:
    base = live_server.url
    producer = ProducerFactory(username="mara")
    singer_user = PerformerFactory(username="robin")
    track = TrackFactory(producer=producer, title="Harbour Lights")

    # the singer orders a track
    singer = new_page()
    _log_in(singer, base, "robin")
    singer.goto(base + "/requests/new/")
    singer.get_by_label("Producer").select_option(label=producer.display_name)
    singer.get_by_label("Title").fill("Harbour Lights, lower")
    singer.get_by_label("Brief").fill("Two semitones down, no flute.")
    singer.get_by_role("button", name="Send request").click()
    expect(singer.get_by_role("heading", name="Harbour Lights, lower", level=1)).to_be_visible()
    found = TrackRequest.objects.get()

    # the producer finds it waiting on them, accepts and delivers revision 1 of a track
    maker = new_page()
    _log_in(maker, base, "mara")
    maker.goto(base + "/requests/")
    waiting = maker.locator("section", has=maker.get_by_role("heading", name="Waiting on you"))
    waiting.get_by_role("link", name="Harbour Lights, lower").click()
    maker.get_by_role("button", name="Accept").click()
    expect(maker.get_by_text("Accepted")).to_be_visible()
    maker.get_by_label("Revision to deliver").select_option(str(track.current_revision.pk))
    maker.get_by_role("button", name="Deliver").click()
    expect(maker.get_by_text("Waiting on robin")).to_be_visible()

    # the singer asks for changes
    singer.reload()
    singer.get_by_label("What should change").fill("The bridge is too busy.")
    singer.get_by_role("button", name="Ask for changes").click()
    expect(singer.get_by_text("The bridge is too busy.")).to_be_visible()

    # the producer delivers revision 2 (the requested track is now that track)
    second = RevisionFactory(track=track, number=2, seed=4)
    maker.reload()
    maker.get_by_label("Revision to deliver").select_option(str(second.pk))
    maker.get_by_role("button", name="Deliver").click()
    expect(maker.get_by_role("link", name="revision 2")).to_be_visible()

    # the singer approves; the track page says so
    singer.reload()
    singer.get_by_role("button", name="Approve").click()
    expect(singer.get_by_text("This request is finished.")).to_be_visible()
    singer.goto(f"{base}/tracks/{track.pk}/?revision=2")
    expect(singer.get_by_text(re.compile(r"Approved by robin"))).to_be_visible()

    found.refresh_from_db()
    assert found.status == "approved"
    kinds = set(Notification.objects.values_list("kind", flat=True))
    assert kinds == {
        "request_new",
        "request_accepted",
        "request_delivered",
        "request_changes",
        "request_approved",
    }
    assert singer_user.notifications.filter(kind="request_delivered").count() == 2
