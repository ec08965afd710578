"""LocalAI's extras beyond OpenAI's API: a default plugin.

Inference: ``/v1/tokenize`` and ``/v1/detokenize`` (:mod:`.tokenize`), ``/tts`` and ElevenLabs' text to
speech (:mod:`.speech`), ``/vad`` (:mod:`.vad`), ``/v1/rerank`` (:mod:`.rerank`), ``/v1/detection``
(:mod:`.detection`). Management: ``/system``, ``/backend/monitor``, ``/backend/shutdown``
(:mod:`.system`), the model switches under ``/api/models`` (:mod:`.lifecycle`), config editing and
metadata (:mod:`.config_edit`), the VRAM estimate (:mod:`.vram`), ``/tokenMetrics``
(:mod:`.token_metrics`) and the API guides under ``/api/instructions`` (:mod:`.instructions`). Errors
are OpenAI's shape, as LocalAI's; :mod:`.schemas` holds the wire structs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from kernai import hookimpl

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler


@hookimpl
def register_routes() -> Sequence[ControllerRouterHandler]:
    from kernai.surfaces.localai.config_edit import ConfigEditController
    from kernai.surfaces.localai.detection import DetectionController
    from kernai.surfaces.localai.instructions import InstructionsController
    from kernai.surfaces.localai.lifecycle import LifecycleController
    from kernai.surfaces.localai.rerank import RerankController
    from kernai.surfaces.localai.speech import SpeechController
    from kernai.surfaces.localai.system import SystemController
    from kernai.surfaces.localai.token_metrics import TokenMetricsController
    from kernai.surfaces.localai.tokenize import TokenizeController
    from kernai.surfaces.localai.vad import VADController
    from kernai.surfaces.localai.vram import VramController

    return [
        SystemController,
        LifecycleController,
        ConfigEditController,
        VramController,
        TokenMetricsController,
        InstructionsController,
        TokenizeController,
        SpeechController,
        VADController,
        RerankController,
        DetectionController,
    ]
