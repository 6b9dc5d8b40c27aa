"""A producer answering a performer's request sees that performer's private vocal range, while the
request is active, and nobody else does."""

from __future__ import annotations

import pytest

from performers.models import Profile
from performers.selectors import vocal_range_get
from tests.factories import PerformerFactory, ProducerFactory
from tracks.models import TrackRequest

pytestmark = pytest.mark.django_db


def test_the_producer_of_an_active_request_sees_the_private_range_until_it_is_finished():
    # given: a singer with a private range who asked a producer for a track
    singer = PerformerFactory()
    Profile.objects.filter(user=singer).update(vocal_low=55, vocal_high=72, share_vocal_range=False)
    producer, other = ProducerFactory(), ProducerFactory()
    found = TrackRequest.objects.create(performer=singer, producer=producer, title="T", brief="B")

    # then: that producer sees it, another producer does not
    assert vocal_range_get(viewer=producer, performer_id=singer.pk) == (55, 72)
    assert vocal_range_get(viewer=other, performer_id=singer.pk) is None

    # and once the request is declined, it is private again
    found.status = "declined"
    found.save()
    assert vocal_range_get(viewer=producer, performer_id=singer.pk) is None


def test_a_request_the_other_way_round_reveals_nothing():
    # the performer's range is not revealed to a user the performer never asked
    singer = PerformerFactory()
    Profile.objects.filter(user=singer).update(vocal_low=55, vocal_high=72, share_vocal_range=False)
    stranger = ProducerFactory()
    TrackRequest.objects.create(performer=PerformerFactory(), producer=stranger, title="T", brief="B")

    assert vocal_range_get(viewer=stranger, performer_id=singer.pk) is None
