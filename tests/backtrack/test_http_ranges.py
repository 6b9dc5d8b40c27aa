"""Byte ranges: one parser with bounded numbers, one streamed response, the same on every audio view."""

from __future__ import annotations

import io
from typing import Any, cast
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import Storage
from django.db.models.fields.files import FieldFile
from django.test import Client
from storages.backends.s3 import S3Storage

from backtrack import http_ranges
from backtrack.http_ranges import UNSATISFIABLE, parse_range, range_starts_the_file, stored_file_response
from tests.factories import RenderFactory
from tracks.models import Render, RenderStatus

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", (0, 99)),
        ("bytes=100-", (100, SIZE - 1)),
        ("bytes=0-", (0, SIZE - 1)),
        ("bytes=990-5000", (990, SIZE - 1)),  # the end is clamped to the last byte
        ("bytes=-100", (900, SIZE - 1)),  # the last 100 bytes
        ("bytes=-5000", (0, SIZE - 1)),  # a suffix longer than the file is the whole file
        (" bytes=5-9 ", (5, 9)),
        ("bytes=999-999", (999, 999)),
    ],
)
def test_a_single_range_is_resolved_against_the_size(header: str, expected: tuple[int, int]) -> None:
    assert parse_range(header, SIZE) == expected


@pytest.mark.parametrize(
    "header", ["bytes=1000-", "bytes=1000-2000", "bytes=123456789012345678-", "bytes=-0"]
)
def test_a_range_that_selects_no_byte_is_unsatisfiable(header: str) -> None:
    assert parse_range(header, SIZE) is UNSATISFIABLE


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "bytes=-",
        "bytes=9-3",
        "bytes=0-1,5-9",  # several ranges: served whole
        "items=0-9",
        "bytes=a-b",
        "bytes 0-9",
        "bytes=0-" + "9" * 5000,  # bounded digit counts: a 5000-digit number is malformed, not a 500
        "bytes=" + "9" * 5000 + "-",
        "bytes=-" + "9" * 19,
    ],
)
def test_anything_else_means_the_whole_file(header: str | None) -> None:
    assert parse_range(header, SIZE) is None


def test_an_empty_file_satisfies_no_range() -> None:
    assert parse_range("bytes=0-", 0) is UNSATISFIABLE
    assert parse_range("bytes=-5", 0) is UNSATISFIABLE
    assert parse_range(None, 0) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, True), ("bytes=0-", True), ("bytes=0-99", True), ("bytes=500-", False), ("bytes=-100", False)],
)
def test_a_playback_starts_with_the_first_byte(header: str | None, expected: bool) -> None:
    assert range_starts_the_file(header) is expected


class ReadRecorder(io.BytesIO):
    """An in-memory file that records how much each read asked for."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads: list[int] = []

    def read(self, size: int | None = -1) -> bytes:
        self.reads.append(-1 if size is None else size)
        return super().read(size)


def test_blocks_are_read_one_at_a_time_and_stop_at_the_end_of_the_range() -> None:
    # given a 300 KB file
    data = bytes(range(256)) * 1200
    handle = ReadRecorder(data)

    # when bytes 1000 to 200000 are iterated
    blocks = list(http_ranges.FileBlocks(handle, 1000, 200_000))

    # then they are exactly that range, read in bounded blocks (never the whole file at once)
    assert b"".join(blocks) == data[1000:200_001]
    assert all(0 < size <= http_ranges.BLOCK_SIZE for size in handle.reads)
    assert len(handle.reads) == len(blocks)


# --- the audio views --------------------------------------------------------------------------------

AUDIO = b"ID3" + bytes(range(256)) * 400  # 102403 bytes: more than one block


@pytest.fixture
def done_render(db: None) -> Render:
    render = cast(
        Render, RenderFactory(status=RenderStatus.DONE, key="D major", tempo_bpm=96.0, duration_s=12.5)
    )
    render.audio.save(f"renders/{render.pk}.mp3", ContentFile(AUDIO), save=True)
    return render


def audio_urls(render: Render) -> list[str]:
    """The page's player source and the API download: they must answer ranges alike."""
    return [f"/renders/{render.pk}/audio/", f"/api/renders/{render.pk}/download/"]


