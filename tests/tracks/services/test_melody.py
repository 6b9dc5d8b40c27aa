"""The producer corrects which part carries the tune; key suggestions follow the correction."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from tracks import selectors, services

pytestmark = pytest.mark.django_db


def _pitched_other_than(analysis, part):
    return next(p for p in analysis["parts"] if not p["is_drum"] and p["index"] != part)


def test_the_producer_names_another_part_and_suggestions_fit_it(track):
    # given: the analysis chose a melody part
    revision = track.current_revision
    detected = revision.analysis["melody_part"]
    other = _pitched_other_than(revision.analysis, detected)
    before = selectors.key_suggestions(track=track, vocal_low=55, vocal_high=72)

    # when
    services.revision_melody_set(user=track.producer, revision=revision, part=other["index"])

    # then: stored on the revision, roles follow, the detected choice is kept beside it
    revision.refresh_from_db()
    analysis = revision.analysis
    assert analysis["melody_part"] == other["index"]
    assert analysis["melody_source"] == "producer"
    assert analysis["melody_detected"]["part"] == detected
    roles = {p["index"]: p["role"] for p in analysis["parts"]}
    assert roles[other["index"]] == "lead"
    assert roles[detected] != "lead"
    # and the suggestions now fit the chosen part's notes
    after = selectors.key_suggestions(track=track, revision=revision, vocal_low=55, vocal_high=72)
    assert after["melody_part"] == other["index"]
    assert [s["melody_low"] for s in after["suggestions"]] != [s["melody_low"] for s in before["suggestions"]]


def test_no_melody_means_no_key_suggestions(track):
    services.revision_melody_set(user=track.producer, revision=track.current_revision, part=None)

    with pytest.raises(ValidationError, match="no melody part"):
        selectors.key_suggestions(track=track, vocal_low=55, vocal_high=72)


def test_only_the_producer_chooses_and_only_a_pitched_part(track, performer):
    revision = track.current_revision
    drums = next(p for p in revision.analysis["parts"] if p["is_drum"])

    with pytest.raises(PermissionDenied):
        services.revision_melody_set(user=performer, revision=revision, part=0)
    with pytest.raises(ValidationError, match="not a pitched part"):
        services.revision_melody_set(user=track.producer, revision=revision, part=drums["index"])
    with pytest.raises(ValidationError, match="not a pitched part"):
        services.revision_melody_set(user=track.producer, revision=revision, part=99)
    revision.refresh_from_db()
    assert "melody_source" not in revision.analysis


def test_the_api_and_the_page_save_the_choice(track, performer, client_for, client):
    revision = track.current_revision
    other = _pitched_other_than(revision.analysis, revision.analysis["melody_part"])

    refused = client_for(performer).put(
        f"/api/revisions/{revision.pk}/melody/", {"part": other["index"]}, format="json"
    )
    saved = client_for(track.producer).put(
        f"/api/revisions/{revision.pk}/melody/", {"part": other["index"]}, format="json"
    )

    assert refused.status_code == 403
    assert saved.status_code == 200
    assert saved.json()["analysis"]["melody_part"] == other["index"]

    client.force_login(track.producer)
    page = client.post(f"/revisions/{revision.pk}/melody/", {"part": "none"})
    assert page.status_code == 302
    revision.refresh_from_db()
    assert revision.analysis["melody_part"] is None
