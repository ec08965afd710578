"""Multipart uploads streamed straight to disk, and their forms described for the OpenAPI document.

The body is parsed as it arrives (with the ``multipart`` package that Litestar itself uses) and each
file part is written to a fresh file in the data directory's ``tmp/uploads`` folder, so a long
recording is never held in the server's memory. The caller deletes the files with
:meth:`UploadedForm.cleanup` once the backend is done with them.
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from litestar import Request
from litestar.openapi.spec import OpenAPIFormat, OpenAPIType, Reference, Schema
from multipart import MultipartSegment, ParserError, ParserLimitReached, PushMultipartParser

from kernai.errors import InvalidRequest

MAX_FIELD_BYTES = 1 << 20
"""Largest non-file form field (a prompt, say)."""
MAX_PARTS = 64
AUDIO_FILE = Schema(
    type=OpenAPIType.STRING,
    format=OpenAPIFormat.BINARY,
    description="Audio in any format FFmpeg reads (wav, mp3, flac, ogg, webm, m4a ...)",
)
"""The OpenAPI schema of an uploaded audio file."""


def string_schema(description: str, enum: list[str] | None = None) -> Schema:
    return Schema(type=OpenAPIType.STRING, description=description, enum=enum)


def form_schema(required: list[str], properties: dict[str, Reference | Schema]) -> Schema:
    """The OpenAPI schema of a form (or JSON object) with ``properties``, for a handler that reads its
    body itself."""
    return Schema(type=OpenAPIType.OBJECT, required=required, properties=properties)


@dataclass(frozen=True)
class UploadedFile:
    path: Path
    filename: str
    content_type: str
    size: int


@dataclass
class UploadedForm:
    """The text fields (each name may repeat) and the files of one multipart body."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[-1] if values else None

    def getall(self, name: str) -> list[str]:
        return self.fields.get(name, [])

    def scalars(self) -> dict[str, Any]:
        """The fields as a mapping for :func:`msgspec.convert`: ``name[]`` and repeated names become lists."""
        out: dict[str, Any] = {}
        for name, values in self.fields.items():
            if name.endswith("[]"):
                out[name[:-2]] = values
            else:
                out[name] = values if len(values) > 1 else values[0]
        return out

    def cleanup(self) -> None:
        for upload in self.files.values():
            upload.path.unlink(missing_ok=True)
        self.files.clear()


STALE_SECONDS = 24 * 3600
"""Uploads older than this are leftovers of a server that was killed mid-request."""
_swept: set[Path] = set()


def upload_dir(data_path: Path) -> Path:
    """``DATA/tmp/uploads``, created if needed; the first call in a process removes stale leftovers."""
    path = data_path / "tmp" / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    if path not in _swept:
        _swept.add(path)
        cutoff = time.time() - STALE_SECONDS
        for leftover in path.iterdir():
            with contextlib.suppress(OSError):
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()
    return path


def _suffix(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""


async def read_multipart(request: Request[Any, Any, Any], directory: Path) -> UploadedForm:
    """Parse a ``multipart/form-data`` body, writing file parts into ``directory``.

    A malformed body is a 400; on any error the files written so far are removed.
    """
    media_type, params = request.content_type
    if media_type != "multipart/form-data" or not params.get("boundary"):
        raise InvalidRequest("Expected a multipart/form-data body (upload the audio as the 'file' field)")
    form = UploadedForm()
    segment: MultipartSegment | None = None
    text = bytearray()
    handle: BinaryIO | None = None
    upload: UploadedFile | None = None
    try:
        with PushMultipartParser(params["boundary"].encode(), max_segment_count=MAX_PARTS) as parser:
            stream = request.stream()
            while not parser.closed:
                chunk = await anext(stream, b"")
                for event in parser.parse(chunk):
                    if isinstance(event, MultipartSegment):
                        segment = event
                        if segment.filename is not None:
                            path = directory / f"{uuid.uuid4().hex}{_suffix(segment.filename)}"
                            handle = open(path, "wb")  # noqa: SIM115, ASYNC230 - local disk; closed at the part's end
                            upload = UploadedFile(path, segment.filename, segment.content_type or "", 0)
                            form.files[segment.name] = upload
                    elif event:
                        if handle is not None:
                            handle.write(event)
                        elif len(text) + len(event) > MAX_FIELD_BYTES:
                            raise InvalidRequest(
                                f"Form field '{segment.name if segment else ''}' is too large"
                            )
                        else:
                            text += event
                    elif segment is not None:
                        if handle is not None and upload is not None:
                            size = handle.tell()  # written from the start: the file's size, without a stat
                            handle.close()
                            form.files[segment.name] = UploadedFile(
                                upload.path, upload.filename, upload.content_type, size
                            )
                            handle = upload = None
                        else:
                            form.fields.setdefault(segment.name, []).append(
                                text.decode(segment.charset or "utf-8")
                            )
                            text = bytearray()
                        segment = None
    except (ParserError, ParserLimitReached, UnicodeDecodeError) as exc:
        _discard(form, handle)
        raise InvalidRequest(f"Malformed multipart/form-data body: {exc}") from None
    except BaseException:
        _discard(form, handle)
        raise
    return form


def _discard(form: UploadedForm, handle: BinaryIO | None) -> None:
    if handle is not None:
        handle.close()
    form.cleanup()
