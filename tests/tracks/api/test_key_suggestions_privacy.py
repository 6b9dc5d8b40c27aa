"""A vocal range is private unless its performer shares it: ``?performer=ID`` must not leak it,
nor tell a private range from a missing account or a range that is not set."""

from __future__ import annotations

import pytest

from tests.factories import PerformerFactory, ProducerFactory

pytestmark = pytest.mark.django_db


def _singer(*, low: int = 55, high: int = 76, shares: bool = False):
    singer = PerformerFactory()
    singer.profile.vocal_low, singer.profile.vocal_high = low, high
    singer.profile.share_vocal_range = shares
    singer.profile.save()
    return singer


def _suggestions_for(client, track, performer_id):
    return client.get(f"/api/tracks/{track.pk}/key-suggestions/?performer={performer_id}")


@pytest.mark.parametrize("viewer", ["anonymous", "another user"])
def test_a_private_range_a_range_not_set_and_a_missing_performer_answer_alike(
    viewer, api_client, client_for, track
):
    # given: a singer with a private range, a singer with no range, and an id nobody has
    private = _singer()
    no_range = PerformerFactory()
    missing_id = max(private.pk, no_range.pk) + 1000
    client = api_client if viewer == "anonymous" else client_for(ProducerFactory())

    # when
    answers = [_suggestions_for(client, track, pk) for pk in (private.pk, no_range.pk, missing_id)]

    # then: one status and one body for all three, and nothing derived from the private range
    assert {response.status_code for response in answers} == {404}
    bodies = [response.json() for response in answers]
    assert (
        bodies[0]
        == bodies[1]
        == bodies[2]
        == {"detail": "no such performer, or their vocal range is private"}
    )
    assert b"G3" not in answers[0].content
    assert b"suggestions" not in answers[0].content


def test_a_shared_range_gives_others_suggestions_for_it(client_for, track):
    singer = _singer(low=55, high=76, shares=True)

    response = _suggestions_for(client_for(ProducerFactory()), track, singer.pk)

    assert response.status_code == 200
    body = response.json()
    assert (body["vocal_low"], body["vocal_high"]) == ("G3", "E5")
    assert body["suggestions"]


def test_a_shared_range_is_not_shown_to_anonymous_visitors(api_client, track):
    singer = _singer(shares=True)

    response = _suggestions_for(api_client, track, singer.pk)

    assert response.status_code == 404
    assert response.json() == {"detail": "no such performer, or their vocal range is private"}


def test_the_owner_sees_their_own_private_range(client_for, track):
    singer = _singer(low=55, high=76)

    by_id = _suggestions_for(client_for(singer), track, singer.pk)
    by_default = client_for(singer).get(f"/api/tracks/{track.pk}/key-suggestions/")

    assert by_id.status_code == by_default.status_code == 200
    assert by_id.json()["vocal_low"] == by_default.json()["vocal_low"] == "G3"
