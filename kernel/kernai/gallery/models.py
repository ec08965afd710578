"""Installing a model entry into the models directory, and removing an installed model.

An install fetches every file (verified, atomically), then validates and writes the model config
last, so a model never looks installed before all of it is in place. What an install placed is
recorded in ``<models dir>/.gallery/<name>.json``; a remove deletes exactly that.
"""

from __future__ import annotations

import asyncio
import copy
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import yaml
from msgspec import Struct

from kernai.backends import Backend
from kernai.config import (
    NAME_PATTERN,
    InvalidConfig,
    dump_model_config,
    parse_model_config,
    resolve_inside,
    write_atomically,
)
from kernai.environment import check_environment
from kernai.errors import InvalidRequest
from kernai.gallery.jobs import Reporter
from kernai.gallery.schema import ModelEntry
from kernai.gallery.sources import FetchContext, fetch, partial_path

RECORDS_DIR = ".gallery"


class InstallRecord(Struct, kw_only=True):
    """What the gallery installed for one model."""

    name: str
    source: str
    config_file: str
    files: list[str]
    entry: ModelEntry
    installed_at: float


def record_path(models_dir: Path, name: str) -> Path:
    return models_dir / RECORDS_DIR / f"{name}.json"


def installed(models_dir: Path) -> dict[str, InstallRecord]:
    """The models the gallery installed here (whose config is still present), by name."""
    records: dict[str, InstallRecord] = {}
    for path in sorted((models_dir / RECORDS_DIR).glob("*.json")):
        try:
            record = msgspec.json.decode(path.read_bytes(), type=InstallRecord)
        except (OSError, msgspec.DecodeError, msgspec.ValidationError):
            continue
        if (models_dir / record.config_file).is_file():
            records[record.name] = record
    return records


def merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated with ``overrides``; nested mappings merge key by key."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def build_config(entry: ModelEntry, name: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The model config an install writes: ``config_file``, then the entry's and the request's overrides."""
    base = entry.config_file if entry.config_file is not None else {}
    if isinstance(base, str):
        try:
            base = yaml.safe_load(base) or {}
        except yaml.YAMLError as exc:
            raise InvalidRequest(f"model '{entry.name}': config_file is not valid YAML: {exc}") from None
    if not isinstance(base, dict):
        raise InvalidRequest(f"model '{entry.name}': config_file must be a mapping")
    config = merge(merge(base, entry.overrides), overrides)
    if entry.backend and "backend" not in config:
        config["backend"] = entry.backend
    parameters = config.get("parameters")
    if len(entry.files) == 1 and not (isinstance(parameters, dict) and parameters.get("model")):
        config["parameters"] = {**(parameters or {}), "model": entry.files[0].filename}
    first = {"name": name, "backend": config.get("backend")}
    return {**first, **{key: value for key, value in config.items() if key not in first}}


def check_name(name: str) -> None:
    if not NAME_PATTERN.match(name) or "@" in name:
        raise InvalidRequest(f"'{name}' is not a valid model name (letters, digits, . _ - : +)", param="name")


def check_backend(config: Mapping[str, Any], backends: Mapping[str, Backend]) -> None:
    """Refuse a config whose backend is not installed, saying how to install it."""
    backend = config.get("backend")
    if backend not in backends:
        known = ", ".join(sorted(backends)) or "none"
        raise InvalidRequest(
            f"model '{config['name']}' needs backend '{backend}', which is not installed (installed: {known})"
            f"; install it first with POST /backends/apply or `kernai backends install {backend}`",
            param="backend",
        )


def check_entry_environment(entry: ModelEntry, config: Mapping[str, Any], origin: str, trusted: bool) -> None:
    """Refuse an entry that sets ``environment`` unless it comes from a trusted gallery, and a ``config``
    (the entry's with the request's overrides) whose environment sets a variable no model may."""
    if not trusted and build_config(entry, entry.name, {}).get("environment"):
        raise InvalidRequest(
            f"model '{entry.name}' from {origin} sets 'environment', which only a gallery marked"
            " 'trusted: true' in the settings may do; set the model's environment in its config yourself",
            param="environment",
        )
    environment = config.get("environment")
    if isinstance(environment, Mapping) and (refused := check_environment(environment)) is not None:
        raise InvalidRequest(refused[1], param=f"environment.{refused[0]}")


