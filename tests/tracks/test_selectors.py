from typing import cast

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.http import Http404

from tests.factories import (
    CommentFactory,
    PerformerFactory,
    ProducerFactory,
    RenderFactory,
    RevisionFactory,
    TrackFactory,
)
from tracks import selectors, services
from tracks.models import RenderStatus, Track

pytestmark = pytest.mark.django_db


def test_track_list_shows_public_tracks_and_my_private_ones():
    # given
    me = ProducerFactory()
    public = TrackFactory(title="Open")
    mine = TrackFactory(producer=me, is_public=False, title="Mine")
    TrackFactory(is_public=False, title="Theirs")

    # then
    assert set(selectors.track_list(user=me)) == {public, mine}
    assert set(selectors.track_list(user=AnonymousUser())) == {public}


def test_track_list_filters_by_genre_and_text():
    from tests.factories import genre

    rock = TrackFactory(title="Thunder Road", genre=genre("rock"))
    pop = TrackFactory(title="Sugar", description="a thunderous pop song", genre=genre("pop"))
    TrackFactory(title="Quiet", genre=genre("pop"))
    anyone = AnonymousUser()

    assert list(selectors.track_list(user=anyone, genre="rock")) == [rock]
    assert set(selectors.track_list(user=anyone, q="thunder")) == {rock, pop}
    assert list(selectors.track_list(user=anyone, genre="pop", q="THUNDER")) == [pop]


def test_track_list_finds_tracks_by_producer_name():
    producer = ProducerFactory(username="mixmaster")
    track = TrackFactory(producer=producer)
    TrackFactory()
    assert list(selectors.track_list(user=AnonymousUser(), q="mixmas")) == [track]


def test_track_get_hides_private_tracks_from_strangers():
    track = TrackFactory(is_public=False)
    assert selectors.track_get(user=track.producer, track_id=track.pk) == track
    for stranger in (AnonymousUser(), PerformerFactory(), ProducerFactory()):
        with pytest.raises(Http404):
            selectors.track_get(user=stranger, track_id=track.pk)


def test_render_get_follows_the_visibility_of_its_track():
    render = RenderFactory(revision=TrackFactory(is_public=False).current_revision)
    producer = render.revision.track.producer
    assert selectors.render_get(user=producer, render_id=render.pk) == render
    with pytest.raises(Http404):
        selectors.render_get(user=PerformerFactory(), render_id=render.pk)


def test_key_suggestions_rank_a_fitting_key_first():
    # given: the melody's range and a singer whose range is the melody shifted down 3 semitones
    track = cast(Track, TrackFactory())
    analysis = track.current_revision.analysis
    pitches = [int(row[0]) for row in analysis["melody_histogram"]]
    low, high = min(pitches) - 3, max(pitches) - 3

    # when
    result = selectors.key_suggestions(track=track, vocal_low=low, vocal_high=high)

    # then
    best = result["suggestions"][0]
    assert result["current_key"] == analysis["key"]
    assert best["transpose"] == -3
    assert best["fits"] is True
    assert best["out_of_range"] == 0
    assert len(result["suggestions"]) == 25
    shares = [s["out_of_range_share"] for s in result["suggestions"]]
    assert shares == sorted(shares)


def test_key_suggestions_are_ranked_by_time_outside_then_centre_then_shift_size():
    # given: a melody of C4 for 3 s and E4 for 1 s (duration-weighted centre 61, plain mean 62)
    # and a singer from G#3 (56) to G4 (67), whose range is centred on 61.5
    track = cast(Track, TrackFactory())
    revision = track.current_revision
    revision.analysis = {**revision.analysis, "melody_histogram": [[60, 1, 3.0], [64, 1, 1.0]]}
    revision.save()

    # when
    result = selectors.key_suggestions(track=track, vocal_low=56, vocal_high=67)

    # then: fitting shifts by distance of the centre, ties by the smaller shift; +4 (centre as close
    # as -3's) comes after every fitting shift because a quarter of the melody time is outside; then
    # the shifts with 1/4, 3/4 and all of the melody time outside, each group by the same rules
    order = [s["transpose"] for s in result["suggestions"]]
    fitting = [0, 1, -1, 2, -2, 3, -3, -4]
    quarter_out = [4, 5, 6, 7]
    three_quarters_out = [-5, -6, -7, -8]
    all_out = [8, 9, -9, 10, -10, 11, -11, 12, -12]
    assert order == fitting + quarter_out + three_quarters_out + all_out
    by_shift = {s["transpose"]: s for s in result["suggestions"]}
    assert [by_shift[t]["fits"] for t in fitting] == [True] * len(fitting)
    assert (by_shift[0]["melody_low"], by_shift[0]["melody_high"]) == ("C4", "E4")
    assert (by_shift[4]["fits"], by_shift[4]["out_of_range"], by_shift[4]["melody_high"]) == (False, 1, "G#4")
    assert by_shift[-12]["out_of_range"] == 2