@pytest.mark.django_db
@pytest.mark.parametrize("which", [0, 1], ids=["page", "api"])
def test_both_audio_views_stream_the_whole_file_for_bytes_0(
    client: Client, done_render: Render, which: int
) -> None:
    response = client.get(audio_urls(done_render)[which], HTTP_RANGE="bytes=0-")

    assert response.status_code == 206
    assert response.streaming
    assert response["Content-Range"] == f"bytes 0-{len(AUDIO) - 1}/{len(AUDIO)}"
    assert response["Content-Length"] == str(len(AUDIO))
    blocks = list(response.streaming_content)
    assert len(blocks) > 1  # in blocks, not read whole
    assert b"".join(blocks) == AUDIO


@pytest.mark.django_db
@pytest.mark.parametrize("which", [0, 1], ids=["page", "api"])
@pytest.mark.parametrize(
    ("header", "status", "body"),
    [
        pytest.param("bytes=3-9", 206, AUDIO[3:10], id="seek"),
        pytest.param("bytes=-10", 206, AUDIO[-10:], id="suffix"),
        pytest.param("bytes=100000-", 206, AUDIO[100000:], id="open-ended"),
        pytest.param("bytes=0-" + "9" * 5000, 200, AUDIO, id="5000-digits"),
        pytest.param("bytes=0-1,5-9", 200, AUDIO, id="multi-range"),
        pytest.param(None, 200, AUDIO, id="no-range"),
    ],
)
def test_both_audio_views_answer_ranges_alike(
    client: Client, done_render: Render, which: int, header: str | None, status: int, body: bytes
) -> None:
    extra = {"HTTP_RANGE": header} if header else {}

    response = client.get(audio_urls(done_render)[which], **extra)

    assert response.status_code == status
    assert response.streaming
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Length"] == str(len(body))
    assert b"".join(response.streaming_content) == body


@pytest.mark.django_db
@pytest.mark.parametrize("which", [0, 1], ids=["page", "api"])
@pytest.mark.parametrize("header", [f"bytes={len(AUDIO)}-", "bytes=" + "9" * 18 + "-", "bytes=-0"])
def test_both_audio_views_answer_416_for_a_range_outside_the_file(
    client: Client, done_render: Render, which: int, header: str
) -> None:
    response = client.get(audio_urls(done_render)[which], HTTP_RANGE=header)

    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(AUDIO)}"


@pytest.mark.django_db
def test_the_download_keeps_its_attachment_name_on_a_range(client: Client, done_render: Render) -> None:
    response = client.get(f"/api/renders/{done_render.pk}/download/", HTTP_RANGE="bytes=10-")

    assert response.status_code == 206
    assert response["Content-Disposition"].startswith('attachment; filename="')
    assert response["X-Content-Type-Options"] == "nosniff"


# --- storage that serves its own files ---------------------------------------------------------------


class StubS3(S3Storage):
    """S3 without a network: signs nothing, records what the URL was asked to carry."""

    def url(self, name: str, parameters: Any = None, expire: Any = None, http_method: Any = None) -> str:
        return f"https://bucket.example/{name}?{urlencode({'X-Amz-Signature': 'stub', **(parameters or {})})}"

    def open(self, name: str, mode: str = "rb") -> Any:
        raise AssertionError("S3 files are not streamed through the app")


class ElsewhereStorage(Storage):
    def url(self, name: str | None) -> str:
        return f"https://cdn.example/{name}"


def field_file(storage: Storage, name: str = "renders/1.mp3") -> FieldFile:
    file = FieldFile(None, Render._meta.get_field("audio"), name)
    file.storage = storage
    return file


def test_s3_storage_is_answered_with_a_redirect_to_its_signed_url() -> None:
    file = field_file(StubS3(bucket_name="b"))

    response = stored_file_response(
        file, range_header="bytes=0-", content_type="audio/mpeg", filename="Song.mp3", as_attachment=True
    )

    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.netloc == "bucket.example"
    assert location.path == "/renders/1.mp3"
    assert parse_qs(location.query) == {
        "X-Amz-Signature": ["stub"],
        "ResponseContentDisposition": ['attachment; filename="Song.mp3"'],
    }
    assert response["Cache-Control"] == "private, no-store"


def test_other_remote_storage_is_redirected_to_its_url() -> None:
    file = field_file(ElsewhereStorage())

    response = stored_file_response(file, range_header=None, content_type="audio/mpeg")

    assert response.status_code == 302
    assert response["Location"] == "https://cdn.example/renders/1.mp3"
