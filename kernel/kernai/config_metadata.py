"""Each model-config key with its type, default, description and section, generated from
:class:`~kernai.config.ModelConfig`'s field ``Meta`` and the installed backends' declared options (LocalAI's
config-metadata route, llamactl's backend help)."""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import Struct

from kernai.config import ModelConfig
from kernai.plugins import PluginRegistry

LOADER_FIELDS = frozenset({"options", "source", "model_path"})


class FieldMetadata(Struct, omit_defaults=True):
    """One config key; ``path`` is dotted for nested keys (``parameters.temperature``)."""

    path: str
    type: str
    section: str
    description: str
    default: Any = None
    backend: str | None = None
    """The backend that declares the key; none for the keys every model has."""
    choices: list[Any] | None = None
    minimum: int | float | None = None
    maximum: int | float | None = None
    autocomplete: str | None = None


_JSON_TYPES = {
    msgspec.inspect.StrType: "string",
    msgspec.inspect.IntType: "integer",
    msgspec.inspect.FloatType: "number",
    msgspec.inspect.BoolType: "boolean",
    msgspec.inspect.DictType: "object",
    msgspec.inspect.ListType: "array",
    msgspec.inspect.StructType: "object",
}
_OPTION_TYPES = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "list": "array",
    "dict": "object",
}
_AUTOCOMPLETE = {"backend": "backends"}


def _without_none(kind: msgspec.inspect.Type) -> msgspec.inspect.Type:
    """``T`` for ``T | None``; any other type as it is."""
    if isinstance(kind, msgspec.inspect.UnionType):
        named = [t for t in kind.types if not isinstance(t, msgspec.inspect.NoneType)]
        if len(named) == 1:
            return named[0]
    return kind


def _type_name(kind: msgspec.inspect.Type) -> str:
    return _JSON_TYPES.get(type(_without_none(kind)), "any")


def _bounds(kind: msgspec.inspect.Type) -> tuple[int | float | None, int | float | None]:
    """The ``ge`` and ``le`` of a number type (or of the number in ``number | None``)."""
    kind = _without_none(kind)
    if isinstance(kind, (msgspec.inspect.IntType, msgspec.inspect.FloatType)):
        return kind.ge, kind.le
    return None, None


def _struct_fields(struct: type[Struct], prefix: str = "") -> list[FieldMetadata]:
    """Each key of ``struct`` from its ``Meta`` (description, section), nested structs flattened."""
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    found: list[FieldMetadata] = []
    for item in info.fields:
        if item.name in LOADER_FIELDS or not isinstance(item.type, msgspec.inspect.Metadata):
            continue
        kind = item.type.type
        if isinstance(kind, msgspec.inspect.StructType):
            found += _struct_fields(kind.cls, f"{prefix}{item.name}.")
            continue
        extra = item.type.extra or {}
        schema = item.type.extra_json_schema or {}
        default = item.default if item.default is not msgspec.NODEFAULT else None
        minimum, maximum = _bounds(kind)
        found.append(
            FieldMetadata(
                path=prefix + item.name,
                type=_type_name(kind),
                section=str(extra.get("section", "general")),
                description=str(schema.get("description", "")),
                default=msgspec.to_builtins(default) if default is not None else None,
                minimum=minimum,
                maximum=maximum,
                autocomplete=_AUTOCOMPLETE.get(item.name),
            )
        )
    return found


def config_fields(registry: PluginRegistry) -> list[FieldMetadata]:
    """Every model-config key: the common ones, then each installed backend's options (section ``llm``)."""
    found = _struct_fields(ModelConfig)
    for name, backend in sorted(registry.backend_map().items()):
        found += [
            FieldMetadata(
                path=option.name,
                type=_OPTION_TYPES[option.type],
                section="llm",
                description=option.description,
                default=option.default,
                backend=name,
                choices=option.choices,
                minimum=option.minimum,
                maximum=option.maximum,
            )
            for option in backend.options
        ]
    return found
