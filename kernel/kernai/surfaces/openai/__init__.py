"""OpenAI's API: chat, completions, edits, embeddings and the model list (:mod:`.text`, :mod:`.models`),
and audio, transcription, translation and speech (:mod:`.audio`); each under ``/v1`` and, as LocalAI
serves them, without it. A default plugin; errors are OpenAI's ``{"error": {...}}``.

:mod:`.schemas` and :mod:`.audio_schemas` hold the wire structs, :mod:`.translate` turns them into
capability structs and back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from kernai import hookimpl

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler


@hookimpl
def register_routes() -> Sequence[ControllerRouterHandler]:
    from kernai.surfaces.openai.audio import AudioController
    from kernai.surfaces.openai.models import ModelsController
    from kernai.surfaces.openai.text import OpenAIController

    return [ModelsController, OpenAIController, AudioController]
