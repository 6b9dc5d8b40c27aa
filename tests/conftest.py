"""Shared fixtures: isolated media and render cache per test, users, API clients, MIDI files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from tests.factories import PerformerFactory, ProducerFactory, TrackFactory, song_bytes


@pytest.fixture(autouse=True)
def isolated_media(settings: Any, tmp_path: Path) -> Path:
    """Each test stores arrangements and renders in its own folder (so "no file left" is checkable)."""
    media = tmp_path / "media"
    media.mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(media), "base_url": "/media/"},
        },
    }
    settings.MEDIA_ROOT = media
    settings.RENDER_CACHE_DIR = tmp_path / "render-cache"
    return media


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    """Throttle counters live in the cache; every test starts with none."""
    cache.clear()
    yield
    cache.clear()


def stored_files(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


@pytest.fixture
def midi_bytes() -> bytes:
    return song_bytes()


@pytest.fixture
def midi_upload(midi_bytes: bytes) -> Callable[..., SimpleUploadedFile]:
    def make(data: bytes | None = None, name: str = "song.mid") -> SimpleUploadedFile:
        return SimpleUploadedFile(name, midi_bytes if data is None else data, content_type="audio/midi")

    return make


@pytest.fixture
def producer(db: None) -> Any:
    return ProducerFactory()


@pytest.fixture
def performer(db: None) -> Any:
    return PerformerFactory()


@pytest.fixture
def track(producer: Any) -> Any:
    return TrackFactory(producer=producer, title="Harbour Lights")


@pytest.fixture
def private_track(producer: Any) -> Any:
    return TrackFactory(producer=producer, title="Secret Demo", is_public=False)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def client_for() -> Callable[[Any], APIClient]:
    """An API client authenticated as the given user (force_authenticate: no password round trip)."""

    def make(user: Any) -> APIClient:
        client = APIClient()
        client.force_authenticate(user=user)
        return client

    return make


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Capture render enqueues instead of talking to Redis; returns the render ids handed over."""
    calls: list[int] = []

    class _Result:
        id = "test-task-id"

    def fake_apply_async(args: list[Any], **kwargs: Any) -> _Result:
        calls.append(args[0])
        return _Result()

    from tracks.tasks import render_run

    monkeypatch.setattr(render_run, "apply_async", fake_apply_async)
    return calls
