"""Sections of a revision, arranged renders through the API, comments on them, saved arrangements."""

from typing import Any, cast

import pytest

from tests.factories import PerformerFactory, RenderFactory, TrackFactory
from tracks import selectors, services
from tracks.models import Render, Revision, SavedArrangement, Track

pytestmark = pytest.mark.django_db


@pytest.fixture
def song(producer: Any) -> Track:
    """A one-minute demo song: Intro 1-4, Verse 1 5-12, Chorus 1 13-20, Verse 2 21-28, ..."""
    return cast(Track, TrackFactory(producer=producer, revision__minutes=1.0))


def names(sections: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    return [(s["name"], s["start_bar"], s["end_bar"]) for s in sections]


def test_the_analysis_gives_bars_and_sections_from_the_markers(song: Track) -> None:
    analysis = song.current_revision.analysis
    assert names(analysis["sections"])[:3] == [("Intro", 1, 4), ("Verse 1", 5, 12), ("Chorus 1", 13, 20)]
    assert analysis["sections"][-1]["end_bar"] == analysis["bars"]


def test_the_producer_corrects_the_sections(client_for: Any, producer: Any, song: Track) -> None:
    revision = song.current_revision
    bars = revision.analysis["bars"]
    # When the producer renames and moves the sections
    response = client_for(producer).put(
        f"/api/revisions/{revision.pk}/sections/",
        [
            {"name": "Count-off", "start_bar": 1},
            {"name": "Song", "start_bar": 3},
            {"name": "Tag", "start_bar": bars},
        ],
        format="json",
    )
    # Then the revision answers with them, tiling the song, and they are what arrangements name
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == revision.pk
    assert names(body["sections"]) == [("Count-off", 1, 2), ("Song", 3, bars - 1), ("Tag", bars, bars)]
    assert {s["source"] for s in body["sections"]} == {"producer"}
    revision.refresh_from_db()
    assert names(services.revision_sections(revision=revision))[0] == ("Count-off", 1, 2)
    # The analysis stays the default (a new revision starts from it)
    assert names(revision.analysis["sections"])[0] == ("Intro", 1, 4)


@pytest.mark.parametrize(
    ("sections", "reason"),
    [
        ([{"name": "A", "start_bar": 2}], "the first section must start at bar 1"),
        ([{"name": "A", "start_bar": 1}, {"name": "B", "start_bar": 1}], "start_bar must increase"),
        ([{"name": " ", "start_bar": 1}], "section 1 needs a name"),
        ([{"name": "A", "start_bar": 1}, {"name": "B", "start_bar": 999}], "starts at bar 999; the song has"),
        ([], "sections must be a non-empty list"),
    ],
)
def test_bad_sections_are_refused_and_nothing_changes(
    client_for: Any, producer: Any, song: Track, sections: list[dict[str, Any]], reason: str
) -> None:
    revision = song.current_revision
    response = client_for(producer).put(f"/api/revisions/{revision.pk}/sections/", sections, format="json")
    assert response.status_code == 400
    assert reason in response.json()["detail"]
    assert Revision.objects.get(pk=revision.pk).sections is None


def test_only_the_producer_corrects_sections(client_for: Any, performer: Any, song: Track) -> None:
    revision = song.current_revision
    response = client_for(performer).put(
        f"/api/revisions/{revision.pk}/sections/", [{"name": "Mine", "start_bar": 1}], format="json"
    )
    assert response.status_code == 403
    assert Revision.objects.get(pk=revision.pk).sections is None


def test_a_private_revisions_sections_are_not_found_by_others(client_for: Any, private_track: Track) -> None:
    revision = private_track.current_revision
    response = client_for(PerformerFactory()).put(
        f"/api/revisions/{revision.pk}/sections/", [{"name": "X", "start_bar": 1}], format="json"
    )
    assert response.status_code == 404


def test_an_arranged_render_is_queued(
    client_for: Any, performer: Any, song: Track, enqueued: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(performer).post(
            "/api/renders/",
            {"track": song.pk, "arrangement": ["intro", "Chorus 1 x2", "5-8"]},
            format="json",
        )
    assert response.status_code == 202, response.content
    assert response.json()["arrangement"] == ["intro", "Chorus 1 x2", "5-8"]
    render = Render.objects.get()
    assert render.settings["arrangement"] == ["intro", "Chorus 1 x2", "5-8"]
    assert enqueued == [render.pk]


@pytest.mark.parametrize(
    ("arrangement", "reason"),
    [
        (["Bridge 9"], "unknown section 'Bridge 9'; this song's sections are: Intro, Verse 1, Chorus 1"),
        (["24-17"], "bar range 24-17 is reversed"),
        (["1-999"], "bar range 1-999 is outside the song"),
        (["Intro"] * 65, "arrangement has 65 items; the limit is 64"),
        (["Intro x9"], "repeats must be 1 to 8"),
        (["Chorus 1 x8"] * 12, "the arranged song would last"),
    ],
)
def test_bad_arrangements_are_refused_and_nothing_is_queued(
    client_for: Any,
    performer: Any,
    song: Track,
    enqueued: list[int],
    arrangement: list[str],
    reason: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(performer).post(
            "/api/renders/", {"track": song.pk, "arrangement": arrangement, "tempo": 0.5}, format="json"
        )
    assert response.status_code == 400
    assert reason in response.json()["detail"]
    assert not Render.objects.exists()
    assert enqueued == []


def test_arrangements_name_the_producers_sections(
    client_for: Any, producer: Any, performer: Any, song: Track, enqueued: list[int]
) -> None:
    revision = song.current_revision
    services.revision_sections_update(
        user=producer,
        revision=revision,
        sections=[{"name": "Top", "start_bar": 1}, {"name": "Rest", "start_bar": 9}],
    )
    ok = client_for(performer).post(
        "/api/renders/", {"track": song.pk, "arrangement": ["Rest", "Top"]}, format="json"
    )
    gone = client_for(performer).post(
        "/api/renders/", {"track": song.pk, "arrangement": ["Intro"]}, format="json"
    )
    assert ok.status_code == 202
    assert gone.status_code == 400
    assert gone.json()["detail"] == "unknown section 'Intro'; this song's sections are: Top, Rest"


def test_a_comment_on_a_bar_shows_wherever_the_bar_plays(song: Track) -> None:
    # Given a comment pinned to bar 5 (the first bar of Verse 1) on the song as written
    analysis = song.current_revision.analysis
    bar_s = 4 * 60 / analysis["tempo_bpm"]
    comment = services.comment_post(user=PerformerFactory(), track=song, body="breathe", at_seconds=4 * bar_s)
    assert comment.at_bar == 5
    # When it is viewed on a render that plays Verse 1, the Intro, then Verse 1 again, at 0.8x
    render = RenderFactory(
        revision=song.current_revision,
        variant_settings={"arrangement": ["Verse 1", "Intro", "Verse 1"], "tempo": 0.8},
    )
    position = selectors.comment_position(comment=comment, render=render)
    # Then it is at both places the bar plays (the first is ``seconds``)
    first, second = 0.0, (8 + 4) * bar_s / 0.8
    assert position["all_seconds"] == [pytest.approx(first, abs=1e-3), pytest.approx(second, abs=1e-3)]
    assert position["seconds"] == pytest.approx(first, abs=1e-3)


def test_a_comment_made_on_an_arranged_render_is_stored_against_the_original_bar(song: Track) -> None:
    # Given a render that plays Chorus 1 (bars 13-20), then the Intro (bars 1-4)
    analysis = song.current_revision.analysis
    bar_s = 4 * 60 / analysis["tempo_bpm"]
    render = RenderFactory(
        revision=song.current_revision, variant_settings={"arrangement": ["Chorus 1", "Intro"]}
    )
    # When a comment is made 9.5 bars into that render (the second bar of the Intro, half-way)
    comment = services.comment_post(
        user=PerformerFactory(), track=song, body="here", render=render, at_seconds=9.5 * bar_s
    )
    # Then it is stored at bar 2 beat 3 of the song as written
    assert (comment.at_bar, comment.at_beat) == (2, pytest.approx(3.0, abs=1e-3))


def test_a_performer_saves_lists_replaces_and_deletes_named_arrangements(
    client_for: Any, performer: Any, song: Track
) -> None:
    client = client_for(performer)
    created = client.post(
        f"/api/tracks/{song.pk}/arrangements/",
        {"name": "Encore version", "items": ["Chorus 1 x2", "Outro"]},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["items"] == ["Chorus 1 x2", "Outro"]
    replaced = client.post(
        f"/api/tracks/{song.pk}/arrangements/", {"name": "Encore version", "items": ["Intro"]}, format="json"
    )
    assert replaced.status_code == 200
    # Another performer's list is their own
    client_for(PerformerFactory()).post(
        f"/api/tracks/{song.pk}/arrangements/", {"name": "Theirs", "items": ["Intro"]}, format="json"
    )
    listed = client.get(f"/api/tracks/{song.pk}/arrangements/").json()
    assert [(row["name"], row["items"]) for row in listed] == [("Encore version", ["Intro"])]
    theirs = SavedArrangement.objects.get(name="Theirs")
    assert client.delete(f"/api/arrangements/{theirs.pk}/").status_code == 404
    assert client.delete(f"/api/arrangements/{created.json()['id']}/").status_code == 204
    assert list(SavedArrangement.objects.values_list("name", flat=True)) == ["Theirs"]


def test_a_saved_arrangement_must_name_sections_of_the_track(
    client_for: Any, performer: Any, song: Track
) -> None:
    response = client_for(performer).post(
        f"/api/tracks/{song.pk}/arrangements/", {"name": "Bad", "items": ["Solo x2"]}, format="json"
    )
    assert response.status_code == 400
    assert "unknown section 'Solo'" in str(response.json())
    assert not SavedArrangement.objects.exists()


def test_changed_sections_retire_the_finished_arranged_renders(
    producer: Any, song: Track, django_capture_on_commit_callbacks: Any
) -> None:
    # Given a finished arranged render and a finished plain render of the revision
    revision = song.current_revision
    arranged = RenderFactory(revision=revision, variant_settings={"arrangement": ["Intro"]}, status="done")
    plain = RenderFactory(revision=revision, status="done")
    # When the producer moves the sections
    with django_capture_on_commit_callbacks(execute=True):
        services.revision_sections_update(
            user=producer,
            revision=revision,
            sections=[{"name": "Intro", "start_bar": 1}, {"name": "B", "start_bar": 3}],
        )
    # Then the arranged render (made from the old Intro) is gone; the plain one stays
    assert not Render.objects.filter(pk=arranged.pk).exists()
    assert Render.objects.filter(pk=plain.pk).exists()
