import pytest

from performers.selectors import chosen_key_get, chosen_key_list, genre_list, profile_get
from performers.services import chosen_key_remember
from tests.factories import PerformerFactory, TrackFactory

pytestmark = pytest.mark.django_db


def test_genres_are_seeded_by_migration():
    slugs = set(genre_list().values_list("slug", flat=True))
    assert {"pop", "rock", "ballad", "jazz", "musical"} <= slugs


def test_chosen_key_get_returns_the_transpose_or_none():
    user = PerformerFactory()
    track = TrackFactory()
    assert chosen_key_get(performer=user, track=track) is None
    chosen_key_remember(performer=user, track=track, transpose=4)
    assert chosen_key_get(performer=user, track=track) == 4


def test_chosen_key_list_hides_tracks_that_became_private():
    # given
    user = PerformerFactory()
    public, hidden = TrackFactory(), TrackFactory()
    chosen_key_remember(performer=user, track=public, transpose=1)
    chosen_key_remember(performer=user, track=hidden, transpose=2)
    hidden.is_public = False
    hidden.save()

    # then
    assert [chosen.track_id for chosen in chosen_key_list(performer=user)] == [public.pk]


def test_profile_get_creates_a_missing_profile():
    user = PerformerFactory()
    user.profile.delete()
    assert profile_get(user=user).user_id == user.pk
