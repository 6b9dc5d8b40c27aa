"""Object storage for real (moto's S3 server on loopback) and stems that travel between workers:
arrangements read and MP3s written through the storage API, downloads redirected to a short-lived
signed URL, nothing in MEDIA_ROOT; stems shared through storage, fetched by a worker that lacks them,
and pruned by the storage budget."""

# ruff: noqa: F811 - the S3 fixtures are imported from tests.s3 and requested by name

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from django.core.files.storage import default_storage

from tests.conftest import stored_files
from tests.s3 import SIGNED_URL_SECONDS, s3_server, s3_storage  # noqa: F401 (fixtures)
from tracks import services, tasks
from tracks.models import Render, RenderStatus
from tracks.services import stems as stem_services

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_writes_from_render_threads(monkeypatch: Any, settings: Any) -> None:
    """Progress and heartbeat writes come from other threads, which on SQLite wait for this test's
    open transaction; they are not what these tests are about."""
    from tracks.services import render_execution

    monkeypatch.setattr(render_execution, "_progress_writer", lambda render_id: lambda fraction: None)
    settings.RENDER_HEARTBEAT_S = 3600


@pytest.fixture(autouse=True)
def _fresh_rates() -> Iterator[None]:
    """Whether to fetch is priced from speeds this process measured: start each test from none."""
    stem_services.stems_rates_reset()
    yield
    stem_services.stems_rates_reset()


def render_now(*, user: Any, revision: Any, settings: dict, task_id: str) -> Render:
    render, _ = services.render_request(user=user, revision=revision, settings=settings)
    return services.render_execute(render=services.render_claim(render_id=render.pk, task_id=task_id))


