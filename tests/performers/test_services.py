from typing import cast

import pytest
from django.core.exceptions import ValidationError

from performers.models import ChosenKey, Profile, User
from performers.services import chosen_key_remember, profile_update, user_register
from tests.factories import PerformerFactory, TrackFactory

pytestmark = pytest.mark.django_db


def test_user_register_creates_a_performer_with_an_empty_profile():
    # when
    user = user_register(
        username="ada", password="a-long-passphrase", email="ada@example.com", role="performer"
    )

    # then
    assert user.is_performer
    assert not user.is_producer
    assert user.role == "performer"
    assert user.check_password("a-long-passphrase")
    assert Profile.objects.get(user=user).vocal_low is None


def test_user_register_producer_role():
    user = user_register(username="max", password="a-long-passphrase", role="producer")
    assert user.is_producer
    assert not user.is_performer
    assert user.role == "producer"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"username": "x1", "password": "a-long-passphrase", "role": "drummer"}, "role"),
        ({"username": "", "password": "a-long-passphrase", "role": "performer"}, "username"),
        ({"username": "bad name!", "password": "a-long-passphrase", "role": "performer"}, "username"),
        ({"username": "x2", "password": "123", "role": "performer"}, "password"),
        ({"username": "x3", "password": "a-long-passphrase", "email": "nope", "role": "performer"}, "email"),
    ],
)
def test_user_register_refuses_bad_input_with_the_field(kwargs, field):
    with pytest.raises(ValidationError) as excinfo:
        user_register(**kwargs)
    assert field in excinfo.value.message_dict
    assert User.objects.count() == 0


def test_user_register_refuses_a_taken_username_case_insensitively():
    # given
    PerformerFactory(username="Ada")

    # when / then
    with pytest.raises(ValidationError) as excinfo:
        user_register(username="ada", password="a-long-passphrase", role="performer")
    assert excinfo.value.message_dict["username"] == ["that username is taken"]


def test_profile_update_stores_notes_as_numbers_and_genres():
    # given
    user = PerformerFactory()

    # when
    profile = profile_update(user=user, vocal_low="G3", vocal_high="C#5", genres=["pop", "jazz"], bio="Alto")

    # then
    assert (profile.vocal_low, profile.vocal_high) == (55, 73)
    assert sorted(profile.genres.values_list("slug", flat=True)) == ["jazz", "pop"]
    assert profile.bio == "Alto"


def test_profile_update_leaves_unmentioned_fields_and_clears_with_empty_string():
    user = PerformerFactory()
    profile_update(user=user, vocal_low="A3", vocal_high="E5", display_name="Ada")

    profile = profile_update(user=user, display_name="Ada L.")
    assert (profile.vocal_low, profile.vocal_high, profile.display_name) == (57, 76, "Ada L.")

    profile = profile_update(user=user, vocal_low="", vocal_high="")
    assert profile.vocal_low is None
    assert profile.vocal_high is None


@pytest.mark.parametrize(
    ("low", "high", "field", "reason"),
    [
        ("H3", "C5", "vocal_low", "is not a note name"),
        ("C5", "G3", "vocal_high", "must be above"),
        ("G3", "G3", "vocal_high", "must be above"),
        ("B0", "C4", "vocal_low", "outside C1-C7"),
        ("C4", "D7", "vocal_high", "outside C1-C7"),
    ],
)
def test_profile_update_validates_the_vocal_range(low, high, field, reason):
    user = cast(User, PerformerFactory())
    with pytest.raises(ValidationError) as excinfo:
        profile_update(user=user, vocal_low=low, vocal_high=high)
    assert reason in excinfo.value.message_dict[field][0]
    assert Profile.objects.get(user=user).vocal_low is None


def test_profile_update_refuses_unknown_genres():
    user = PerformerFactory()
    with pytest.raises(ValidationError) as excinfo:
        profile_update(user=user, genres=["pop", "polka-metal"])
    assert "polka-metal" in excinfo.value.message_dict["genres"][0]


def test_chosen_key_is_remembered_once_per_track():
    # given
    user = cast(User, PerformerFactory())
    track = TrackFactory()

    # when
    chosen_key_remember(performer=user, track=track, transpose=2)
    chosen_key_remember(performer=user, track=track, transpose=-3)

    # then
    assert list(ChosenKey.objects.filter(performer=user).values_list("transpose", flat=True)) == [-3]


def test_chosen_key_refuses_out_of_range_transpositions():
    with pytest.raises(ValidationError):
        chosen_key_remember(performer=PerformerFactory(), track=TrackFactory(), transpose=13)
