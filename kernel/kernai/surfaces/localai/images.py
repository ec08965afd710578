"""Turn an image reference from a request (http(s) URL, data URI, bare base64) into the file's bytes.

Decoding the image is the backend's job; here only the transport is checked: a URL must answer
within ``time_limit`` seconds with at most ``max_bytes``, a data URI must carry an ``image/*`` media type.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re

import httpx

from kernai.errors import InvalidRequest

_DATA_URI = re.compile(r"^data:(?P<type>[^;,]*)(?P<params>(;[^;,]*)*),(?P<data>.*)$", re.DOTALL)


async def image_bytes(reference: str, *, time_limit: float, max_bytes: int, param: str = "image") -> bytes:
    """The bytes of the image that ``reference`` names; :class:`InvalidRequest` when it cannot be had."""
    reference = reference.strip()
    if not reference:
        raise InvalidRequest("The image is empty", param=param)
    if reference.startswith(("http://", "https://")):
        return await fetch(reference, time_limit=time_limit, max_bytes=max_bytes, param=param)
    if reference.startswith("data:"):
        match = _DATA_URI.match(reference)
        if match is None:
            raise InvalidRequest("The image data URI is malformed", param=param)
        media_type = match["type"].strip().lower()
        if not media_type.startswith("image/"):
            raise InvalidRequest(
                f"The data URI's media type is '{media_type or 'missing'}', expected image/*", param=param
            )
        if ";base64" not in match["params"].lower():
            raise InvalidRequest("The image data URI must be base64-encoded", param=param)
        reference = match["data"]
    data = _b64decode(reference, param)
    if len(data) > max_bytes:
        raise InvalidRequest(
            f"The image is {len(data)} bytes, more than the limit of {max_bytes}", param=param
        )
    return data


def _b64decode(text: str, param: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(
            "The image is neither an http(s) URL, a data URI nor valid base64", param=param
        ) from None


async def fetch(url: str, *, time_limit: float, max_bytes: int, param: str = "image") -> bytes:
    """GET ``url`` within ``time_limit`` seconds in all, refusing bodies over ``max_bytes``; past the limit,
    an :class:`InvalidRequest` that names it."""
    try:
        async with (
            asyncio.timeout(time_limit),
            httpx.AsyncClient(timeout=time_limit, follow_redirects=True, max_redirects=5) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise InvalidRequest(
                    f"Fetching the image from {url} answered HTTP {response.status_code}", param=param
                )
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise InvalidRequest(
                    f"The image at {url} is {declared} bytes, more than the limit of {max_bytes}", param=param
                )
            body = bytearray()
            async for part in response.aiter_bytes():
                body += part
                if len(body) > max_bytes:
                    raise InvalidRequest(
                        f"The image at {url} is more than the limit of {max_bytes} bytes", param=param
                    )
            return bytes(body)
    except TimeoutError:
        raise InvalidRequest(
            f"Fetching the image from {url} took more than {time_limit:g} s", param=param
        ) from None
    except httpx.HTTPError as exc:
        raise InvalidRequest(
            f"Could not fetch the image from {url}: {type(exc).__name__}: {exc}", param=param
        ) from None
