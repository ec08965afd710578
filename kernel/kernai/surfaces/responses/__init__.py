"""Open Responses (``/v1/responses``): a default plugin.

:mod:`.controller` serves it, :mod:`.schemas` holds the wire structs, :mod:`.translate` turns them into
capability requests and results and chunks back into them, :mod:`.store` keeps responses in SQLite.
Errors are OpenAI's shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from kernai import hookimpl

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler


@hookimpl
def register_routes() -> Sequence[ControllerRouterHandler]:
    from kernai.surfaces.responses.controller import ResponsesController

    return [ResponsesController]
