from datetime import timedelta
from typing import cast

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import DatabaseError
from django.http import Http404
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from performers.models import ChosenKey
from tests.conftest import stored_files
from tests.factories import (
    CommentFactory,
    PerformerFactory,
    ProducerFactory,
    RenderFactory,
    RevisionFactory,
    TrackFactory,
)
from tracks import services
from tracks.models import Comment, Notification, Render, RenderStatus, Revision, Track
from tracks.services import render_execution

pytestmark = pytest.mark.django_db


# --- tracks and revisions ----------------------------------------------------------------------


def test_track_create_stores_revision_1_with_its_analysis(producer, midi_upload, isolated_media):
    # when
    track = services.track_create(producer=producer, title="  Blue Hour ", genre="pop", midi=midi_upload())

    # then
    revision = track.current_revision
    assert track.title == "Blue Hour"
    assert revision.number == 1
    assert revision.analysis["parts"]
    assert revision.analysis["key"]
    assert revision.original_filename == "song.mid"
    assert default_storage.exists(revision.midi.name)
    assert stored_files(isolated_media) == [revision.midi.name]


def test_track_create_by_a_performer_is_forbidden(performer, midi_upload, isolated_media):
    with pytest.raises(PermissionDenied):
        services.track_create(producer=performer, title="Mine", genre="pop", midi=midi_upload())
    assert Track.objects.count() == 0
    assert stored_files(isolated_media) == []


