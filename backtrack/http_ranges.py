"""Serve a stored file with HTTP byte ranges (RFC 9110 §14), streamed in blocks, never read whole.

One parser and one response for every view that serves audio: the page's player seeks with ranges,
and the API download resumes with them. Storage that serves its own files (S3) gets a redirect to its
signed URL instead, which answers ranges itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Final

from django.core.files.storage import FileSystemStorage
from django.db.models.fields.files import FieldFile
from django.http import HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.http import content_disposition_header

# 18 digits reach an exabyte and stay far below Python's 4300-digit limit for int(); a longer number
# makes the header malformed, and a malformed Range header is ignored (RFC 9110 §14.2): 200, whole file.
MAX_DIGITS: Final = 18
BLOCK_SIZE: Final = 64 * 1024
_RANGE_RE: Final = re.compile(rf"^bytes=(\d{{0,{MAX_DIGITS}}})-(\d{{0,{MAX_DIGITS}}})$")


class Unsatisfiable:
    """A well-formed single range that selects no byte of the file: answer 416."""

    def __repr__(self) -> str:
        return "UNSATISFIABLE"


UNSATISFIABLE: Final = Unsatisfiable()


def parse_range(header: str | None, size: int) -> tuple[int, int] | Unsatisfiable | None:
    """The byte range a ``Range`` header asks of a file of ``size`` bytes.

    Returns ``(start, end)``, both inclusive byte offsets within the file (``end`` is clamped to the
    last byte); ``UNSATISFIABLE`` when the range starts beyond the file or asks for an empty suffix;
    ``None`` to serve the whole file: no header, another unit, several ranges, or anything malformed.
    """
    if not header:
        return None
    match = _RANGE_RE.match(header.strip())
    if match is None:
        return None
    first, last = match[1], match[2]
    if first:
        start = int(first)
        if last and int(last) < start:
            return None  # "bytes=9-3" is invalid, not unsatisfiable
        if start >= size:
            return UNSATISFIABLE
        return start, min(int(last), size - 1) if last else size - 1
    if not last:
        return None  # "bytes=-"
    suffix = int(last)
    if suffix == 0 or size == 0:
        return UNSATISFIABLE
    return max(0, size - suffix), size - 1


def range_starts_the_file(header: str | None) -> bool:
    """Whether a request asks for the file from its first byte (no range, or ``bytes=0-…``).

    A player asks so once per playback start; later requests seek.
    """
    parsed = parse_range(header, size=2**63)
    return parsed is None or (isinstance(parsed, tuple) and parsed[0] == 0)


class FileBlocks:
    """Bytes ``start`` to ``end`` (inclusive) of an open file, in blocks, as a response's content.

    The response closes it (and so the file) when the server is done, even if it was never iterated.
    """

    def __init__(self, handle: IO[bytes] | FieldFile, start: int, end: int) -> None:
        self._handle = handle
        self._start = start
        self._end = end

    def __iter__(self) -> Iterator[bytes]:
        self._handle.seek(self._start)
        remaining = self._end - self._start + 1
        while remaining > 0:
            block = self._handle.read(min(BLOCK_SIZE, remaining))
            if not block:
                return
            remaining -= len(block)
            yield block

    def close(self) -> None:
        self._handle.close()


def stored_file_response(
    file: FieldFile,
    *,
    range_header: str | None,
    content_type: str,
    filename: str | None = None,
    as_attachment: bool = False,
    cache_control: str = "private, max-age=3600",
) -> HttpResponseBase:
    """Serve a stored file: 200 whole, 206 one range, 416 a range outside it; streamed in blocks.

    Storage other than the local filesystem (S3) is answered with a redirect to its own, signed URL.
    Raises ``OSError`` (``FileNotFoundError``) when the file is gone from storage.
    """
    disposition = content_disposition_header(as_attachment, filename or "")
    url = _direct_url(file, disposition)
    if url is not None:
        redirect = HttpResponseRedirect(url)
        redirect["Cache-Control"] = "private, no-store"  # signed URLs expire
        return redirect
    handle = file.open("rb")
    try:
        size = file.size
    except BaseException:
        handle.close()
        raise
    response = _file_range_response(handle, size, range_header, content_type)
    if disposition is not None:
        response["Content-Disposition"] = disposition
    response["Accept-Ranges"] = "bytes"
    if response.status_code != 416:
        response["Cache-Control"] = cache_control
    return response


def _file_range_response(
    handle: IO[bytes] | FieldFile, size: int, range_header: str | None, content_type: str
) -> HttpResponseBase:
    byte_range = parse_range(range_header, size)
    if isinstance(byte_range, Unsatisfiable):
        handle.close()
        refused = HttpResponse(status=416)
        refused["Content-Range"] = f"bytes */{size}"
        return refused
    if byte_range is None:
        whole = StreamingHttpResponse(FileBlocks(handle, 0, size - 1), content_type=content_type)
        whole["Content-Length"] = str(size)
        return whole
    start, end = byte_range
    part = StreamingHttpResponse(FileBlocks(handle, start, end), status=206, content_type=content_type)
    part["Content-Length"] = str(end - start + 1)
    part["Content-Range"] = f"bytes {start}-{end}/{size}"
    return part


def _direct_url(file: FieldFile, disposition: str | None) -> str | None:
    """The storage's own URL for the file when the storage serves files itself (S3), else None."""
    storage = file.storage
    if isinstance(storage, FileSystemStorage):
        return None
    from storages.backends.s3 import S3Storage  # imports boto3: only when media are elsewhere

    if isinstance(storage, S3Storage):
        # The signed URL carries the download's name, so S3 answers with the same Content-Disposition.
        parameters = {"ResponseContentDisposition": disposition} if disposition else None
        return str(storage.url(file.name, parameters=parameters))
    try:
        return str(storage.url(file.name))
    except NotImplementedError:
        return None
