"""Stems that travel, priced per render: a worker that lacks a render's stems fetches them only when
the archive's size over its measured fetch throughput is less than the song's length times its
audible parts over its measured synthesis speed; both speeds are running means of this process."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import FileSystemStorage, default_storage

from tracks import services
from tracks.models import Render, RenderStatus
from tracks.services import stems as stem_services
from tracks.services.stems import stems_fetch, stems_fetch_is_cheaper


@pytest.fixture(autouse=True)
def _fresh_rates() -> Iterator[None]:
    """The speeds are module-level: every test starts, and leaves, with none measured."""
    stem_services.stems_rates_reset()
    yield
    stem_services.stems_rates_reset()


@pytest.fixture(autouse=True)
def _no_writes_from_render_threads(monkeypatch: Any, settings: Any) -> None:
    """Progress and heartbeat writes come from other threads, which on SQLite wait for this test's
    open transaction; they are not what these tests are about."""
    from tracks.services import render_execution

    monkeypatch.setattr(render_execution, "_progress_writer", lambda render_id: lambda fraction: None)
    settings.RENDER_HEARTBEAT_S = 3600


# --- the pricing rule -------------------------------------------------------------------------------


def test_fetching_is_cheaper_when_the_archive_comes_faster_than_the_parts_synthesize() -> None:
    # 100 MB at 200 MB/s is 0.5 s; 60 s x 8 parts at 240 part-seconds per second is 2 s
    assert stems_fetch_is_cheaper(
        archive_bytes=100_000_000, fetch_bytes_per_s=200e6, audio_s=60.0, parts=8, synth_audio_s_per_s=240.0
    )


def test_synthesizing_is_cheaper_over_a_slow_link() -> None:
    # 100 MB at 10 MB/s is 10 s; the same 2 s of synthesis
    assert not stems_fetch_is_cheaper(
        archive_bytes=100_000_000, fetch_bytes_per_s=10e6, audio_s=60.0, parts=8, synth_audio_s_per_s=240.0
    )


def test_a_render_with_nothing_audible_never_fetches() -> None:
    assert not stems_fetch_is_cheaper(
        archive_bytes=1, fetch_bytes_per_s=1e12, audio_s=60.0, parts=0, synth_audio_s_per_s=240.0
    )


def test_more_parts_tip_the_balance_towards_fetching() -> None:
    priced: dict[str, Any] = {
        "archive_bytes": 100_000_000,
        "fetch_bytes_per_s": 50e6,
        "audio_s": 60.0,
        "synth_audio_s_per_s": 240.0,
    }
    assert not stems_fetch_is_cheaper(**priced, parts=4)  # 2 s against 1 s
    assert stems_fetch_is_cheaper(**priced, parts=16)  # 2 s against 4 s


def test_the_estimates_are_size_over_throughput_and_work_over_speed() -> None:
    fetch_s, synth_s = stem_services.stems_estimates(
        archive_bytes=100_000_000, fetch_bytes_per_s=200e6, audio_s=60.0, parts=8, synth_audio_s_per_s=240.0
    )
    assert fetch_s == pytest.approx(0.5)
    assert synth_s == pytest.approx(2.0)


def test_the_speeds_are_running_means_starting_from_the_defaults(settings: Any) -> None:
    settings.RENDER_STEMS_FETCH_MB_PER_S = 80.0
    assert stem_services.stems_rates() == {
        "fetch": 80e6,
        "render": stem_services.DEFAULT_RENDER_PART_S_PER_S,
        "build": stem_services.DEFAULT_BUILD_PART_S_PER_S,
    }
    stem_services.stems_fetch_observe(archive_bytes=100, seconds=1.0)
    assert stem_services.stems_rates()["fetch"] == pytest.approx(100.0)  # the first one replaces the default
    stem_services.stems_fetch_observe(archive_bytes=200, seconds=1.0)
    weight = stem_services.RATE_WEIGHT
    assert stem_services.stems_rates()["fetch"] == pytest.approx((1 - weight) * 100 + weight * 200)
    stem_services.stems_synthesis_observe(audio_s=30.0, parts=4, seconds=2.0)
    assert stem_services.stems_rates()["render"] == pytest.approx(60.0)
    stem_services.stems_synthesis_observe(audio_s=30.0, parts=4, seconds=20.0, build=True)
    assert stem_services.stems_rates()["build"] == pytest.approx(6.0)
    assert stem_services.stems_rates()["render"] == pytest.approx(60.0)
    # a measurement of nothing (no time, no bytes) is ignored
    stem_services.stems_synthesis_observe(audio_s=30.0, parts=4, seconds=0.0)
    stem_services.stems_fetch_observe(archive_bytes=0, seconds=1.0)
    assert stem_services.stems_rates()["render"] == pytest.approx(60.0)
    assert stem_services.stems_rates()["fetch"] == pytest.approx((1 - weight) * 100 + weight * 200)


# --- the wiring -------------------------------------------------------------------------------------


def render_now(*, user: Any, revision: Any, settings: dict, task_id: str) -> Render:
    render, _ = services.render_request(user=user, revision=revision, settings=settings)
    return services.render_execute(render=services.render_claim(render_id=render.pk, task_id=task_id))


@pytest.fixture
def shared_stems(settings: Any, track: Any, performer: Any, tmp_path: Path) -> str:
    """A first render's stems, built and shared through (filesystem) storage by another worker; this
    worker has its own, empty cache. Returns the archive's name."""
    settings.RENDER_SHARE_STEMS = True
    first = render_now(user=performer, revision=track.current_revision, settings={}, task_id="a")
    assert services.render_stems_prepare(render_id=first.pk)
    _, (archive,) = default_storage.listdir(f"stems/{track.current_revision.pk}")
    settings.RENDER_CACHE_DIR = tmp_path / "other-worker-cache"
    stem_services.stems_rates_reset()  # the sharing measured an upload: start from known speeds
    return f"stems/{track.current_revision.pk}/{archive}"