@pytest.mark.parametrize(
    ("data", "reason_part"),
    [
        (b"RIFF....WAVEfmt ", "MThd"),
        (b"", "empty"),
        (b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x7f\xff\xff\xff", "chunk"),
    ],
)
def test_track_create_refuses_a_bad_file_and_leaves_nothing(
    producer, midi_upload, isolated_media, data, reason_part
):
    # when
    with pytest.raises(ValidationError) as excinfo:
        services.track_create(producer=producer, title="Bad", genre="pop", midi=midi_upload(data))

    # then
    reason = excinfo.value.message_dict["midi"][0]
    assert reason_part.lower() in reason.lower()
    assert Track.objects.count() == 0
    assert Revision.objects.count() == 0
    assert stored_files(isolated_media) == []


def test_track_create_refuses_a_file_over_the_limit(producer, midi_upload, settings, isolated_media):
    settings.MIDI_MAX_BYTES = 100
    with pytest.raises(ValidationError) as excinfo:
        services.track_create(producer=producer, title="Big", genre="pop", midi=midi_upload())
    assert "limit" in excinfo.value.message_dict["midi"][0]
    assert Track.objects.count() == 0


def test_track_create_validates_title_and_genre(producer, midi_upload):
    with pytest.raises(ValidationError) as excinfo:
        services.track_create(producer=producer, title=" ", genre="polka-metal", midi=midi_upload())
    assert set(excinfo.value.message_dict) == {"title", "genre"}


def test_track_create_deletes_the_stored_file_when_the_database_write_fails(
    producer, midi_upload, isolated_media, monkeypatch
):
    # given: the revision row cannot be written after the file is stored
    def broken_create(**kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(Revision.objects, "create", broken_create)

    # when
    with pytest.raises(DatabaseError):
        services.track_create(producer=producer, title="Doomed", genre="pop", midi=midi_upload())

    # then
    assert Track.objects.count() == 0
    assert stored_files(isolated_media) == []


def test_revision_create_adds_revision_2_and_keeps_revision_1(track, midi_upload):
    # when
    revision = services.revision_create(
        track=track, user=track.producer, midi=midi_upload(), notes="softer brass"
    )

    # then
    track.refresh_from_db()
    assert revision.number == 2
    assert revision.notes == "softer brass"
    assert track.current_revision == revision
    assert list(track.revisions.order_by("number").values_list("number", flat=True)) == [1, 2]


def test_revision_create_by_someone_else_is_forbidden(track, midi_upload, isolated_media):
    before = stored_files(isolated_media)
    for intruder in (ProducerFactory(), PerformerFactory()):
        with pytest.raises(PermissionDenied):
            services.revision_create(track=track, user=intruder, midi=midi_upload())
    assert track.revisions.count() == 1
    assert stored_files(isolated_media) == before


def test_revision_create_refuses_a_bad_file(track, midi_upload, isolated_media):
    before = stored_files(isolated_media)
    with pytest.raises(ValidationError) as excinfo:
        services.revision_create(track=track, user=track.producer, midi=midi_upload(b"hello"))
    assert "midi" in excinfo.value.message_dict
    assert track.revisions.count() == 1
    assert stored_files(isolated_media) == before


def test_track_update_by_the_producer_only(track):
    services.track_update(user=track.producer, track=track, title="New name", is_public=False)
    track.refresh_from_db()
    assert (track.title, track.is_public) == ("New name", False)
    with pytest.raises(PermissionDenied):
        services.track_update(user=ProducerFactory(), track=track, title="Hijacked")


# --- render requests ---------------------------------------------------------------------------


def test_render_request_creates_a_queued_render_and_enqueues_after_commit(
    track, performer, enqueued, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks(execute=True):
        render, created = services.render_request(
            user=performer, revision=track.current_revision, settings={"transpose": 2, "tempo": 0.8}
        )

    # then
    assert created
    assert render.status == RenderStatus.QUEUED
    assert render.settings == {"transpose": 2, "tempo": 0.8, "mix": {}, "click": False, "count_in": 0}
    assert len(render.settings_hash) == 64
    assert enqueued == [render.pk]
    render.refresh_from_db()
    assert render.enqueued_at is not None
    assert list(render.requesters.all()) == [performer]


def test_render_request_does_not_enqueue_before_commit(
    track, performer, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.render_request(user=performer, revision=track.current_revision, settings={})
    assert enqueued == []
    assert len(callbacks) == 1


def test_an_identical_request_returns_the_existing_render_without_new_work(
    track, performer, enqueued, django_capture_on_commit_callbacks
):
    # given
    with django_capture_on_commit_callbacks(execute=True):
        first, _ = services.render_request(
            user=performer, revision=track.current_revision, settings={"tempo": 1}
        )

    # when: the same settings, spelled differently, from someone else
    other = PerformerFactory()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        second, created = services.render_request(
            user=other,
            revision=track.current_revision,
            settings={"tempo": 1.0001, "mix": {"0": {"gain_db": 0}}},
        )

    # then
    assert second.pk == first.pk
    assert not created
    assert callbacks == []
    assert enqueued == [first.pk]
    assert Render.objects.count() == 1
    assert set(second.requesters.all()) == {performer, other}


def test_a_mix_change_is_a_new_render_with_the_same_stem_key(track, performer, enqueued):
    first, _ = services.render_request(
        user=performer, revision=track.current_revision, settings={"transpose": 1}
    )
    second, created = services.render_request(
        user=performer,
        revision=track.current_revision,
        settings={"transpose": 1, "mix": {"0": {"mute": True}}},
    )
    assert created
    assert second.settings_hash != first.settings_hash
    assert second.stem_key == first.stem_key


@pytest.mark.parametrize(
    ("variant_settings", "reason"),
    [
        ({"transpose": 13}, "transpose must be between -12 and 12"),
        ({"tempo": 2.0}, "tempo must be between 0.5 and 1.5"),
        ({"count_in": 9}, "count_in"),
        ({"mix": {"99": {"mute": True}}}, "there is no part 99"),
        ({"mix": {"0": {"gain_db": 40}}}, "gain_db"),
    ],
)
def test_render_request_refuses_bad_settings_with_the_engine_reason(
    track, performer, variant_settings, reason
):
    with pytest.raises(ValidationError) as excinfo:
        services.render_request(user=performer, revision=track.current_revision, settings=variant_settings)
    assert reason in excinfo.value.messages[0]
    assert Render.objects.count() == 0


def test_render_request_on_an_invisible_track_is_404(private_track, performer):
    with pytest.raises(Http404):
        services.render_request(user=performer, revision=private_track.current_revision, settings={})


def test_a_performer_render_remembers_the_chosen_key(track, performer, enqueued):
    services.render_request(user=performer, revision=track.current_revision, settings={"transpose": -2})
    assert ChosenKey.objects.get(performer=performer, track=track).transpose == -2


def test_a_performer_taking_an_already_rendered_key_has_it_remembered_too(track, performer, enqueued):
    # given: someone else already rendered these exact settings
    first, _ = services.render_request(
        user=PerformerFactory(), revision=track.current_revision, settings={"transpose": 3}
    )

    # when: the performer asks for the same variant (answered by the existing render)
    render, created = services.render_request(
        user=performer, revision=track.current_revision, settings={"transpose": 3}
    )

    # then: the shared render is reused and the performer's key is still remembered
    assert (render.pk, created) == (first.pk, False)
    assert ChosenKey.objects.get(performer=performer, track=track).transpose == 3


def test_the_active_render_cap_refuses_more_renders(track, performer, settings, enqueued):
    # given
    settings.RENDER_MAX_ACTIVE_PER_USER = 2
    for transpose in (1, 2):
        services.render_request(
            user=performer, revision=track.current_revision, settings={"transpose": transpose}
        )

    # when / then
    with pytest.raises(services.RenderLimitReached, match="limit is 2"):
        services.render_request(user=performer, revision=track.current_revision, settings={"transpose": 3})
    assert Render.objects.count() == 2


def test_finished_renders_do_not_count_towards_the_cap(track, performer, settings, enqueued):
    settings.RENDER_MAX_ACTIVE_PER_USER = 1
    render, _ = services.render_request(
        user=performer, revision=track.current_revision, settings={"transpose": 1}
    )
    Render.objects.filter(pk=render.pk).update(status=RenderStatus.DONE)
    _, created = services.render_request(
        user=performer, revision=track.current_revision, settings={"transpose": 2}
    )
    assert created


def test_an_identical_request_restarts_a_failed_render(
    track, performer, enqueued, django_capture_on_commit_callbacks
):
    # given
    render = RenderFactory(
        revision=track.current_revision, status=RenderStatus.FAILED, error="boom", attempts=2
    )

    # when
    with django_capture_on_commit_callbacks(execute=True):
        again, created = services.render_request(user=performer, revision=track.current_revision, settings={})

    # then
    assert again.pk == render.pk
    assert not created
    assert (again.status, again.error, again.attempts) == (RenderStatus.QUEUED, "", 0)
    assert enqueued == [render.pk]


def test_broker_down_raises_queue_unavailable_and_keeps_the_render_for_the_sweeper(
    track, performer, monkeypatch, django_capture_on_commit_callbacks
):
    # given: Redis refuses connections
    from tracks.tasks import render_run

    def refuse(*args, **kwargs):
        raise KombuOperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(render_run, "apply_async", refuse)

    # when
    with (
        pytest.raises(services.RenderQueueUnavailable) as excinfo,
        django_capture_on_commit_callbacks(execute=True),
    ):
        services.render_request(user=performer, revision=track.current_revision, settings={})

    # then
    render = Render.objects.get()
    assert excinfo.value.render_id == render.pk
    assert "queue is unavailable" in str(excinfo.value)
    assert render.status == RenderStatus.QUEUED
    assert render.enqueued_at is None


def test_the_sweeper_enqueues_renders_that_never_reached_the_broker(enqueued):
    # given
    old = timezone.now() - timedelta(minutes=5)
    lost = RenderFactory(created_at=old)
    fresh = RenderFactory()
    sent = RenderFactory(created_at=old, enqueued_at=old)
    done = RenderFactory(created_at=old, status=RenderStatus.DONE)

    # when
    count = services.render_requeue_stale()

    # then
    assert count == 1
    assert enqueued == [lost.pk]
    assert {fresh.pk, sent.pk, done.pk}.isdisjoint(enqueued)
    lost.refresh_from_db()
    assert lost.enqueued_at is not None


def test_the_sweeper_requeues_a_render_stuck_in_rendering_past_the_hard_limit(enqueued, settings):
    long_ago = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 120)
    stuck = RenderFactory(
        status=RenderStatus.RENDERING, started_at=long_ago, enqueued_at=long_ago, attempts=1
    )
    running = RenderFactory(status=RenderStatus.RENDERING, started_at=timezone.now(), attempts=1)

    assert services.render_requeue_stale() == 1

    stuck.refresh_from_db()
    running.refresh_from_db()
    assert enqueued == [stuck.pk]
    assert (stuck.status, stuck.attempts) == (RenderStatus.QUEUED, 1)
    assert running.status == RenderStatus.RENDERING


def test_the_sweeper_stops_quietly_while_the_broker_is_down(monkeypatch):
    from tracks.tasks import render_run

    def refuse(*args, **kwargs):
        raise KombuOperationalError("connection refused")

    monkeypatch.setattr(render_run, "apply_async", refuse)
    RenderFactory(created_at=timezone.now() - timedelta(minutes=5))
    assert services.render_requeue_stale() == 0


# --- claiming and executing --------------------------------------------------------------------


def test_render_claim_starts_an_attempt():
    render = RenderFactory()
    claimed = services.render_claim(render_id=render.pk, task_id="t1")
    assert claimed is not None
    assert (claimed.status, claimed.attempts, claimed.task_id) == (RenderStatus.RENDERING, 1, "t1")
    assert claimed.started_at is not None


@pytest.mark.parametrize("status", [RenderStatus.DONE, RenderStatus.FAILED])
def test_render_claim_skips_finished_renders(status):
    render = RenderFactory(status=status, attempts=1)
    assert services.render_claim(render_id=render.pk, task_id="t2") is None
    render.refresh_from_db()
    assert render.attempts == 1


def test_render_claim_of_a_missing_render_is_none():
    assert services.render_claim(render_id=987654, task_id="t") is None


def test_a_duplicate_message_does_not_run_a_render_another_worker_is_on():
    render = RenderFactory(
        status=RenderStatus.RENDERING, task_id="first", started_at=timezone.now(), attempts=1
    )
    assert services.render_claim(render_id=render.pk, task_id="second") is None
    render.refresh_from_db()
    assert render.attempts == 1


def test_a_redelivered_task_reruns_once_then_gives_up(settings):
    # given: the worker died mid-render (status rendering, same task id redelivered)
    settings.RENDER_MAX_ATTEMPTS = 2
    render = cast(Render, RenderFactory())
    render.requesters.add(render.requested_by)
    assert services.render_claim(render_id=render.pk, task_id="t") is not None

    # when: redelivered after the first crash
    second = services.render_claim(render_id=render.pk, task_id="t")

    # then: it runs again
    assert second is not None
    assert second.attempts == 2

    # when: redelivered after the second crash
    third = services.render_claim(render_id=render.pk, task_id="t")

    # then: failed with a reason, and requesters are told
    assert third is None
    render.refresh_from_db()
    assert render.status == RenderStatus.FAILED
    assert render.error == "the render was interrupted twice; giving up"
    assert Notification.objects.filter(recipient=render.requested_by, kind="render_failed").exists()


def test_render_execute_renders_stores_and_records(track, performer, settings, isolated_media):
    # given
    render, _ = services.render_request(
        user=performer, revision=track.current_revision, settings={"transpose": 2}
    )
    claimed = services.render_claim(render_id=render.pk, task_id="t")

    # when
    done = services.render_execute(render=claimed)

    # then
    assert done.status == RenderStatus.DONE, done.error
    assert done.audio.name == f"renders/{track.current_revision.pk}/{render.settings_hash}.mp3"
    head = default_storage.open(done.audio.name).read(3)
    assert head == b"ID3" or head[0] == 0xFF
    assert done.audio_size > 1000
    analysis = track.current_revision.analysis
    assert done.duration_s == pytest.approx(analysis["duration_s"], abs=4.0)
    assert done.tempo_bpm == pytest.approx(analysis["tempo_bpm"], rel=0.01)
    assert done.key
    assert done.progress == 1.0
    assert len(done.peaks) > 100
    assert Notification.objects.filter(recipient=performer, kind="render_done").count() == 1
    assert not list((settings.RENDER_CACHE_DIR / "tmp").iterdir())


def test_a_mix_only_change_reuses_the_stems_prepared_after_the_first_render(
    track, performer, monkeypatch, django_capture_on_commit_callbacks
):
    # given: a first render, which asks for per-part stems once it is done
    stems_requested = []
    monkeypatch.setattr(
        render_execution, "render_stems_enqueue", lambda *, render_id: stems_requested.append(render_id)
    )
    first, _ = services.render_request(user=performer, revision=track.current_revision, settings={})
    with django_capture_on_commit_callbacks(execute=True):
        services.render_execute(render=services.render_claim(render_id=first.pk, task_id="a"))
    assert stems_requested == [first.pk]
    assert services.render_stems_prepare(render_id=first.pk) is True
    assert services.render_stems_prepare(render_id=first.pk) is False  # already there

    # when: the same key and tempo with another mix
    second, _ = services.render_request(
        user=performer, revision=track.current_revision, settings={"mix": {"1": {"gain_db": -6}}}
    )
    with django_capture_on_commit_callbacks(execute=True):
        done = services.render_execute(render=services.render_claim(render_id=second.pk, task_id="b"))

    # then: no synthesis, and no new stems asked for
    assert done.status == RenderStatus.DONE
    assert done.stems_reused
    assert stems_requested == [first.pk]


def test_stems_are_not_prepared_for_unfinished_renders():
    assert services.render_stems_prepare(render_id=RenderFactory(status=RenderStatus.RENDERING).pk) is False


def test_a_rerun_overwrites_the_same_file(track, performer, isolated_media):
    render, _ = services.render_request(user=performer, revision=track.current_revision, settings={})
    services.render_execute(render=services.render_claim(render_id=render.pk, task_id="a"))
    Render.objects.filter(pk=render.pk).update(status=RenderStatus.QUEUED)
    services.render_execute(render=services.render_claim(render_id=render.pk, task_id="b"))
    assert [name for name in stored_files(isolated_media) if name.startswith("renders/")] == [
        services.render_storage_name(render=render)
    ]


def test_an_engine_failure_fails_the_render_with_its_reason(track, performer, monkeypatch):
    from tracks.engine import RenderFailed

    def silent(*args, **kwargs):
        raise RenderFailed("the render came out silent (every audible part is muted or empty)")

    monkeypatch.setattr(render_execution, "render_variant", silent)
    render, _ = services.render_request(user=performer, revision=track.current_revision, settings={})

    result = services.render_execute(render=services.render_claim(render_id=render.pk, task_id="t"))

    assert result.status == RenderStatus.FAILED
    assert result.error.startswith("the render came out silent")
    assert Notification.objects.filter(recipient=performer, kind="render_failed").count() == 1


def test_a_missing_arrangement_file_fails_the_render(track, performer):
    render, _ = services.render_request(user=performer, revision=track.current_revision, settings={})
    default_storage.delete(track.current_revision.midi.name)
    result = services.render_execute(render=services.render_claim(render_id=render.pk, task_id="t"))
    assert result.status == RenderStatus.FAILED
    assert result.error == "the arrangement file is missing from storage"


def test_storage_trouble_is_transient(track, performer, monkeypatch):
    render, _ = services.render_request(user=performer, revision=track.current_revision, settings={})
    claimed = services.render_claim(render_id=render.pk, task_id="t")

    def broken_open(*args, **kwargs):
        raise OSError("Connection reset by peer")

    monkeypatch.setattr(FileSystemStorage, "open", broken_open)
    with pytest.raises(services.TransientRenderError, match="could not read the arrangement"):
        services.render_execute(render=claimed)


def test_render_release_gives_the_attempt_back():
    render = RenderFactory()
    services.render_claim(render_id=render.pk, task_id="t")
    services.render_release(render_id=render.pk)
    render.refresh_from_db()
    assert (render.status, render.attempts) == (RenderStatus.QUEUED, 0)


# --- pruning -----------------------------------------------------------------------------------


def _stored_render(*, accessed_minutes_ago: int, size: int, status=RenderStatus.DONE) -> Render:
    render = cast(
        Render,
        RenderFactory(
            status=status,
            variant_settings={"transpose": accessed_minutes_ago % 12},
            last_accessed_at=timezone.now() - timedelta(minutes=accessed_minutes_ago),
        ),
    )
    name = default_storage.save(
        f"renders/{render.revision_id}/{render.settings_hash}.mp3", ContentFile(b"x" * size)
    )
    Render.objects.filter(pk=render.pk).update(audio=name, audio_size=size)
    render.refresh_from_db()
    return render


def test_prune_deletes_least_recently_used_renders_until_under_budget():
    # given: 3000 bytes stored, budget 1500
    oldest = _stored_render(accessed_minutes_ago=300, size=1000)
    middle = _stored_render(accessed_minutes_ago=200, size=1000)
    newest = _stored_render(accessed_minutes_ago=100, size=1000)

    # when
    report = services.render_prune(budget_bytes=1500)

    # then
    assert report["renders_deleted"] == 2
    assert set(Render.objects.values_list("pk", flat=True)) == {newest.pk}
    assert not default_storage.exists(oldest.audio.name)
    assert not default_storage.exists(middle.audio.name)
    assert default_storage.exists(newest.audio.name)


def test_prune_never_touches_active_or_recently_used_renders():
    rendering = _stored_render(accessed_minutes_ago=500, size=1000, status=RenderStatus.RENDERING)
    queued = _stored_render(accessed_minutes_ago=400, size=1000, status=RenderStatus.QUEUED)
    recent = _stored_render(accessed_minutes_ago=1, size=5000)

    report = services.render_prune(budget_bytes=0)

    assert report["renders_deleted"] == 0
    assert Render.objects.filter(pk__in=[rendering.pk, queued.pk, recent.pk]).count() == 3


def test_prune_removes_old_stems_but_not_those_of_active_renders(settings):
    import os

    # given
    idle_revision = RevisionFactory()
    busy_render = RenderFactory(status=RenderStatus.RENDERING)
    stems = settings.RENDER_CACHE_DIR / "stems"
    idle = stems / str(idle_revision.pk) / "abc"
    busy = stems / str(busy_render.revision_id) / "def"
    orphan = stems / "999999" / "ghi"
    for folder in (idle, busy, orphan):
        folder.mkdir(parents=True)
        (folder / "0.f32").write_bytes(b"x" * 2000)
        old = (timezone.now() - timedelta(hours=2)).timestamp()
        os.utime(folder / "0.f32", (old, old))

    # when
    report = services.render_prune(budget_bytes=100)

    # then
    assert not idle.exists()
    assert busy.exists()
    assert not orphan.parent.exists()
    assert report["stems_deleted"] == 1


# --- comments ----------------------------------------------------------------------------------


def test_comment_post_notifies_the_producer_by_app_and_email(
    track, performer, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks(execute=True):
        comment = services.comment_post(user=performer, track=track, body="Lovely intro")

    # then
    assert comment.revision is None
    assert comment.at_bar is None
    notification = Notification.objects.get(recipient=track.producer)
    assert notification.kind == "comment"
    assert track.title in notification.text
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [track.producer.email]


def test_everyone_who_asked_for_a_render_hears_that_it_failed_and_why(
    track, performer, enqueued, django_capture_on_commit_callbacks
):
    # given: two performers asked for the same variant (one shared render)
    other = PerformerFactory()
    render, _ = services.render_request(user=performer, revision=track.current_revision, settings={})
    services.render_request(user=other, revision=track.current_revision, settings={})

    # when
    with django_capture_on_commit_callbacks(execute=True):
        services.render_fail(render_id=render.pk, reason="the SoundFont could not be loaded")

    # then: both are told, in the app and by email, with the reason
    notified = Notification.objects.filter(kind="render_failed").order_by("recipient_id")
    assert [n.recipient_id for n in notified] == sorted([performer.pk, other.pk])
    assert all("the SoundFont could not be loaded" in n.text for n in notified)
    assert sorted(message.to[0] for message in mail.outbox) == sorted([performer.email, other.email])


def test_the_producer_commenting_on_their_own_track_notifies_nobody(track):
    services.comment_post(user=track.producer, track=track, body="Note to self")
    assert Notification.objects.count() == 0


def test_a_reply_notifies_the_author_and_the_producer(track, performer):
    # given
    parent = services.comment_post(user=performer, track=track, body="Key too high?")
    Notification.objects.all().delete()
    other = PerformerFactory()

    # when
    services.comment_post(user=other, track=track, body="Agreed", parent=parent)

    # then
    assert set(Notification.objects.values_list("recipient_id", "kind")) == {
        (performer.pk, "reply"),
        (track.producer_id, "comment"),
    }


def test_a_reply_to_a_reply_joins_the_thread(track, performer):
    parent = services.comment_post(user=performer, track=track, body="One")
    reply = services.comment_post(user=track.producer, track=track, body="Two", parent=parent)
    nested = services.comment_post(user=performer, track=track, body="Three", parent=reply)
    assert nested.parent_id == parent.pk


def test_comment_post_refuses_empty_bodies_and_foreign_objects(track, performer):
    other = TrackFactory()
    foreign = CommentFactory(track=other)
    foreign_render = RenderFactory(revision=other.current_revision)
    with pytest.raises(ValidationError) as excinfo:
        services.comment_post(
            user=performer,
            track=track,
            body="  ",
            parent=foreign,
            render=foreign_render,
            revision=other.current_revision,
        )
    assert set(excinfo.value.message_dict) == {"body", "parent", "render", "revision"}
    assert Comment.objects.filter(track=track).count() == 0


def test_comment_on_a_private_track_by_a_stranger_is_404(private_track, performer):
    with pytest.raises(Http404):
        services.comment_post(user=performer, track=private_track, body="Hi")


def test_a_moment_is_stored_as_bar_and_beat_of_the_music(track, performer):
    # given: a render at 0.5x with a one-bar count-in
    analysis = track.current_revision.analysis
    bpm = analysis["tempo_bpm"]
    beats_per_bar = int(analysis["time_signature"].split("/")[0])
    render = RenderFactory(revision=track.current_revision, variant_settings={"tempo": 0.5, "count_in": 1})
    count_in_s = beats_per_bar * 60 / bpm / 0.5
    bar_s = beats_per_bar * 60 / bpm / 0.5

    # when: a comment at the downbeat of bar 3 of that render
    comment = services.comment_post(
        user=performer, track=track, body="here", render=render, at_seconds=count_in_s + 2 * bar_s
    )

    # then
    assert (comment.at_bar, comment.at_beat) == (3, pytest.approx(1.0, abs=1e-3))
    assert comment.revision == track.current_revision


def test_a_moment_outside_the_song_is_refused(track, performer):
    with pytest.raises(ValidationError) as excinfo:
        services.comment_post(user=performer, track=track, body="there", at_seconds=10_000)
    assert excinfo.value.message_dict["at_seconds"][0].startswith(
        "that moment is past the end of the render ("
    )


def test_resolve_by_the_producer_in_a_revision_notifies_the_author(track, performer, midi_upload):
    # given
    comment = services.comment_post(user=performer, track=track, body="Too loud")
    revision = services.revision_create(track=track, user=track.producer, midi=midi_upload(), notes="quieter")

    # when
    services.comment_resolve(user=track.producer, comment=comment, revision=revision)

    # then
    comment.refresh_from_db()
    assert comment.resolved
    assert comment.resolved_in_revision == revision
    assert comment.resolved_by == track.producer
    notification = Notification.objects.get(recipient=performer, kind="resolved")
    assert "in revision 2" in notification.text


def test_the_author_can_reopen_and_strangers_cannot_resolve(track, performer):
    comment = services.comment_post(user=performer, track=track, body="Too loud")
    services.comment_resolve(user=performer, comment=comment)
    services.comment_resolve(user=performer, comment=comment, resolved=False)
    comment.refresh_from_db()
    assert not comment.resolved
    assert comment.resolved_by is None
    with pytest.raises(PermissionDenied):
        services.comment_resolve(user=PerformerFactory(), comment=comment)


def test_replies_are_not_resolved_on_their_own(track, performer):
    parent = services.comment_post(user=performer, track=track, body="A")
    reply = services.comment_post(user=track.producer, track=track, body="B", parent=parent)
    with pytest.raises(ValidationError):
        services.comment_resolve(user=track.producer, comment=reply)


def test_resolving_in_a_revision_of_another_track_is_refused(track, performer):
    comment = services.comment_post(user=performer, track=track, body="A")
    with pytest.raises(ValidationError):
        services.comment_resolve(
            user=track.producer, comment=comment, revision=TrackFactory().current_revision
        )


def test_only_the_author_edits_or_deletes(track, performer):
    comment = services.comment_post(user=performer, track=track, body="Tpyo")
    services.comment_update(user=performer, comment=comment, body="Typo")
    comment.refresh_from_db()
    assert comment.body == "Typo"
    assert comment.edited_at is not None
    with pytest.raises(PermissionDenied):
        services.comment_update(user=track.producer, comment=comment, body="Mine now")
    with pytest.raises(PermissionDenied):
        services.comment_delete(user=track.producer, comment=comment)
    services.comment_delete(user=performer, comment=comment)
    assert not Comment.objects.filter(pk=comment.pk).exists()


def test_deleting_a_comment_with_replies_keeps_the_thread(track, performer):
    parent = services.comment_post(user=performer, track=track, body="Secret")
    reply = services.comment_post(user=track.producer, track=track, body="Answer", parent=parent)

    services.comment_delete(user=performer, comment=parent)

    parent.refresh_from_db()
    assert parent.is_deleted
    assert parent.body == ""
    assert Comment.objects.filter(pk=reply.pk).exists()

    services.comment_delete(user=track.producer, comment=reply)
    assert not Comment.objects.filter(pk=parent.pk).exists()


def test_notification_mark_read(performer):
    from tests.factories import NotificationFactory

    mine = NotificationFactory.create_batch(3, recipient=performer)
    NotificationFactory(recipient=PerformerFactory())
    assert services.notification_mark_read(user=performer, ids=[mine[0].pk]) == 1
    assert services.notification_mark_read(user=performer) == 2
    assert Notification.objects.filter(read=False).count() == 1


def test_a_large_upload_on_disk_is_refused_by_its_size(producer, settings, tmp_path):
    # given: a 5 MB upload that Django spooled to a temporary file
    from django.core.files.uploadedfile import TemporaryUploadedFile

    upload = TemporaryUploadedFile("huge.mid", "audio/midi", 5_000_000, "utf-8")
    upload.write(b"MThd" + b"\0" * 4_999_996)
    upload.flush()

    # when / then
    with pytest.raises(ValidationError) as excinfo:
        services.track_create(producer=producer, title="Huge", genre="pop", midi=upload)
    assert excinfo.value.message_dict["midi"] == ["file is 5.0 MB; the limit is 1.0 MB"]
    upload.close()
