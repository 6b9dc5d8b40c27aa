"""Setlist exports: numbered MP3s with an .m3u8, one continuous MP3 with the gaps, reuse and failure."""

import io
import subprocess
import zipfile
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from tests.conftest import stored_files
from tests.factories import PerformerFactory, TrackFactory
from tracks import services
from tracks.engine import EngineError
from tracks.models import Render, RenderStatus, SetlistExportStatus
from tracks.services import render_execution
from tracks.services import setlists as setlist_services
from tracks.services.render_execution import render_storage_name
from tracks.services.sections import revision_sections_update

pytestmark = pytest.mark.django_db


def _export(setlist, owner, export_format):
    export = services.setlist_export_request(setlist=setlist, user=owner, export_format=export_format)
    return setlist_services.setlist_export_run(export_id=export.pk)


def _duration(data: bytes, tmp_path: Path) -> float:
    path = tmp_path / "probe.mp3"
    path.write_bytes(data)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout)


@pytest.fixture
def owner():
    return PerformerFactory()


@pytest.fixture(autouse=True)
def _no_writes_from_render_threads(monkeypatch, settings):
    """Progress and heartbeat writes come from other threads, which on SQLite wait for this test's
    open transaction; they are not what these tests are about."""
    monkeypatch.setattr(render_execution, "_progress_writer", lambda render_id: lambda fraction: None)
    settings.RENDER_HEARTBEAT_S = 3600


def test_zip_export_holds_numbered_songs_in_order_and_reuses_done_renders(owner, tmp_path):
    # Given a setlist of two songs, the first of which is already rendered in its variant
    first, second = TrackFactory(title="Harbour Lights"), TrackFactory(title="Night Train")
    setlist = services.setlist_create(user=owner, name="Friday")
    services.setlist_item_add(setlist=setlist, track_id=second.pk, settings={"transpose": 2}, gap_s=1)
    services.setlist_item_add(setlist=setlist, track_id=first.pk, settings={}, gap_s=2)
    settings = setlist.items.get(track=second).settings
    done = Render.objects.create(
        revision=second.current_revision,
        settings=settings,
        settings_hash=services.render_settings_normalise(
            revision=second.current_revision, settings=settings
        ).cache_key(),
        requested_by=owner,
    )
    name = default_storage.save(render_storage_name(render=done), ContentFile(b"ID3-already-rendered"))
    Render.objects.filter(pk=done.pk).update(
        status=RenderStatus.DONE, audio=name, key="E major", tempo_bpm=82.0, duration_s=15.0
    )
    # When the setlist is exported as a ZIP
    export = _export(setlist, owner, "zip")
    # Then it holds the songs in order, numbered, named with key and tempo, and a playlist
    assert export.status == SetlistExportStatus.DONE, export.error
    assert export.progress == "2 of 2 songs"
    with default_storage.open(export.file.name, "rb") as handle:
        archive = zipfile.ZipFile(io.BytesIO(handle.read()))
    names = archive.namelist()
    assert names[0] == "01 Night Train (E major, 82 bpm).mp3"
    assert names[1].startswith("02 Harbour Lights (")
    assert names[1].endswith(" bpm).mp3")
    assert names[2] == "setlist.m3u8"
    # the finished render was reused byte for byte; the other one was rendered now
    assert archive.read(names[0]) == b"ID3-already-rendered"
    assert _duration(archive.read(names[1]), tmp_path) > 10
    playlist = archive.read("setlist.m3u8").decode().splitlines()
    assert playlist[0] == "#EXTM3U"
    assert [line for line in playlist if not line.startswith("#")] == names[:2]


def test_continuous_export_is_one_mp3_with_the_gaps(owner, tmp_path):
    # Given two songs with gaps of 3 s and 4 s
    setlist = services.setlist_create(user=owner, name="Sunday")
    tracks = [TrackFactory(title="One"), TrackFactory(title="Two")]
    for track, gap in zip(tracks, (3, 4), strict=True):
        services.setlist_item_add(setlist=setlist, track_id=track.pk, settings={}, gap_s=gap)
    # When it is exported as one MP3
    export = _export(setlist, owner, "continuous")
    assert export.status == SetlistExportStatus.DONE, export.error
    # Then it lasts both songs (the same composed song twice) plus both gaps
    with default_storage.open(export.file.name, "rb") as handle:
        total = _duration(handle.read(), tmp_path)
    single = _export_single_duration(owner, tracks[0], tmp_path)
    assert total == pytest.approx(2 * single + 7, abs=0.3)


