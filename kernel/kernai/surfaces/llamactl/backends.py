"""llamactl's backend routes under ``/api/v1``: parse-command for llama-server, mlx_lm.server and vllm
serve."""

from __future__ import annotations

from typing import Any

from litestar import Controller, post

from kernai.config import ModelConfig
from kernai.manager import ModelManager
from kernai.surfaces.llamactl.commands import LLAMA_CPP, MLX, VLLM, ParsedCommand, parse_command
from kernai.surfaces.llamactl.schemas import InstanceOptions, ParseCommandRequest

CONFIG_KEYS = frozenset(ModelConfig.__struct_fields__) | {"model"}


def _instance_options(parsed: ParsedCommand, manager: ModelManager) -> InstanceOptions:
    """Options to post to ``/instances/{name}``; a llama-server key the installed llama-cpp backend does
    not declare joins ``ignored_flags``."""
    options = dict(parsed.backend_options)
    ignored = list(parsed.ignored)
    if parsed.backend_type == LLAMA_CPP:
        backend = manager.registry.backend_map().get(LLAMA_CPP)
        for key in [k for k in options if k not in CONFIG_KEYS]:
            if backend is None or backend.option(key) is None:
                ignored.append(f"{key}: the {LLAMA_CPP} backend is not installed or has no such option")
                del options[key]
    parallel: Any = options.pop("parallel", None)
    return InstanceOptions(
        backend_type=parsed.backend_type,
        backend_options=options,
        parallel=parallel,
        ignored_flags=ignored or None,
    )


class BackendsController(Controller):
    path = "/backends"
    tags = ["llamactl"]

    @post("/llama-cpp/parse-command", status_code=200, summary="Parse a llama-server command")
    async def parse_llama_cpp(self, data: ParseCommandRequest, manager: ModelManager) -> InstanceOptions:
        """Its flags as kernai's model-config keys; the options create an instance on the llama-cpp
        backend (``POST /api/v1/instances/{name}``). Flags kernai does not honour are in
        ``ignored_flags``."""
        return _instance_options(parse_command(LLAMA_CPP, data.command), manager)

    @post("/mlx/parse-command", status_code=200, summary="Parse an mlx_lm.server command")
    async def parse_mlx(self, data: ParseCommandRequest, manager: ModelManager) -> InstanceOptions:
        return _instance_options(parse_command(MLX, data.command), manager)

    @post("/vllm/parse-command", status_code=200, summary="Parse a vllm serve command")
    async def parse_vllm(self, data: ParseCommandRequest, manager: ModelManager) -> InstanceOptions:
        return _instance_options(parse_command(VLLM, data.command), manager)
