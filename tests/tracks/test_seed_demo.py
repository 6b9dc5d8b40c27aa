import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from performers.models import User
from tracks.management.commands import seed_demo
from tracks.models import Comment, Track

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def short_songs(monkeypatch):
    """The demo songs at a few seconds each: the command's logic, not the composer's speed, is tested."""
    short = [{**spec, "minutes": 0.1} for spec in seed_demo.DEMO_TRACKS]
    monkeypatch.setattr(seed_demo, "DEMO_TRACKS", short)


def test_seed_demo_creates_the_demo_people_and_arrangements():
    # when
    call_command("seed_demo")

    # then
    producer = authenticate(username="producer", password=seed_demo.DEMO_PASSWORD)
    singer = authenticate(username="singer", password=seed_demo.DEMO_PASSWORD)
    assert producer is not None
    assert producer.is_producer
    assert singer is not None
    assert singer.is_performer
    assert (singer.profile.vocal_low, singer.profile.vocal_high) == (57, 76)  # A3-E5
    tracks = Track.objects.filter(producer=producer)
    assert tracks.count() == 3
    pop = tracks.get(title="Sunlit Avenue").current_revision.analysis
    assert pop["parts"][pop["melody_part"]]["name"] == "Lead melody"
    assert tracks.get(title="Quiet Harbour").current_revision.analysis["time_signature"] == "3/4"
    assert Comment.objects.filter(author=singer).count() == 1


def test_seed_demo_is_idempotent():
    call_command("seed_demo")
    call_command("seed_demo")
    assert User.objects.filter(username__in=["producer", "singer"]).count() == 2
    assert Track.objects.count() == 3
    assert Comment.objects.count() == 1