def mix_change(*, performer: Any, track: Any) -> Render:
    render, _ = services.render_request(
        user=performer, revision=track.current_revision, settings={"mix": {"1": {"gain_db": -6}}}
    )
    claimed = services.render_claim(render_id=render.pk, task_id="b")
    assert claimed is not None
    return claimed


def local_stems(settings: Any, track: Any) -> list[Path]:
    folder = Path(settings.RENDER_CACHE_DIR, "stems", str(track.current_revision.pk))
    return list(folder.iterdir()) if folder.is_dir() else []


@pytest.mark.django_db
def test_a_fast_link_fetches_the_stems_and_says_why(
    shared_stems: str, track: Any, performer: Any, settings: Any, caplog: Any
) -> None:
    # given: this worker fetches fast and synthesizes slowly
    stem_services.stems_fetch_observe(archive_bytes=10**12, seconds=1.0)
    stem_services.stems_synthesis_observe(audio_s=1.0, parts=1, seconds=1000.0)
    render = mix_change(performer=performer, track=track)

    # when
    with caplog.at_level(logging.INFO, logger="tracks.services.stems"):
        fetched = stems_fetch(render=render)

    # then: fetched, and the log gives both estimates
    assert fetched is True
    assert local_stems(settings, track)
    assert f"render {render.pk}: fetching stems (est. " in caplog.text
    assert "rather than synthesizing (est. " in caplog.text
    # and the fetch was measured: the running mean moved from the huge pinned throughput
    assert stem_services.stems_rates()["fetch"] < 10**12
    # and the render is then served from the fetched stems
    done = services.render_execute(render=render)
    assert done.status == RenderStatus.DONE, done.error
    assert done.stems_reused is True


@pytest.mark.django_db
def test_a_slow_link_synthesizes_instead(
    shared_stems: str, track: Any, performer: Any, settings: Any, caplog: Any
) -> None:
    # given: this worker fetches slowly and synthesizes fast
    stem_services.stems_fetch_observe(archive_bytes=1, seconds=1000.0)
    stem_services.stems_synthesis_observe(audio_s=10**6, parts=1, seconds=1.0)
    render = mix_change(performer=performer, track=track)

    # when
    with caplog.at_level(logging.INFO, logger="tracks.services.stems"):
        fetched = stems_fetch(render=render)

    # then: nothing fetched, and the log says why
    assert fetched is False
    assert local_stems(settings, track) == []
    assert f"render {render.pk}: synthesizing (est. " in caplog.text
    assert "rather than fetching stems (est. " in caplog.text
    done = services.render_execute(render=render)
    assert done.status == RenderStatus.DONE, done.error
    assert done.stems_reused is False


