"""Reading the configured galleries and finding entries by ``gallery@name`` (or a bare ``name``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

import httpx
import msgspec
import yaml
from msgspec import Struct

from kernai.errors import InvalidRequest, KernaiError
from kernai.gallery.schema import BackendEntry, ModelEntry, parse_backends, parse_models
from kernai.gallery.sources import resolve_uri
from kernai.settings import GallerySource

Entry = TypeVar("Entry", ModelEntry, BackendEntry)


class EntryNotFound(KernaiError):
    status_code = 404
    error_type = "invalid_request_error"

    def __init__(self, message: str) -> None:
        super().__init__(message, param="id", code="not_found")


class Found(Struct, frozen=True):
    """An entry and the gallery it came from."""

    gallery: GallerySource
    entry: Any

    @property
    def id(self) -> str:
        return f"{self.gallery.name}@{self.entry.name}"


class Listing(Struct):
    """Every entry of a set of galleries, and the galleries that could not be read."""

    found: list[Found]
    errors: dict[str, str]


async def read_text(location: str) -> str:
    """The text at a path, ``file://``, ``http(s)://`` or ``huggingface://`` location."""
    url = resolve_uri(location)
    if url.startswith(("https://", "http://")):
        async with httpx.AsyncClient(follow_redirects=True, timeout=30) as client:
            response = await client.get(url)
            response.raise_for_status()
            return response.text
    return await asyncio.to_thread(local_path(location).read_text, encoding="utf-8")


def local_path(location: str) -> Path:
    return (
        Path(unquote(urlparse(location).path))
        if location.startswith("file://")
        else Path(location).expanduser()
    )


async def _load(source: GallerySource, parse: Callable[[Any], list[Any]]) -> list[Any]:
    try:
        return parse(yaml.safe_load(await read_text(source.url)))
    except (OSError, httpx.HTTPError, yaml.YAMLError, ValueError) as exc:
        raise ValueError(f"gallery '{source.name}' ({source.url}): {exc}") from None


async def _listing(galleries: list[GallerySource], parse: Callable[[Any], list[Any]]) -> Listing:
    loaded = await asyncio.gather(*(_load(g, parse) for g in galleries), return_exceptions=True)
    listing = Listing([], {})
    for gallery, result in zip(galleries, loaded, strict=True):
        if isinstance(result, BaseException):
            listing.errors[gallery.name] = str(result)
        else:
            listing.found += [Found(gallery, entry) for entry in result]
    return listing


async def list_models(galleries: list[GallerySource]) -> Listing:
    return await _listing(galleries, parse_models)


async def list_backends(galleries: list[GallerySource]) -> Listing:
    return await _listing(galleries, parse_backends)


def find(listing: Listing, entry_id: str, what: str) -> Found:
    """The entry ``gallery@name``, or the first entry called ``name`` in gallery order."""
    gallery_name, _, name = entry_id.rpartition("@")
    for found in listing.found:
        if found.entry.name == name and (not gallery_name or found.gallery.name == gallery_name):
            return found
    if gallery_name and gallery_name in listing.errors:
        raise EntryNotFound(listing.errors[gallery_name])
    raise EntryNotFound(f"no {what} '{entry_id}' in the configured galleries")


async def model_from_url(url: str) -> ModelEntry:
    """A single model entry published at ``url`` (LocalAI's ``url`` in ``/models/apply``)."""
    try:
        data = yaml.safe_load(await read_text(url))
        return parse_models([data])[0]
    except (OSError, httpx.HTTPError, yaml.YAMLError) as exc:
        raise InvalidRequest(f"could not read the model definition at {url}: {exc}", param="url") from None
    except ValueError as exc:
        raise InvalidRequest(f"invalid model definition at {url}: {exc}", param="url") from None


def pip_target(found: Found, requirement: str) -> str:
    """A backend's pip requirement; a ``./`` or ``../`` path is made absolute against a local gallery."""
    if not requirement.startswith(("./", "../")):
        return requirement
    if found.gallery.url.startswith(("https://", "http://", "huggingface://")):
        raise InvalidRequest(f"backend '{found.entry.name}': a relative pip path needs a local gallery")
    return str((local_path(found.gallery.url).parent / requirement).resolve())


def entry_json(entry: ModelEntry | BackendEntry) -> dict[str, Any]:
    return msgspec.to_builtins(entry)
