"""A request body over its limit is refused with 413 before anything reads it."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.handlers.exception import convert_exception_to_response
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.urls import reverse

from backtrack.middleware import RequestBodyLimitMiddleware
from tests.conftest import stored_files
from tests.factories import ProducerFactory
from tracks.models import Track

pytestmark = pytest.mark.django_db

TWENTY_MB = 20 * 1024 * 1024


class CountingInput:
    """A wsgi.input that counts the bytes the server side takes from it."""

    def __init__(self, data: bytes) -> None:
        self._stream = io.BytesIO(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = self._stream.read(size)
        self.bytes_read += len(data)
        return data

    def readline(self, size: int | None = -1) -> bytes:
        data = self._stream.readline(size)
        self.bytes_read += len(data)
        return data


def big_upload_body(size: int = TWENTY_MB) -> bytes:
    midi = SimpleUploadedFile("huge.mid", b"MThd" + b"\0" * size, content_type="audio/midi")
    return encode_multipart(BOUNDARY, {"title": "Huge", "genre": "pop", "midi": midi})


@pytest.fixture
def upload_temp_dir(settings: Any, tmp_path: Path) -> Path:
    """Where Django would spool large uploads: watched for files."""
    folder = tmp_path / "upload-temp"
    folder.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(folder)
    return folder


def post_body(
    client: Client, path: str, body: bytes, content_type: str = MULTIPART_CONTENT
) -> tuple[Any, int]:
    wsgi_input = CountingInput(body)
    response = client.generic("POST", path, body, content_type=content_type, **{"wsgi.input": wsgi_input})
    return response, wsgi_input.bytes_read


def test_a_20_mb_anonymous_upload_is_413_before_its_body_is_read(
    upload_temp_dir: Path, isolated_media: Path
) -> None:
    # given an anonymous visitor with a CSRF cookie (anyone gets one from the login page)
    client = Client(enforce_csrf_checks=True)
    client.get(reverse("login"))

    # when they post 20 MB to the upload page and to the API
    page, page_read = post_body(client, reverse("tracks:upload"), big_upload_body())
    api, api_read = post_body(client, "/api/tracks/", big_upload_body())

    # then both are refused unread, and nothing reached the disk
    assert page.status_code == 413
    assert page["Content-Type"].startswith("text/plain")
    assert "at most" in page.content.decode()
    assert api.status_code == 413
    assert api.json()["detail"].startswith(f"the request body is {len(big_upload_body())} bytes; at most ")
    assert page_read == api_read == 0
    assert stored_files(upload_temp_dir) == []
    assert stored_files(isolated_media) == []


@pytest.mark.parametrize("path", ["/api/tracks/", "/tracks/new/"])
def test_a_20_mb_upload_from_a_producer_is_413_before_its_body_is_read(
    path: str, upload_temp_dir: Path, isolated_media: Path
) -> None:
    # given a signed-in producer
    client = Client()
    client.force_login(ProducerFactory())

    # when they post 20 MB
    response, bytes_read = post_body(client, path, big_upload_body())

    # then
    assert response.status_code == 413
    assert bytes_read == 0
    assert Track.objects.count() == 0
    assert stored_files(upload_temp_dir) == []
    assert stored_files(isolated_media) == []


def test_the_upload_limit_is_the_midi_limit_plus_the_ordinary_allowance(settings: Any) -> None:
    # given small limits
    settings.MIDI_MAX_BYTES = 1000
    settings.REQUEST_BODY_MAX_BYTES = 2000
    client = Client()
    client.force_login(ProducerFactory())

    # when a body just over 3000 bytes goes to the upload API, and one just under
    over, _ = post_body(client, "/api/tracks/", b"x" * 3001, content_type="application/octet-stream")
    under, _ = post_body(client, "/api/tracks/", b"x" * 3000, content_type="application/octet-stream")

    # then only the first is refused by its size; the second reaches the view (which wants a form)
    assert over.status_code == 413
    assert over.json() == {"detail": "the request body is 3001 bytes; at most 3000 are accepted"}
    assert under.status_code != 413


def test_an_ordinary_request_is_limited_to_the_ordinary_allowance(settings: Any) -> None:
    settings.REQUEST_BODY_MAX_BYTES = 256 * 1024
    client = Client()
    client.force_login(ProducerFactory())
    body = b'{"body": "' + b"x" * (256 * 1024) + b'"}'

    api, api_read = post_body(client, "/api/renders/", body, content_type="application/json")
    page, page_read = post_body(client, "/login/", body, content_type="application/x-www-form-urlencoded")

    assert api.status_code == 413
    assert api.json()["detail"] == f"the request body is {len(body)} bytes; at most {256 * 1024} are accepted"
    assert page.status_code == 413
    assert page["Content-Type"].startswith("text/plain")
    assert api_read == page_read == 0


def test_a_normal_upload_still_works(
    client_for: Callable[[Any], Any], midi_upload: Callable[..., SimpleUploadedFile], upload_temp_dir: Path
) -> None:
    response = client_for(ProducerFactory()).post(
        "/api/tracks/", {"title": "Blue Hour", "genre": "pop", "midi": midi_upload()}, format="multipart"
    )

    assert response.status_code == 201, response.content
    assert Track.objects.filter(title="Blue Hour").exists()
    assert stored_files(upload_temp_dir) == []  # an accepted upload stays in memory


def test_a_chunked_body_of_unknown_length_is_cut_off_at_the_limit(settings: Any) -> None:
    # given a 20 MB chunked body (no Content-Length) and a view that reads the raw input whole
    settings.REQUEST_BODY_MAX_BYTES = 1000
    wsgi_input = CountingInput(b"x" * TWENTY_MB)
    request = RequestFactory().post(
        "/api/renders/",
        data=b"",
        content_type="application/octet-stream",
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": wsgi_input},
    )

    def greedy_view(request: HttpRequest) -> HttpResponse:
        request.META["wsgi.input"].read()
        return HttpResponse("read it all")

    # when the request passes the middleware (each layer converts exceptions, as in Django's stack)
    middleware = RequestBodyLimitMiddleware(convert_exception_to_response(greedy_view))
    response = convert_exception_to_response(middleware)(request)

    # then reading stopped one byte past the limit and the answer is 413
    assert response.status_code == 413
    assert json.loads(response.content) == {
        "detail": "the request body is over 1000 bytes; at most 1000 are accepted"
    }
    assert wsgi_input.bytes_read == 1001


def test_a_chunked_body_within_the_limit_reads_normally(settings: Any) -> None:
    settings.REQUEST_BODY_MAX_BYTES = 1000
    request = RequestFactory().post(
        "/api/renders/",
        data=b"",
        content_type="application/octet-stream",
        CONTENT_LENGTH="",
        **{"wsgi.input": io.BytesIO(b"y" * 1000)},
    )

    def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse(str(len(request.META["wsgi.input"].read())))

    response = RequestBodyLimitMiddleware(view)(request)

    assert response.status_code == 200
    assert response.content == b"1000"
