from typing import cast

import pytest
from django.db import IntegrityError, transaction

from performers.models import Profile, User
from tests.factories import CommentFactory, PerformerFactory, RenderFactory, RevisionFactory, TrackFactory
from tracks.models import Comment, Render

pytestmark = pytest.mark.django_db


def test_revision_numbers_are_unique_per_track():
    track = TrackFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        RevisionFactory(track=track, number=1)


def test_identical_settings_on_one_revision_exist_once():
    render = RenderFactory(variant_settings={"transpose": 2})
    with pytest.raises(IntegrityError), transaction.atomic():
        RenderFactory(revision=render.revision, variant_settings={"transpose": 2})
    assert Render.objects.count() == 1


def test_the_same_settings_on_another_revision_are_another_render():
    render = RenderFactory(variant_settings={"transpose": 2})
    other = RevisionFactory(track=render.revision.track, number=2)
    RenderFactory(revision=other, variant_settings={"transpose": 2})
    assert Render.objects.count() == 2


def test_render_settings_properties_read_the_normalised_settings():
    render = RenderFactory(variant_settings={"transpose": -3, "tempo": 0.8, "click": True, "count_in": 2})
    assert (render.transpose, render.tempo, render.click, render.count_in) == (-3, 0.8, True, 2)


def test_progress_stays_between_0_and_1():
    render = RenderFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Render.objects.filter(pk=render.pk).update(progress=1.5)


def test_a_comment_position_is_a_bar_and_a_beat_or_nothing():
    comment = CommentFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Comment.objects.filter(pk=comment.pk).update(at_bar=3)


def test_profile_range_constraints_hold_in_the_database():
    user = cast(User, PerformerFactory())
    with pytest.raises(IntegrityError), transaction.atomic():
        Profile.objects.filter(user=user).update(vocal_low=70, vocal_high=60)
    with pytest.raises(IntegrityError), transaction.atomic():
        Profile.objects.filter(user=user).update(vocal_low=10)


def test_track_page_url():
    track = TrackFactory()
    assert str(track.pk) in track.get_absolute_url()
