"""Our gallery files follow the schema, the JSON Schema is current, every plugin has an entry."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import yaml

from kernai.gallery.schema import json_schemas, parse_backends, parse_models

ROOT = Path(__file__).resolve().parents[2]
GALLERY = ROOT / "gallery"


def test_index_and_backends_validate() -> None:
    models = parse_models(yaml.safe_load((GALLERY / "index.yaml").read_text()))
    backends = parse_backends(yaml.safe_load((GALLERY / "backends.yaml").read_text()))
    assert {m.backend for m in models} <= {b.name for b in backends}
    for model in models:
        assert model.files and all(f.sha256 or f.is_folder for f in model.files), model.name


def test_published_json_schema_matches_the_structs() -> None:
    """Regenerate with `python -m kernai.gallery.schema gallery/schema`."""
    for name, schema in json_schemas().items():
        assert json.loads((GALLERY / "schema" / name).read_text()) == schema, name


def test_every_first_party_plugin_has_a_backend_entry() -> None:
    backends = {b.name: b for b in parse_backends(yaml.safe_load((GALLERY / "backends.yaml").read_text()))}
    for folder in sorted((ROOT / "plugins").iterdir()):
        if not (folder / "pyproject.toml").is_file():
            continue
        project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
        for backend in project["entry-points"]["kernai"]:
            entry = backends.get(backend)
            assert entry is not None, f"gallery/backends.yaml has no entry for plugin {folder.name}"
            assert entry.distribution == project["name"]
            assert (GALLERY / entry.pip).resolve() == folder.resolve()
            assert entry.version == project["version"]


@pytest.mark.parametrize(
    "bad, message",
    [
        ([{"name": "x", "files": [{"filename": "a", "uri": "https://h/a"}]}], "'sha256' is required"),
        (
            [{"name": "x", "files": [{"filename": "a", "sha256": "0" * 64}]}],
            "exactly one of 'uri' and 'parts'",
        ),
        ([{"name": "x", "files": [{"filename": "a", "sha256": "0" * 64, "parts": []}]}], "'parts' is empty"),
        ([{"name": "x", "files": [{"filename": "a", "uri": "https://h/a", "sha256": "xyz"}]}], "sha256"),
        ([{"name": "a@b"}], "name"),
        ([{"name": "x", "colour": "red"}], "colour"),
        ([{"name": "x"}, {"name": "x"}], "duplicate"),
    ],
)
def test_schema_refuses_bad_entries(bad: list[dict[str, object]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_models(bad)
