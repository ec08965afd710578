"""Model configs: one YAML file per model in the models directory.

The keys follow LocalAI where it makes sense (``name``, ``backend``, ``parameters.model``,
``context_size``, ``threads``, ``gpu_layers``, ``embeddings`` ...), plus the lifecycle keys of
llamactl (``idle_timeout``, ``auto_restart``, ``max_restarts``, ``restart_delay`` ...). Any other
top-level key must be an option that the model's backend declares; anything else is an error that
names the file and the key.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import msgspec
import yaml
from msgspec import Meta, Struct, field

from kernai.backends import Backend
from kernai.environment import check_environment

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}$")
CONFIG_SUFFIXES = (".yaml", ".yml")
SECTIONS = {
    "general": "Name, backend, description",
    "llm": "How the backend loads the model (context, threads, GPU layers, backend options)",
    "parameters": "The model file and the default sampling settings",
    "lifecycle": "When the worker starts, stops and restarts",
}
"""The sections of a model config's keys (LocalAI's config-metadata groups keys the same way)."""


# The bounds of numeric keys: sampling as OpenAI documents it, counts as the engines take them
# (llama.cpp's context, threads and layers are 32-bit), so that a config out of range is refused
# however it is written (YAML file, config-json, instance, gallery) instead of failing in a worker.
INT32_MAX = 2**31 - 1
Count = Annotated[int, Meta(ge=0, le=INT32_MAX)]
PositiveCount = Annotated[int, Meta(ge=1, le=INT32_MAX)]
Layers = Annotated[int, Meta(ge=-1, le=INT32_MAX)]
Seconds = Annotated[float, Meta(ge=0)]
Temperature = Annotated[float, Meta(ge=0, le=2)]
Probability = Annotated[float, Meta(ge=0, le=1)]
Penalty = Annotated[float, Meta(ge=-2, le=2)]
RepeatPenalty = Annotated[float, Meta(ge=0)]
Seed = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]


def _field(section: str, description: str) -> Meta:
    return Meta(description=description, extra={"section": section})


class ModelParameters(Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """``parameters:``: the model file and the default sampling settings."""

    model: Annotated[str | None, _field("parameters", "The model file, relative to the models dir.")] = None
    temperature: Annotated[
        Temperature | None,
        _field("parameters", "Default sampling temperature (0 to 2)."),
    ] = None
    top_p: Annotated[
        Probability | None, _field("parameters", "Default nucleus sampling probability (0 to 1).")
    ] = None
    top_k: Annotated[Count | None, _field("parameters", "Default top-k sampling (0: off).")] = None
    min_p: Annotated[Probability | None, _field("parameters", "Default min-p sampling (0 to 1).")] = None
    max_tokens: Annotated[
        PositiveCount | None,
        _field("parameters", "Default limit of generated tokens."),
    ] = None
    seed: Annotated[Seed | None, _field("parameters", "Default random seed.")] = None
    repeat_penalty: Annotated[
        RepeatPenalty | None, _field("parameters", "Default repetition penalty (1: off).")
    ] = None
    presence_penalty: Annotated[
        Penalty | None, _field("parameters", "Default presence penalty (-2 to 2).")
    ] = None
    frequency_penalty: Annotated[
        Penalty | None, _field("parameters", "Default frequency penalty (-2 to 2).")
    ] = None


class ModelConfig(Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A validated model config. ``options``, ``source`` and ``model_path`` are filled by the loader.

    Each key's ``Meta`` gives its description and its section (``extra["section"]``), from which
    LocalAI's config-metadata route is generated."""

    name: Annotated[str, _field("general", "The model's name, as requests name it.")]
    backend: Annotated[str, _field("general", "The backend that serves the model.")]
    description: Annotated[str, _field("general", "A line about the model.")] = ""
    parameters: Annotated[ModelParameters, _field("parameters", "The model file and sampling defaults.")] = (
        field(default_factory=ModelParameters)
    )
    context_size: Annotated[
        Count | None, _field("llm", "Context length in tokens (the backend's default if unset or 0).")
    ] = None
    threads: Annotated[Count | None, _field("llm", "CPU threads (the backend's default if unset or 0).")] = (
        None
    )
    gpu_layers: Annotated[
        Layers | None,
        _field("llm", "Layers to offload to the GPU (-1: all)."),
    ] = None
    embeddings: Annotated[bool, _field("llm", "Load the model for embeddings.")] = False
    # lifecycle
    disabled: Annotated[bool, _field("lifecycle", "Refuse requests and never load.")] = False
    pinned: Annotated[bool, _field("lifecycle", "Never evicted or unloaded when idle.")] = False
    on_demand_start: Annotated[bool, _field("lifecycle", "Start the worker on the first request.")] = True
    idle_timeout: Annotated[
        Seconds | None, _field("lifecycle", "Seconds idle before the worker stops (0: never).")
    ] = None
    auto_restart: Annotated[bool, _field("lifecycle", "Restart the worker after a crash.")] = True
    max_restarts: Annotated[Count, _field("lifecycle", "Restarts in a row before the model fails.")] = 3
    restart_delay: Annotated[Seconds, _field("lifecycle", "Seconds before a restart.")] = 1.0
    parallel: Annotated[
        PositiveCount,
        _field("lifecycle", "Requests served at once (backends that can)."),
    ] = 1
    environment: Annotated[dict[str, str], _field("lifecycle", "Environment variables of the worker.")] = (
        field(default_factory=dict)
    )
    # filled by the loader
    options: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    model_path: str | None = None


