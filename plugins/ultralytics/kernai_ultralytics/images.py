"""Decode and check the image of a detection request."""

from __future__ import annotations

import io

from PIL import Image, ImageOps, UnidentifiedImageError

from kernai.errors import InvalidRequest

Image.MAX_IMAGE_PIXELS = None  # the model config's max_pixels is the limit, checked before decoding


def decode_image(data: bytes, *, max_pixels: int) -> Image.Image:
    """An RGB image, upright as its EXIF orientation says; :class:`InvalidRequest` for anything else."""
    if not data:
        raise InvalidRequest("The image is empty", param="image")
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        # PIL's drivers also refuse a header that says 0 pixels wide or high (a PNG, a JPEG, ...)
        raise InvalidRequest(
            "The image is not a picture in a known format, or it is 0 pixels wide or high", param="image"
        ) from None
    except (SyntaxError, ValueError, OSError) as exc:
        raise InvalidRequest(f"The image is not a picture in a known format ({exc})", param="image") from None
    width, height = image.size
    if width < 1 or height < 1:  # only metafiles (WMF, EMF) open with an empty bounding box
        raise InvalidRequest(f"The image is {width}x{height} pixels", param="image")
    if width * height > max_pixels:
        raise InvalidRequest(
            f"The image is {width}x{height} = {width * height} pixels, more than the limit of {max_pixels}",
            param="image",
        )
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidRequest(f"The image is truncated or corrupt ({exc})", param="image") from None
    return ImageOps.exif_transpose(image).convert("RGB")