def _export_single_duration(owner, track, tmp_path) -> float:
    setlist = services.setlist_create(user=owner, name="One song")
    services.setlist_item_add(setlist=setlist, track_id=track.pk, settings={}, gap_s=0)
    export = _export(setlist, owner, "continuous")
    with default_storage.open(export.file.name, "rb") as handle:
        return _duration(handle.read(), tmp_path)


def test_a_failed_song_fails_the_export_with_its_name_and_stores_nothing(owner, monkeypatch, isolated_media):
    # Given two songs, the second of which cannot be rendered
    setlist = services.setlist_create(user=owner, name="Broken")
    for title in ("Fine Song", "Broken Song"):
        services.setlist_item_add(setlist=setlist, track_id=TrackFactory(title=title).pk, settings={})
    real = render_execution.render_variant

    def flaky(arrangement, settings, **kwargs):
        if kwargs["tags"]["title"] == "Broken Song":
            raise EngineError("the synthesizer gave up")
        return real(arrangement, settings, **kwargs)

    monkeypatch.setattr(render_execution, "render_variant", flaky)
    before = [name for name in stored_files(isolated_media) if name.startswith("setlists")]
    # When it is exported
    export = _export(setlist, owner, "zip")
    # Then the export failed naming the song, and no partial ZIP is stored
    assert export.status == SetlistExportStatus.FAILED
    assert export.error == "Broken Song: the synthesizer gave up"
    assert not export.file
    assert [name for name in stored_files(isolated_media) if name.startswith("setlists")] == before == []


def test_a_track_made_private_is_skipped_not_fatal(owner):
    setlist = services.setlist_create(user=owner, name="Mixed")
    kept, hidden = TrackFactory(title="Kept"), TrackFactory(title="Hidden")
    for track in (kept, hidden):
        services.setlist_item_add(setlist=setlist, track_id=track.pk, settings={})
    hidden.is_public = False
    hidden.save(update_fields=["is_public"])
    export = _export(setlist, owner, "zip")
    assert export.status == SetlistExportStatus.DONE, export.error
    with default_storage.open(export.file.name, "rb") as handle:
        archive = zipfile.ZipFile(io.BytesIO(handle.read()))
    songs = [name for name in archive.namelist() if name.endswith(".mp3")]
    assert len(songs) == 1
    assert songs[0].startswith("01 Kept (")
    assert "# unavailable: Hidden" in archive.read("setlist.m3u8").decode()


def test_an_export_runs_once(owner):
    setlist = services.setlist_create(user=owner, name="Once")
    services.setlist_item_add(setlist=setlist, track_id=TrackFactory().pk, settings={})
    export = services.setlist_export_request(setlist=setlist, user=owner, export_format="zip")
    assert setlist_services.setlist_export_run(export_id=export.pk) is not None
    assert setlist_services.setlist_export_run(export_id=export.pk) is None


def test_an_export_renders_like_a_worker_with_the_sound_set_and_the_producers_sections(
    owner, monkeypatch, settings
):
    # Given a song whose producer renamed its sections, asked in a sound set and rearranged by name
    track = TrackFactory(title="Renamed")
    revision = track.current_revision
    revision_sections_update(
        user=track.producer, revision=revision, sections=[{"name": "Opening", "start_bar": 1}]
    )
    slug = next(iter(settings.SOUND_SETS))
    setlist = services.setlist_create(user=owner, name="Sounds")
    services.setlist_item_add(
        setlist=setlist, track_id=track.pk, settings={"sound": slug, "arrangement": ["Opening x2"]}
    )
    used: dict[str, object] = {}
    real = render_execution.render_variant

    def spy(arrangement, variant, **kwargs):
        used["soundfont"] = str(kwargs["soundfont"])
        used["sections"] = [section["name"] for section in arrangement.analysis["sections"]]
        return real(arrangement, variant, **kwargs)

    monkeypatch.setattr(render_execution, "render_variant", spy)
    # When it is exported
    export = _export(setlist, owner, "zip")
    # Then the song was rendered with that sound set, arranged by the producer's sections
    assert export.status == SetlistExportStatus.DONE, export.error
    assert used["soundfont"] == str(settings.SOUND_SETS[slug]["path"])
    assert used["sections"] == ["Opening"]


