"""Sound settings through the API: sound sets, a track's default sound, presets, space for the voice."""

from typing import Any

import pytest
from django.core.checks import run_checks

from performers.models import Profile
from tests.factories import PerformerFactory
from tracks.models import Render

pytestmark = pytest.mark.django_db

TIMGM = "/usr/share/sounds/sf2/TimGM6mb.sf2"
SETS = {
    "timgm6mb": {"name": "TimGM6mb", "description": "small", "path": TIMGM},
    "other": {"name": "Other", "description": "another copy", "path": TIMGM},
}


@pytest.fixture
def sound_sets(settings: Any) -> dict[str, Any]:
    settings.SOUND_SETS = SETS
    settings.SOUND_DEFAULT = "timgm6mb"
    return SETS


def test_sounds_lists_the_installed_sets_with_one_default(api_client, sound_sets) -> None:
    # when anyone asks which sounds there are
    response = api_client.get("/api/sounds/")
    # then each set has its slug, name and description, and the default comes first
    assert response.status_code == 200
    body = response.json()
    assert [entry["slug"] for entry in body] == ["timgm6mb", "other"]
    assert [entry["default"] for entry in body] == [True, False]
    assert set(body[0]) == {"slug", "name", "description", "default"}


def test_an_unknown_sound_is_400_naming_it_and_creates_no_render(
    client_for, performer, track, sound_sets, enqueued
):
    # when a performer asks for a sound set that is not installed
    response = client_for(performer).post(
        "/api/renders/", {"track": track.pk, "sound": "grand"}, format="json"
    )
    # then
    assert response.status_code == 400
    assert "grand" in str(response.json())
    assert "not installed" in str(response.json())
    assert not Render.objects.exists()


def test_the_producer_sets_a_default_sound_that_renders_use(
    client_for, producer, performer, track, sound_sets, enqueued
) -> None:
    # given the producer picks the track's default sound
    response = client_for(producer).patch(
        f"/api/tracks/{track.pk}/", {"default_sound": "other"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["default_sound"] == "other"
    # when a performer asks for a render naming no sound
    render = client_for(performer).post("/api/renders/", {"track": track.pk}, format="json").json()
    # then it uses the track's default, and says so
    assert render["sound"] == "other"
    # and naming another sound gives another render
    mine = client_for(performer).post(
        "/api/renders/", {"track": track.pk, "sound": "timgm6mb"}, format="json"
    )
    assert mine.json()["sound"] == "timgm6mb"
    assert mine.json()["id"] != render["id"]


def test_an_unknown_default_sound_is_400_and_leaves_the_track_alone(
    client_for, producer, track, sound_sets
) -> None:
    response = client_for(producer).patch(
        f"/api/tracks/{track.pk}/", {"default_sound": "grand"}, format="json"
    )
    assert response.status_code == 400
    assert "grand" in str(response.json())
    track.refresh_from_db()
    assert track.default_sound == ""


def test_a_performer_cannot_set_the_default_sound(client_for, performer, track, sound_sets) -> None:
    response = client_for(performer).patch(
        f"/api/tracks/{track.pk}/", {"default_sound": "other"}, format="json"
    )
    assert response.status_code in (403, 404)
    track.refresh_from_db()
    assert track.default_sound == ""


def test_a_preset_render_shows_its_effective_mix(client_for, performer, track, enqueued) -> None:
    # given a track whose parts include a drum kit (the factory's song)
    parts = track.current_revision.parts
    drums = [str(part["index"]) for part in parts if part["is_drum"]]
    assert drums
    # when a performer asks for the unplugged preset, with one part's fader of their own
    own = next(str(part["index"]) for part in parts if not part["is_drum"] and part["role"] != "lead")
    response = client_for(performer).post(
        "/api/renders/",
        {"track": track.pk, "preset": "unplugged", "mix": {own: {"gain_db": -3}}},
        format="json",
    )
    # then the render names the preset and the mix it plays: drums out, their own fader kept
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["preset"] == "unplugged"
    for index in drums:
        assert body["effective_mix"][index]["mute"] is True
    assert body["effective_mix"][own]["gain_db"] == -3.0


def test_a_bad_preset_or_space_is_400_naming_it(client_for, performer, track, enqueued) -> None:
    for data, name in (({"preset": "stadium"}, "preset"), ({"space_for_voice": 13}, "space_for_voice")):
        response = client_for(performer).post("/api/renders/", {"track": track.pk, **data}, format="json")
        assert response.status_code == 400
        assert name in str(response.json())
    assert not Render.objects.exists()


def test_space_for_the_voice_uses_the_performers_vocal_range(client_for, track, enqueued) -> None:
    # given a performer whose profile has a vocal range
    performer = PerformerFactory()
    Profile.objects.update_or_create(user=performer, defaults={"vocal_low": 55, "vocal_high": 74})
    # when they ask for space for their voice
    response = client_for(performer).post(
        "/api/renders/", {"track": track.pk, "space_for_voice": 6}, format="json"
    )
    # then the render is made for their range
    assert response.status_code == 202, response.content
    assert response.json()["space_for_voice"] == 6.0
    assert Render.objects.get().settings["voice_range"] == [55, 74]


def test_a_missing_sound_set_fails_the_system_check(settings) -> None:
    # given a configured sound set whose file is gone
    settings.SOUND_SETS = {"gone": {"name": "Gone", "description": "", "path": "/nonexistent/Gone.sf2"}}
    # then the system check says so (the render would never get that far)
    errors = [message for message in run_checks(tags=["backtrack"]) if message.id == "backtrack.E010"]
    assert len(errors) == 1
    assert "gone" in errors[0].msg