_COMMON_KEYS = frozenset(ModelConfig.__struct_fields__) - {"options", "source", "model_path"}


class ConfigError(Struct, frozen=True):
    """A problem with one model config file."""

    file: str
    field: str | None
    message: str
    name: str | None = None
    """The model name the config declares, when it declares one."""

    @property
    def model(self) -> str:
        """The model this error stands for (in ``/v1/models`` and requests): the declared name, else the
        file's."""
        return self.name or Path(self.file).stem

    def __str__(self) -> str:
        where = f"{self.file}: {self.field}" if self.field else self.file
        return f"{where}: {self.message}"


class InvalidConfig(Exception):
    def __init__(self, error: ConfigError) -> None:
        super().__init__(str(error))
        self.error = error


def resolve_inside(root: Path, relative: str) -> Path:
    """``root / relative``, refusing absolute paths and any ``..`` that climbs out of ``root``.

    The check is on the path as written: a symlink the operator placed inside ``root`` is
    followed (LocalAI does the same), but no name from a config or a request can climb out.
    """
    candidate = Path(relative)
    if candidate.is_absolute() or not relative.strip() or "\0" in relative:
        raise ValueError(f"'{relative}' must be a relative path inside {root}")
    normalised = Path(os.path.normpath(root / candidate))
    if not normalised.is_relative_to(Path(os.path.normpath(root))) or normalised == Path(
        os.path.normpath(root)
    ):
        raise ValueError(f"'{relative}' escapes {root}")
    return normalised


def parse_model_config(
    data: Mapping[str, Any], *, file: str, models_dir: Path, backends: Mapping[str, Backend]
) -> ModelConfig:
    """Validate one config mapping; raise :class:`InvalidConfig` naming the file and field."""

    if not isinstance(data, Mapping):
        raise InvalidConfig(ConfigError(file, None, "expected a mapping of keys to values"))
    declared = data.get("name") if isinstance(data.get("name"), str) else None

    def fail(key: str | None, message: str) -> InvalidConfig:
        return InvalidConfig(ConfigError(file, key, message, declared))

    backend_name = data.get("backend")
    if not isinstance(backend_name, str) or not backend_name:
        raise fail("backend", "missing: name the backend that serves this model")
    backend = backends.get(backend_name)
    if backend is None:
        known = ", ".join(sorted(backends)) or "none installed"
        raise fail("backend", f"unknown backend '{backend_name}' (installed: {known})")

    common: dict[str, Any] = {}
    options = backend.defaults()
    for key, value in data.items():
        if key in _COMMON_KEYS:
            common[key] = value
        elif (option := backend.option(str(key))) is not None:
            if (problem := option.check(value)) is not None:
                raise fail(str(key), problem)
            options[key] = value
        else:
            raise fail(str(key), f"unknown key for backend '{backend_name}'")
    try:
        config = msgspec.convert(common, ModelConfig)
    except msgspec.ValidationError as exc:
        message = str(exc)
        match = re.search(r"at `\$\.([^`]+)`", message) or re.search(r"field `([^`]+)`", message)
        raise fail(match.group(1) if match else None, message) from None
    if not NAME_PATTERN.match(config.name):
        raise fail("name", f"'{config.name}' is not a valid model name (letters, digits, . _ - : @ +)")
    if (refused := check_environment(config.environment)) is not None:
        raise fail(f"environment.{refused[0]}", refused[1])

    model_path: str | None = None
    if config.parameters.model:
        try:
            path = resolve_inside(models_dir, config.parameters.model)
        except ValueError as exc:
            raise fail("parameters.model", str(exc)) from None
        if not path.exists():
            raise fail("parameters.model", f"file not found: {path}")
        model_path = str(path)
    elif backend.requires_model_file:
        raise fail("parameters.model", f"missing: backend '{backend_name}' needs a model file")
    return msgspec.structs.replace(config, options=options, source=file, model_path=model_path)


def load_model_configs(
    models_dir: Path, backends: Mapping[str, Backend]
) -> tuple[dict[str, ModelConfig], list[ConfigError]]:
    """Read every ``*.yaml`` in ``models_dir``; bad files become errors, not exceptions."""
    configs: dict[str, ModelConfig] = {}
    errors: list[ConfigError] = []
    if not models_dir.is_dir():
        return configs, errors
    for path in sorted(p for p in models_dir.iterdir() if p.suffix in CONFIG_SUFFIXES and p.is_file()):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            config = parse_model_config(data, file=str(path), models_dir=models_dir, backends=backends)
        except yaml.YAMLError as exc:
            errors.append(ConfigError(str(path), None, f"not valid YAML: {exc}"))
            continue
        except InvalidConfig as exc:
            errors.append(exc.error)
            continue
        if config.name in configs:
            errors.append(ConfigError(str(path), "name", f"duplicate model name '{config.name}'"))
            continue
        configs[config.name] = config
    return configs, errors


def write_atomically(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` so that readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def dump_model_config(data: Mapping[str, Any]) -> bytes:
    """A config mapping as YAML, keys in the order given."""
    return yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True).encode()