def _refuse_rendering(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("rendered again")

    monkeypatch.setattr(render_execution, "render_variant", refuse)
    monkeypatch.setattr(setlist_services, "render_variant", refuse)


def test_a_song_the_export_rendered_is_kept_as_a_render_that_later_requests_and_exports_reuse(
    owner, monkeypatch, settings
):
    # Given a one-song setlist whose variant was never rendered
    settings.RENDER_MAX_ACTIVE_PER_USER = 1
    track = TrackFactory(title="Kept Song")
    setlist = services.setlist_create(user=owner, name="Keep")
    services.setlist_item_add(setlist=setlist, track_id=track.pk, settings={"transpose": -1}, gap_s=0)
    item = setlist.items.get()
    # When it is exported
    first = _export(setlist, owner, "zip")
    assert first.status == SetlistExportStatus.DONE, first.error
    # Then the song is the revision's finished render of those settings, requested by nobody
    render = Render.objects.get(revision=track.current_revision)
    variant = services.render_settings_normalise(
        revision=track.current_revision, settings=item.settings, user=owner
    )
    assert render.settings_hash == variant.cache_key()
    assert render.status == RenderStatus.DONE
    assert render.requested_by is None
    assert render.audio.name == render_storage_name(render=render)
    assert render.key
    assert render.tempo_bpm
    assert (render.duration_s or 0.0) > 10
    with default_storage.open(first.file.name, "rb") as handle:
        archive = zipfile.ZipFile(io.BytesIO(handle.read()))
    with default_storage.open(render.audio.name, "rb") as handle:
        assert archive.read(archive.namelist()[0]) == handle.read()
    # and nothing renders it again: a second export and the owner's own request reuse it
    _refuse_rendering(monkeypatch)
    second = _export(setlist, owner, "zip")
    assert second.status == SetlistExportStatus.DONE, second.error
    again, created = services.render_request(
        user=owner, revision=track.current_revision, settings=item.settings
    )
    assert (again.pk, again.status, created) == (render.pk, RenderStatus.DONE, False)
    assert Render.objects.count() == 1
    # and it counted against nobody's cap: the owner may still ask for one new render
    other, created = services.render_request(
        user=owner, revision=track.current_revision, settings={"transpose": 3}
    )
    assert created
    assert other.status == RenderStatus.QUEUED


def test_an_export_takes_over_a_queued_render_of_the_same_variant(owner):
    # Given a singer's render of the variant, queued and not yet taken by a worker
    singer = PerformerFactory()
    track = TrackFactory(title="Queued Song")
    queued, _ = services.render_request(
        user=singer, revision=track.current_revision, settings={"transpose": 1}
    )
    setlist = services.setlist_create(user=owner, name="Takeover")
    services.setlist_item_add(setlist=setlist, track_id=track.pk, settings={"transpose": 1}, gap_s=0)
    # When the setlist is exported
    export = _export(setlist, owner, "zip")
    # Then the export rendered that very row: it is done, still the singer's, and nothing is left queued
    assert export.status == SetlistExportStatus.DONE, export.error
    queued.refresh_from_db()
    assert queued.status == RenderStatus.DONE
    assert queued.requested_by == singer
    assert default_storage.exists(queued.audio.name)
    assert Render.objects.count() == 1


def test_a_song_being_rendered_by_a_worker_is_rendered_for_the_export_without_touching_its_row(owner):
    # Given the variant rendering on a live worker right now
    track = TrackFactory(title="Busy Song")
    busy, _ = services.render_request(user=PerformerFactory(), revision=track.current_revision, settings={})
    services.render_claim(render_id=busy.pk, task_id="live-worker")
    setlist = services.setlist_create(user=owner, name="Busy")
    services.setlist_item_add(setlist=setlist, track_id=track.pk, settings={}, gap_s=0)
    # When the setlist is exported
    export = _export(setlist, owner, "zip")
    # Then the song is in the export, and the worker's render is left to the worker
    assert export.status == SetlistExportStatus.DONE, export.error
    busy.refresh_from_db()
    assert (busy.status, busy.task_id, busy.audio.name) == (RenderStatus.RENDERING, "live-worker", "")


def test_a_failed_song_leaves_its_render_failed_with_the_reason(owner, monkeypatch):
    # Given a song the engine cannot render
    track = TrackFactory(title="Doomed")
    setlist = services.setlist_create(user=owner, name="Doom")
    services.setlist_item_add(setlist=setlist, track_id=track.pk, settings={})

    def fail(*args, **kwargs):
        raise EngineError("no sound at all")

    monkeypatch.setattr(render_execution, "render_variant", fail)
    # When it is exported
    export = _export(setlist, owner, "zip")
    # Then the export failed naming it, and its render row says why (a later request restarts it)
    assert export.error == "Doomed: no sound at all"
    render = Render.objects.get(revision=track.current_revision)
    assert (render.status, render.error, render.audio.name) == (RenderStatus.FAILED, "no sound at all", "")
