"""Anthropic's Messages API, ``POST /v1/messages``: a default plugin.

:mod:`.controller` serves it, :mod:`.schemas` holds the wire structs, :mod:`.translate` turns them into
capability requests and results back into them, :mod:`.errors` is Anthropic's error body.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from kernai import hookimpl

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler


@hookimpl
def register_routes() -> Sequence[ControllerRouterHandler]:
    from kernai.surfaces.anthropic.controller import AnthropicController

    return [AnthropicController]
