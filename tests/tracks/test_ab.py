"""A/B switching keeps the musical position (bar and beat) across tempi, count-ins and revisions."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.factories import RenderFactory
from tests.tracks.api.test_review_api import _revision_of
from tests.tracks.engine.test_diff import _song
from tracks import selectors
from tracks.engine import Timeline
from tracks.models import RenderStatus

pytestmark = pytest.mark.django_db

AB_JS = Path(__file__).resolve().parents[2] / "static" / "js" / "ab.js"


def test_the_same_bar_and_beat_in_a_slower_render_with_a_count_in(track):
    # given: the original render and one at 0.8x with a two-bar count-in
    revision = track.current_revision
    original = RenderFactory(revision=revision)
    slower = RenderFactory(revision=revision, variant_settings={"tempo": 0.8, "count_in": 2})
    timeline = Timeline.from_analysis(revision.analysis)
    grid_a = selectors.render_bar_grid(render=original)
    grid_b = selectors.render_bar_grid(render=slower)

    # when: switching at bar 5, beat 3
    moment = timeline.seconds_at(5, 3.0)
    mapped = selectors.ab_seconds(grid_from=grid_a, grid_to=grid_b, seconds=moment)

    # then: the slower render is at bar 5, beat 3 too
    assert mapped == pytest.approx(timeline.seconds_at(5, 3.0, tempo_ratio=0.8, count_in_bars=2), abs=1e-3)
    assert timeline.position_at(mapped, tempo_ratio=0.8, count_in_bars=2) == (5, pytest.approx(3.0, abs=1e-3))
    # and the start of the music maps to the end of the count-in
    assert selectors.ab_seconds(grid_from=grid_a, grid_to=grid_b, seconds=0.0) == pytest.approx(grid_b[0])


def test_two_revisions_at_different_tempi_map_bar_to_bar(track):
    # given: revision 2 at 100 bpm and revision 3 at 80 bpm, rendered with the same settings
    before = RenderFactory(revision=_revision_of(track, 2, _song(bpm=100)))
    after = RenderFactory(revision=_revision_of(track, 3, _song(bpm=80)))
    late = Timeline.from_analysis(after.revision.analysis)
    moment = Timeline.from_analysis(before.revision.analysis).seconds_at(9, 2.0)

    mapped = selectors.ab_seconds(
        grid_from=selectors.render_bar_grid(render=before),
        grid_to=selectors.render_bar_grid(render=after),
        seconds=moment,
    )

    assert mapped == pytest.approx(moment * 100 / 80, abs=1e-3)
    assert late.position_at(mapped) == (9, pytest.approx(2.0, abs=1e-3))


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run static/js/ab.js")
def test_the_browser_maps_positions_exactly_as_the_server(track):
    revision = track.current_revision
    grid_a = selectors.render_bar_grid(render=RenderFactory(revision=revision))
    grid_b = selectors.render_bar_grid(
        render=RenderFactory(revision=revision, variant_settings={"tempo": 1.3})
    )
    moments = [-0.5, 0.0, 1.234, grid_a[3] + 0.01, grid_a[-1] + 5.0]
    script = (
        "var window = {}; var document = {addEventListener: function () {}};\n"
        + AB_JS.read_text()
        + f"\nvar a = {json.dumps(grid_a)}, b = {json.dumps(grid_b)};"
        + f"\nconsole.log(JSON.stringify({json.dumps(moments)}.map(function (t) {{"
        + " return window.backtrackAbSeconds(a, b, t); })));"
    )

    output = subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True, timeout=30)

    expected = [selectors.ab_seconds(grid_from=grid_a, grid_to=grid_b, seconds=t) for t in moments]
    assert json.loads(output.stdout) == pytest.approx(expected, abs=1e-9)


def test_the_track_page_offers_a_b_between_same_settings_renders_of_two_revisions(client, track):
    second = _revision_of(track, 2, _song(bpm=100))
    third = _revision_of(track, 3, _song(bpm=80))
    track.current_revision = third
    track.save()
    for revision in (second, third):
        RenderFactory(
            revision=revision, variant_settings={"transpose": 2}, status=RenderStatus.DONE, audio="r/x.mp3"
        )

    page = client.get(f"/tracks/{track.pk}/").content.decode()

    assert "A/B: revision 2 and 3" in page
    assert page.count("data-grid=") == 2
    assert "js/ab.js" in page
