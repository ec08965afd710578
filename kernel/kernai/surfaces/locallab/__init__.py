"""LocalLab's API (``/generate``, ``/chat``, ``/models/load|unload|current``, ``/system/info``,
``/health``): a default plugin. Errors are ``{"detail": "..."}``, as LocalLab's clients expect.

:mod:`.controller` serves the text routes and :mod:`.models` the model and system ones, :mod:`.schemas`
holds the wire structs, :mod:`.translate` turns them into capability requests and results back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from kernai import hookimpl

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler


@hookimpl
def register_routes() -> Sequence[ControllerRouterHandler]:
    from kernai.surfaces.locallab.controller import LocalLabController
    from kernai.surfaces.locallab.models import LocalLabHealthController, LocalLabModelsController

    return [LocalLabController, LocalLabHealthController, LocalLabModelsController]
