"""Dynamics per section through the API: validated against the revision's sections, shown on the render."""

from typing import Any

import pytest

from tracks.models import Render

pytestmark = pytest.mark.django_db


def _post(client: Any, track: Any, **settings: Any) -> Any:
    return client.post("/api/renders/", {"track": track.pk, **settings}, format="json")


def test_section_levels_make_a_render_that_shows_them(client_for, performer, track, enqueued) -> None:
    # given the track's only section is "A"
    assert [s["name"] for s in track.current_revision.analysis["sections"]] == ["A"]
    # when a performer asks for it 4 dB quieter (any case)
    response = _post(client_for(performer), track, dynamics={"a": -4})
    # then the render keeps the levels and says what it plays
    assert response.status_code == 202, response.content
    render = client_for(performer).get(f"/api/renders/{response.json()['id']}/").json()
    assert render["dynamics"] == {"a": -4.0}
    assert render["dynamics_played"] == {"method": "sections", "summary": "dynamics: a -4 dB"}
    # and the text form is the same render
    again = _post(client_for(performer), track, dynamics="a=-4")
    assert again.json()["id"] == response.json()["id"]


def test_levels_as_written_are_the_plain_render(client_for, performer, track, enqueued) -> None:
    plain = _post(client_for(performer), track).json()
    written = _post(client_for(performer), track, dynamics={"A": 0}).json()
    assert written["id"] == plain["id"]
    assert plain["dynamics"] == ""
    assert plain["dynamics_played"] is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"Chorus": 2}, "unknown section 'Chorus'; this song's sections are: A"),
        ({"A": -20}, "between -12 and +6"),
        ("louder", 'dynamics must be "build"'),
    ],
)
def test_bad_dynamics_are_400_naming_the_setting(
    client_for, performer, track, enqueued, value, reason
) -> None:
    response = _post(client_for(performer), track, dynamics=value)
    assert response.status_code == 400
    assert reason in str(response.json())
    assert not Render.objects.exists()


def test_build_says_what_it_chose(client_for, performer, track, enqueued) -> None:
    # when a performer asks for "build" on a song of one section
    response = _post(client_for(performer), track, dynamics="build")
    assert response.status_code == 202, response.content
    render = client_for(performer).get(f"/api/renders/{response.json()['id']}/").json()
    # then the render says it found nothing to shape, and why
    assert render["dynamics"] == "build"
    assert render["dynamics_played"]["method"] == "none"
    assert render["dynamics_played"]["summary"] == "dynamics build: nothing to shape (one section only)"
    assert render["dynamics_played"]["sections"] == [{"index": 0, "name": "A", "gain_db": 0.0}]


def test_a_suggestion_says_its_dynamics_in_words() -> None:
    from tracks.selectors import settings_summary

    assert settings_summary(settings={"dynamics": {"Verse": -4.0, "Chorus": 2.0}}) == (
        "dynamics Verse \u22124 dB, Chorus +2 dB"
    )
    assert settings_summary(settings={"dynamics": "build"}) == "dynamics build"