@pytest.mark.django_db
def test_a_render_that_synthesized_feeds_the_synthesis_speed(
    settings: Any, track: Any, performer: Any
) -> None:
    # given: a render with no stems anywhere
    settings.RENDER_SHARE_STEMS = True
    requested, _ = services.render_request(user=performer, revision=track.current_revision, settings={})
    first = services.render_claim(render_id=requested.pk, task_id="a")
    assert first is not None
    assert stems_fetch(render=first) is False
    # when it synthesizes
    done = services.render_execute(render=first)
    assert done.stems_reused is False
    # then its speed replaced the assumed one
    assert stem_services.stems_rates()["render"] != stem_services.DEFAULT_RENDER_PART_S_PER_S
    # and its stem build measured the build speed
    assert services.render_stems_prepare(render_id=first.pk)
    assert stem_services.stems_rates()["build"] != stem_services.DEFAULT_BUILD_PART_S_PER_S


@pytest.mark.django_db
def test_the_stems_job_fetches_a_shared_set_rather_than_building_it(
    shared_stems: str, track: Any, performer: Any, settings: Any, monkeypatch: Any
) -> None:
    # given: another worker shared the set; this one's link is fast and building is slow (the default)
    stem_services.stems_fetch_observe(archive_bytes=10**12, seconds=1.0)
    done = services.render_execute(render=mix_change(performer=performer, track=track))
    assert done.stems_reused is False  # render_execute alone never fetches: the render task does
    from tracks.engine import render as engine_render

    def no_build(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the stems job synthesized a set it could fetch")

    monkeypatch.setattr(engine_render, "_synthesize", no_build)
    # when: the stems job runs for it
    services.render_stems_prepare(render_id=done.pk)
    # then: the set came from storage
    assert local_stems(settings, track)


@pytest.mark.django_db
def test_pricing_trouble_never_raises(
    shared_stems: str, track: Any, performer: Any, monkeypatch: Any
) -> None:
    # given: the storage cannot tell the archive's size
    def broken(self: Any, name: str) -> int:
        raise OSError("storage unavailable")

    monkeypatch.setattr(FileSystemStorage, "size", broken)

    # when / then: no fetch, no error
    assert stems_fetch(render=mix_change(performer=performer, track=track)) is False


@pytest.mark.django_db
def test_a_fetched_set_of_a_variant_arranged_by_the_producers_sections_serves_its_render(
    settings: Any, track: Any, performer: Any, tmp_path: Path
) -> None:
    from tracks.services.sections import revision_sections_update

    # given: the producer named the sections, and another worker shared the stems of a variant
    # arranged by them
    settings.RENDER_SHARE_STEMS = True
    revision = track.current_revision
    revision_sections_update(
        user=track.producer, revision=revision, sections=[{"name": "Opening", "start_bar": 1}]
    )
    arranged = {"arrangement": ["Opening x2"]}
    first = render_now(user=performer, revision=revision, settings=arranged, task_id="a")
    assert first.status == RenderStatus.DONE, first.error
    assert services.render_stems_prepare(render_id=first.pk)
    settings.RENDER_CACHE_DIR = tmp_path / "other-worker-cache"
    stem_services.stems_rates_reset()
    stem_services.stems_fetch_observe(archive_bytes=10**12, seconds=1.0)  # a fast link
    # when: a mix change of that variant is fetched for on this worker
    requested, _ = services.render_request(
        user=performer, revision=revision, settings={**arranged, "mix": {"1": {"gain_db": -6}}}
    )
    render = services.render_claim(render_id=requested.pk, task_id="b")
    assert render is not None
    assert stems_fetch(render=render) is True
    # then: the render finds the fetched stems where it looks for them
    done = services.render_execute(render=render)
    assert done.status == RenderStatus.DONE, done.error
    assert done.stems_reused is True