def test_key_suggestions_need_a_vocal_range():
    with pytest.raises(ValidationError, match="no vocal range"):
        selectors.key_suggestions(track=TrackFactory(), vocal_low=None, vocal_high=None)


def test_key_suggestions_need_a_melody():
    track = cast(Track, TrackFactory())
    revision = track.current_revision
    revision.analysis = {**revision.analysis, "melody_part": None, "melody_histogram": []}
    revision.save()
    with pytest.raises(ValidationError, match="no melody part"):
        selectors.key_suggestions(track=track, vocal_low=55, vocal_high=76)


def test_a_pinned_comment_points_at_the_same_bar_in_every_tempo_variant():
    # given: a comment at bar 3 beat 1 made on the original
    track = cast(Track, TrackFactory())
    analysis = track.current_revision.analysis
    beats = int(analysis["time_signature"].split("/")[0])
    bar_s = beats * 60 / analysis["tempo_bpm"]
    comment = services.comment_post(user=PerformerFactory(), track=track, body="here", at_seconds=2 * bar_s)
    slower = RenderFactory(revision=track.current_revision, variant_settings={"tempo": 0.8, "count_in": 2})

    # when
    on_original = selectors.comment_position(comment=comment, render=None)
    on_slower = selectors.comment_position(comment=comment, render=slower)

    # then
    assert (on_original["bar"], on_original["seconds"]) == (3, pytest.approx(2 * bar_s, abs=1e-3))
    assert on_slower["bar"] == 3
    assert on_slower["seconds"] == pytest.approx(2 * bar_s / 0.8 + 2 * bar_s / 0.8, abs=1e-3)


def test_a_bar_that_no_longer_exists_has_no_seconds():
    # given: a comment near the end of a long revision, viewed on a shorter revision
    track = cast(Track, TrackFactory(revision__minutes=0.5))
    duration = track.current_revision.analysis["duration_s"]
    comment = services.comment_post(user=PerformerFactory(), track=track, body="end", at_seconds=duration - 1)
    shorter = RevisionFactory(track=track, number=2, minutes=0.25)
    render = RenderFactory(revision=shorter)

    position = selectors.comment_position(comment=comment, render=render)

    assert position["bar"] == comment.at_bar
    assert position["seconds"] is None


def test_comment_list_is_threaded_and_filterable():
    track = TrackFactory()
    open_thread = CommentFactory(track=track)
    reply = CommentFactory(track=track, parent=open_thread)
    closed = CommentFactory(track=track, resolved=True)
    anyone = AnonymousUser()

    threads = list(selectors.comment_list(user=anyone, track=track))
    assert threads == [open_thread, closed]
    assert list(threads[0].replies.all()) == [reply]
    assert list(selectors.comment_list(user=anyone, track=track, resolved=False)) == [open_thread]


def test_inbox_lists_open_threads_others_started_on_my_tracks():
    producer = ProducerFactory()
    track = TrackFactory(producer=producer)
    wanted = CommentFactory(track=track)
    CommentFactory(track=track, resolved=True)
    CommentFactory(track=track, author=producer)
    CommentFactory(track=track, parent=wanted)
    CommentFactory()
    assert list(selectors.inbox_open_comments(producer=producer)) == [wanted]


@pytest.mark.parametrize(
    ("title", "expected_start"),
    [
        ("Harbour Lights", "Harbour Lights ("),
        ('../../etc/passwd"; rm -rf', "etcpasswd rm -rf ("),
        ("Line\nbreak\r\n", "Line break ("),
        ("   ", "Backtrack render ("),
    ],
)
def test_download_filenames_are_safe(title, expected_start):
    track = TrackFactory(title=title)
    render = RenderFactory(
        revision=track.current_revision,
        variant_settings={"transpose": 2},
        status=RenderStatus.DONE,
        key="D major",
        tempo_bpm=96.0,
    )
    name = selectors.render_download_filename(render=render)
    assert name.startswith(expected_start)
    assert name.endswith("(D major, 96 bpm).mp3")
    assert "/" not in name
    assert '"' not in name
    assert "\n" not in name
