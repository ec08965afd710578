"""llamactl's backend routes under ``/api/v1``: parse-command for llama-server, mlx_lm.server and vllm
serve; the llama-cpp backend's help, version and devices (also under llamactl's older ``/server/``), the
last two read from the engine in a short subprocess (:mod:`kernai.backend_facts`)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get, post
from litestar.exceptions import NotFoundException

from kernai.backend_facts import BackendFacts, read_backend_facts
from kernai.config import ModelConfig
from kernai.config_metadata import FieldMetadata, config_fields
from kernai.errors import InvalidRequest
from kernai.manager import ModelManager
from kernai.plugins import PluginRegistry, RegisteredBackend
from kernai.surfaces.llamactl.commands import (
    LLAMA_CPP,
    LLAMA_SERVER_FLAGS,
    MLX,
    VLLM,
    ParsedCommand,
    parse_command,
)
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


def _llama_cpp(registry: PluginRegistry) -> RegisteredBackend:
    entry = registry.backends.get(LLAMA_CPP)
    if entry is None:
        raise NotFoundException(
            f"The {LLAMA_CPP} backend is not installed (kernai backends install {LLAMA_CPP})"
        )
    return entry


def _range(key: FieldMetadata) -> str:
    """``, 0 to 2``, ``, at least 1``, ``, at most 8`` or nothing: the values a key accepts."""
    if key.minimum is not None and key.maximum is not None:
        return f", {key.minimum} to {key.maximum}"
    if key.minimum is not None:
        return f", at least {key.minimum}"
    return f", at most {key.maximum}" if key.maximum is not None else ""


def help_text(registry: PluginRegistry) -> str:
    """The llama-cpp backend's model-config keys, and the llama-server flags parse-command maps to them."""
    entry = _llama_cpp(registry)
    lines = [
        f"{LLAMA_CPP}: {entry.backend.description}",
        "",
        "Model-config keys (YAML, or an instance's backend_options):",
    ]
    for key in config_fields(registry):
        if key.backend in (None, LLAMA_CPP):
            default = f", default {key.default}" if key.default not in (None, "", {}) else ""
            choices = f", one of {', '.join(map(str, key.choices))}" if key.choices else ""
            lines.append(f"  {key.path} ({key.type}{default}{choices}{_range(key)}): {key.description}")
    flags: dict[str, list[str]] = {}
    for flag, meaning in LLAMA_SERVER_FLAGS.items():
        flags.setdefault(meaning.key or f"(ignored: {meaning.reason})", []).append(flag)
    lines += ["", "llama-server flags that POST /api/v1/backends/llama-cpp/parse-command maps:"]
    lines += [f"  {', '.join(names)} -> {key}" for key, names in flags.items()]
    return "\n".join(lines) + "\n"


def version_text(facts: BackendFacts) -> str:
    lines = [f"{name} {version}" for name, version in facts.versions.items()]
    lines.append("build: " + " ".join(f"{flag}={value}" for flag, value in facts.build.items()))
    return "\n".join(lines) + "\n"


def devices_text(facts: BackendFacts) -> str:
    """As ``llama-server --list-devices``: one line per device, memory in MiB."""
    lines = ["Available devices:"]
    for device in facts.devices:
        memory = ""
        if device.memory_total is not None:
            memory = f" ({device.memory_total // 2**20} MiB, {(device.memory_free or 0) // 2**20} MiB free)"
        lines.append(f"  {device.name}: {device.description}{memory}")
    return "\n".join(lines) + "\n"


def _answer(text: str, data: object, format: str | None) -> Response[Any]:
    if format == "json":
        return Response(data, media_type="application/json")
    if format not in (None, "text"):
        raise InvalidRequest(f"Unknown format '{format}': use text or json", param="format")
    return Response(text, media_type="text/plain")


class BackendFactsController(Controller):
    tags = ["llamactl"]

    @get(["/backends/llama-cpp/help", "/server/help"], summary="The llama-cpp backend's options, as text")
    async def backend_help(self, registry: PluginRegistry) -> Response[str]:
        return Response(help_text(registry), media_type="text/plain")

    @get(
        ["/backends/llama-cpp/version", "/server/version"],
        summary="llama.cpp and llama-cpp-python versions and build flags (text, or ?format=json)",
    )
    async def version(self, registry: PluginRegistry, format: str | None = None) -> Response[Any]:
        facts = await read_backend_facts(_llama_cpp(registry))
        return _answer(version_text(facts), {"versions": facts.versions, "build": facts.build}, format)

    @get(
        ["/backends/llama-cpp/devices", "/server/devices"],
        summary="The compute devices llama.cpp sees (text, or ?format=json)",
    )
    async def devices(self, registry: PluginRegistry, format: str | None = None) -> Response[Any]:
        facts = await read_backend_facts(_llama_cpp(registry))
        return _answer(devices_text(facts), facts.devices, format)