def probe_mp3(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(out.strip())


def test_a_render_reads_and_writes_through_s3_and_downloads_by_a_short_lived_signed_url(
    s3_storage, track, performer, client_for, isolated_media, tmp_path
):
    # given: the track's arrangement lives in the bucket
    assert s3_storage.names("") == [track.current_revision.midi.name]

    # when: a singer's render runs and the singer downloads it
    done = render_now(user=performer, revision=track.current_revision, settings={"transpose": 2}, task_id="a")
    response = client_for(performer).get(f"/api/renders/{done.pk}/download/")

    # then: the MP3 is in the bucket, the download redirects to a signed URL that expires soon
    assert done.status == RenderStatus.DONE, done.error
    assert services.render_storage_name(render=done) in s3_storage.names("renders/")
    assert response.status_code == 302
    url = response["Location"]
    assert url.startswith(s3_storage.endpoint)
    query = parse_qs(urlparse(url).query)
    assert query["X-Amz-Expires"] == [str(SIGNED_URL_SECONDS)]
    assert "X-Amz-Signature" in query
    audio = tmp_path / "download.mp3"
    with urllib.request.urlopen(url) as body:  # noqa: S310 (a loopback URL the test made)
        audio.write_bytes(body.read())
    assert probe_mp3(audio) == pytest.approx(done.duration_s, abs=0.15)
    # and nothing was written to the local media folder
    assert stored_files(isolated_media) == []


def test_the_stems_job_shares_its_stems_through_storage(s3_storage, track, performer, isolated_media):
    # given: a first render
    first = render_now(user=performer, revision=track.current_revision, settings={}, task_id="a")

    # when: the stems job runs on this worker
    assert tasks.render_stems_prepare.apply(args=[first.pk]).get() is True

    # then: one stem set for (revision, key and tempo) is in the bucket, nothing in MEDIA_ROOT
    shared = s3_storage.names(f"stems/{track.current_revision.pk}/")
    assert len(shared) == 1
    assert shared[0].endswith(".tar")
    assert stored_files(isolated_media) == []


def test_a_worker_without_the_stems_fetches_them_for_a_mix_change(
    s3_storage, track, performer, settings, tmp_path, monkeypatch
):
    # given: a first render and its stems, built and shared by another worker
    first = render_now(user=performer, revision=track.current_revision, settings={}, task_id="a")
    services.render_stems_prepare(render_id=first.pk)
    # this worker is another machine: its own, empty cache, and no synthesis allowed
    settings.RENDER_CACHE_DIR = tmp_path / "other-worker-cache"
    from tracks.engine import render as engine_render

    def no_synthesis(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the mix change synthesized instead of fetching the stems")

    monkeypatch.setattr(engine_render, "_render_groups", no_synthesis)
    settings.RENDER_STEMS_FETCH_MB_PER_S = 100_000.0  # a fast link: fetching is the cheaper way

    # when: a mix change of the same key and tempo runs through the render task
    mix_change, _ = services.render_request(
        user=performer, revision=track.current_revision, settings={"mix": {"1": {"gain_db": -6}}}
    )
    tasks.render_run.apply(args=[mix_change.pk])

    # then: it was served from the fetched stems
    mix_change.refresh_from_db()
    assert mix_change.status == RenderStatus.DONE, mix_change.error
    assert mix_change.stems_reused is True
    assert any(Path(settings.RENDER_CACHE_DIR, "stems", str(track.current_revision.pk)).iterdir())


def test_a_damaged_stem_archive_is_ignored_and_the_render_synthesizes(s3_storage, track, performer, settings):
    # given: a stem set whose archive in storage is damaged
    first = render_now(user=performer, revision=track.current_revision, settings={}, task_id="a")
    services.render_stems_prepare(render_id=first.pk)
    (name,) = s3_storage.names("stems/")
    s3_storage.client.put_object(Bucket=s3_storage.bucket, Key=name, Body=b"not a tar")
    settings.RENDER_CACHE_DIR = Path(settings.RENDER_CACHE_DIR).parent / "fresh-cache"

    # when
    mix_change, _ = services.render_request(
        user=performer, revision=track.current_revision, settings={"mix": {"0": {"mute": True}}}
    )
    tasks.render_run.apply(args=[mix_change.pk])

    # then: the render is done anyway, by synthesis
    mix_change.refresh_from_db()
    assert mix_change.status == RenderStatus.DONE, mix_change.error
    assert mix_change.stems_reused is False


def test_stems_in_storage_are_pruned_by_the_budget(s3_storage, track, performer):
    # given: two stem sets in storage (two keys)
    for task_id, transpose in (("a", 0), ("b", 2)):
        render = render_now(
            user=performer,
            revision=track.current_revision,
            settings={"transpose": transpose},
            task_id=task_id,
        )
        services.render_stems_prepare(render_id=render.pk)
    names = s3_storage.names("stems/")
    assert len(names) == 2
    one_set = default_storage.size(names[0])

    # when: the budget holds one set
    report = stem_services.stems_storage_prune(budget_bytes=one_set + 1, busy_revisions=set())

    # then: the older set went, the newer stays
    assert report["stored_stems_deleted"] == 1
    assert s3_storage.names("stems/") == [names[1]] or len(s3_storage.names("stems/")) == 1


def test_stems_of_a_deleted_revision_leave_storage_and_busy_ones_stay(s3_storage, track, performer):
    # given: a stem set in storage
    render = render_now(user=performer, revision=track.current_revision, settings={}, task_id="a")
    services.render_stems_prepare(render_id=render.pk)
    revision_id = track.current_revision.pk

    # when: its revision is busy, even a zero budget keeps it
    stem_services.stems_storage_prune(budget_bytes=0, busy_revisions={revision_id})
    assert len(s3_storage.names("stems/")) == 1

    # when: the track is deleted
    track.delete()
    stem_services.stems_storage_prune(budget_bytes=10**12, busy_revisions=set())

    # then
    assert s3_storage.names("stems/") == []


def test_a_stored_stem_set_is_named_by_what_decides_its_samples(track, monkeypatch):
    from tracks.engine import VariantSettings
    from tracks.engine import render as engine_render
    from tracks.services.sounds import sound_path
    from tracks.services.storage import revision_arrangement_load

    # given: a revision's arrangement and an arranged variant (it follows the sections)
    revision = track.current_revision
    arrangement = revision_arrangement_load(revision=revision)
    variant = VariantSettings.from_dict({"transpose": 2, "dynamics": "build"})
    soundfont = sound_path(slug=variant.sound)

    def name() -> str:
        return stem_services.stem_archive_name(
            revision_id=revision.pk, arrangement=arrangement, variant=variant, soundfont=soundfont
        )

    # when / then: the same set gets the same name on every call
    first = name()
    assert first == name()
    assert first.startswith(f"stems/{revision.pk}/")
    assert first.endswith(".tar")
    # another FluidSynth or other effects (another machine's engine) name another set
    monkeypatch.setattr(engine_render, "synth_identity", lambda: "fluidsynth 9.9.9; other effects")
    assert name() != first
    monkeypatch.undo()
    # and so do corrected sections, which dynamics follow
    sections = [dict(section) for section in arrangement.analysis["sections"]]
    sections[0]["end_bar"] = sections[0]["end_bar"] - 1  # a producer moved a boundary
    monkeypatch.setitem(arrangement.analysis, "sections", sections)
    monkeypatch.delitem(arrangement.analysis, "original_sections", raising=False)
    assert name() != first


def test_a_render_without_stems_in_storage_does_not_load_its_song_to_look(
    s3_storage, track, performer, monkeypatch
):
    # given: a render of a revision whose stems nobody shared
    render, _ = services.render_request(user=performer, revision=track.current_revision, settings={})

    loads: list[Any] = []
    load = stem_services.revision_arrangement_load

    def counted_load(**kwargs: Any) -> Any:
        loads.append(kwargs)
        return load(**kwargs)

    monkeypatch.setattr(stem_services, "revision_arrangement_load", counted_load)

    # when: it looks for stems before synthesizing
    fetched = stem_services.stems_fetch(render=render)

    # then: one listing answered; the song was not loaded and nothing was fetched
    assert fetched is False
    assert loads == []