def check_filenames(entry: ModelEntry, models_dir: Path) -> list[Path]:
    """Where each of the entry's files goes; a name that would leave the models directory is refused."""
    targets = []
    for file in entry.files:
        try:
            targets.append(resolve_inside(models_dir, file.filename))
        except ValueError as exc:
            raise InvalidRequest(f"file name refused: {exc}", param="filename") from None
    return targets


async def install_model(
    entry: ModelEntry,
    *,
    name: str,
    source: str,
    overrides: Mapping[str, Any],
    models_dir: Path,
    backends: Mapping[str, Backend],
    context: FetchContext,
    reporter: Reporter,
) -> InstallRecord:
    """Fetch the entry's files and write its config.

    On a failure, or a cancel by the user (``reporter.job.cancelled``), what this install created is
    removed, partial downloads included; on any other cancellation (the server stopping) the fetched
    files and the partial ones stay, so that the next install resumes.
    """
    check_name(name)
    config = build_config(entry, name, overrides)
    check_backend(config, backends)
    targets = check_filenames(entry, models_dir)
    config_path = models_dir / f"{name}.yaml"
    created: list[Path] = []
    try:
        reporter.message("fetching the wheels the files come in")
        await context.prefetch(entry.files)
        for index, (file, target) in enumerate(zip(entry.files, targets, strict=True)):
            reporter.file(file.filename, index, len(entry.files))
            existed = target.exists()
            await fetch(file, target, context, reporter.bytes)
            if not existed:
                created.append(target)
        reporter.message("writing the model config")
        try:
            parse_model_config(config, file=str(config_path), models_dir=models_dir, backends=backends)
        except InvalidConfig as exc:
            raise InvalidRequest(f"the installed config would be invalid: {exc}") from None
        record = InstallRecord(
            name=name,
            source=source,
            config_file=config_path.name,
            files=[file.filename for file in entry.files],
            entry=entry,
            installed_at=time.time(),
        )
        write_atomically(record_path(models_dir, name), msgspec.json.encode(record))
        write_atomically(config_path, dump_model_config(config))
        return record
    except asyncio.CancelledError:
        if reporter.job.cancelled:
            for path in [*created, *map(partial_path, targets)]:
                _remove(path)
        raise
    except BaseException:
        for path in created:
            _remove(path)
        raise


def find_config_file(models_dir: Path, name: str) -> Path | None:
    """The config file in ``models_dir`` whose ``name`` is ``name`` (valid or not)."""
    for path in sorted(models_dir.glob("*.y*ml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and data.get("name") == name:
            return path
    return None


def delete_model(models_dir: Path, name: str) -> list[str]:
    """Remove the model's config and the files the gallery installed for it (unless another uses them)."""
    config_path = find_config_file(models_dir, name)
    record_file = record_path(models_dir, name)
    if config_path is None:
        raise LookupError(f"no model named '{name}' in {models_dir}")
    removed = [config_path.name]
    config_path.unlink()
    records = installed(models_dir)
    if record_file.is_file():
        try:
            record = msgspec.json.decode(record_file.read_bytes(), type=InstallRecord)
        except (msgspec.DecodeError, msgspec.ValidationError):
            record = None
        if record is not None:
            shared = {file for other in records.values() if other.name != name for file in other.files}
            for file in record.files:
                if file not in shared and _remove(resolve_inside(models_dir, file)):
                    removed.append(file)
        record_file.unlink()
    return removed


def _remove(path: Path) -> bool:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
        return True
    if path.exists() or path.is_symlink():
        path.unlink()
        return True
    return False
