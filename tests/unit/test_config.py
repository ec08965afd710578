"""Model configs: what ``parse_model_config`` accepts, and the file and key each refusal names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kernai import Backend, BackendOption
from kernai.capabilities import Capability
from kernai.config import (
    ConfigError,
    InvalidConfig,
    dump_model_config,
    load_model_configs,
    parse_model_config,
    resolve_inside,
    write_atomically,
)

BACKENDS = {
    "engine": Backend(
        name="engine",
        capabilities=[Capability.CHAT],
        options=[
            BackendOption(name="flash", type="bool", default=False),
            BackendOption(name="pooling", type="str", default="mean", choices=["mean", "cls"]),
            BackendOption(name="ratio", type="float", minimum=0, maximum=1),
            BackendOption(name="batch", type="int", default=512, minimum=1),
        ],
    ),
    "fileless": Backend(name="fileless", capabilities=[Capability.CHAT], requires_model_file=False),
}


def parse(data: Any, models_dir: Path) -> Any:
    return parse_model_config(data, file="models/m.yaml", models_dir=models_dir, backends=BACKENDS)


def refusal(data: Any, models_dir: Path) -> ConfigError:
    with pytest.raises(InvalidConfig) as caught:
        parse(data, models_dir)
    return caught.value.error


@pytest.fixture()
def models_dir(tmp_path: Path) -> Path:
    (tmp_path / "weights.bin").write_bytes(b"w")
    return tmp_path


def test_a_full_config_is_parsed_with_the_backend_defaults_filled_in(models_dir: Path) -> None:
    config = parse(
        {
            "name": "m",
            "backend": "engine",
            "parameters": {"model": "weights.bin", "temperature": 0.2, "top_k": 40},
            "context_size": 2048,
            "threads": 4,
            "idle_timeout": 30,
            "environment": {"OMP_NUM_THREADS": "2"},
            "pooling": "cls",
        },
        models_dir,
    )
    assert (config.name, config.backend, config.context_size, config.threads) == ("m", "engine", 2048, 4)
    assert (config.parameters.temperature, config.parameters.top_k) == (0.2, 40)
    assert config.idle_timeout == 30.0 and config.environment == {"OMP_NUM_THREADS": "2"}
    assert config.options == {"flash": False, "pooling": "cls", "batch": 512}
    assert config.model_path == str(models_dir / "weights.bin") and config.source == "models/m.yaml"
    assert (config.auto_restart, config.max_restarts, config.parallel, config.on_demand_start) == (
        True,
        3,
        1,
        True,
    )


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"contex_size": 10}, "contex_size", "unknown key for backend 'engine'"),
        ({"threads": "many"}, "threads", "Expected `int | null`, got `str`"),
        ({"parameters": {"model": "weights.bin", "temprature": 1}}, "parameters", "temprature"),
        ({"parameters": {"model": "weights.bin", "top_p": "high"}}, "parameters.top_p", "got `str`"),
        ({"flash": "yes"}, "flash", "expected bool, got str"),
        ({"batch": True}, "batch", "expected int, got bool"),
        ({"ratio": 1}, None, None),  # an int is a float
        ({"ratio": 1.5}, "ratio", "expected at most 1, got 1.5"),
        ({"ratio": float("nan")}, "ratio", "expected at least 0, got nan"),
        ({"batch": 0}, "batch", "expected at least 1, got 0"),
        ({"pooling": "max"}, "pooling", "expected one of mean, cls, got 'max'"),
        ({"name": "bad name"}, "name", "is not a valid model name"),
        ({"name": "-dash-first"}, "name", "is not a valid model name"),
        ({"parallel": 0}, "parallel", "Expected `int` >= 1"),
        ({"context_size": -5}, "context_size", "Expected `int` >= 0"),
        ({"gpu_layers": -2}, "gpu_layers", "Expected `int` >= -1"),
        ({"idle_timeout": -1}, "idle_timeout", "Expected `float` >= 0.0"),
        ({"max_restarts": -1}, "max_restarts", "Expected `int` >= 0"),
        ({"parameters": {"model": "weights.bin", "temperature": 9}}, "parameters.temperature", "<= 2.0"),
        ({"parameters": {"model": "weights.bin", "top_p": 1.01}}, "parameters.top_p", "<= 1.0"),
        (
            {"parameters": {"model": "weights.bin", "presence_penalty": -3}},
            "parameters.presence_penalty",
            ">= -2",
        ),
        (
            {"parameters": {"model": "weights.bin", "seed": 2**64}},
            "parameters.seed",
            "<= 9223372036854775807",
        ),
        ({"environment": {"LD_PRELOAD": "/x.so"}}, "environment.LD_PRELOAD", "may not be set for a worker"),
        ({"environment": {"path": "/bin"}}, "environment.path", "may not be set for a worker"),
        ({"options": {"x": 1}}, "options", "unknown key for backend 'engine'"),
        ({"model_path": "/etc/passwd"}, "model_path", "unknown key for backend 'engine'"),
    ],
)
def test_each_mistake_names_its_key(
    models_dir: Path, extra: dict[str, Any], field: str | None, message: str | None
) -> None:
    data = {"name": "m", "backend": "engine", "parameters": {"model": "weights.bin"}, **extra}
    if message is None:
        parse(data, models_dir)
        return
    error = refusal(data, models_dir)
    assert error.field == field and message in error.message, error
    assert str(error).startswith(f"models/m.yaml: {field}: ")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "m"}, "missing: name the backend that serves this model"),
        ({"name": "m", "backend": ""}, "missing: name the backend that serves this model"),
        ({"name": "m", "backend": "gone"}, "unknown backend 'gone' (installed: engine, fileless)"),
    ],
)
def test_the_backend_must_be_named_and_installed(
    models_dir: Path, data: dict[str, Any], message: str
) -> None:
    error = refusal(data, models_dir)
    assert (error.field, error.message) == ("backend", message)


def test_an_unknown_backend_with_none_installed_says_so(models_dir: Path) -> None:
    with pytest.raises(InvalidConfig, match=r"installed: none installed"):
        parse_model_config({"name": "m", "backend": "x"}, file="m.yaml", models_dir=models_dir, backends={})


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("missing.bin", "file not found"),
        ("../weights.bin", "escapes"),
        ("sub/../../weights.bin", "escapes"),
        ("/etc/passwd", "must be a relative path"),
        ("  ", "must be a relative path"),
        (".", "escapes"),
    ],
)
def test_the_model_file_must_exist_inside_the_models_dir(models_dir: Path, model: str, message: str) -> None:
    error = refusal({"name": "m", "backend": "engine", "parameters": {"model": model}}, models_dir)
    assert error.field == "parameters.model" and message in error.message


def test_a_backend_that_needs_no_file_takes_a_config_without_one(models_dir: Path) -> None:
    assert parse({"name": "m", "backend": "fileless"}, models_dir).model_path is None
    error = refusal({"name": "m", "backend": "engine"}, models_dir)
    assert error.field == "parameters.model"
    assert error.message == "missing: backend 'engine' needs a model file"


def test_a_config_that_is_not_a_mapping_is_refused(models_dir: Path) -> None:
    error = refusal(["name", "m"], models_dir)
    assert (error.field, error.message, error.model) == (None, "expected a mapping of keys to values", "m")


def test_an_error_stands_for_the_declared_name_else_the_file_stem(models_dir: Path) -> None:
    assert refusal({"name": "declared", "backend": "gone"}, models_dir).model == "declared"
    assert refusal({"name": 7, "backend": "gone"}, models_dir).model == "m"


def test_symlinks_placed_inside_the_models_dir_are_followed(models_dir: Path, tmp_path_factory: Any) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "big.gguf"
    elsewhere.write_bytes(b"x")
    (models_dir / "big.gguf").symlink_to(elsewhere)
    config = parse({"name": "m", "backend": "engine", "parameters": {"model": "big.gguf"}}, models_dir)
    assert config.model_path == str(models_dir / "big.gguf")


def test_resolve_inside_normalises_and_refuses_climbing_out(tmp_path: Path) -> None:
    assert resolve_inside(tmp_path, "a/./b/../c.bin") == tmp_path / "a" / "c.bin"
    for bad in ("..", "a/../..", "/abs", "nul\0byte", ""):
        with pytest.raises(ValueError):
            resolve_inside(tmp_path, bad)


def test_loading_a_folder_keeps_good_configs_and_reports_bad_ones(models_dir: Path) -> None:
    files = {
        "a.yaml": "name: a\nbackend: fileless\n",
        "b.yml": "name: b\nbackend: fileless\nthreads: 2\n",
        "broken.yaml": "name: [unclosed\n",
        "twin.yaml": "name: a\nbackend: fileless\n",
        "typo.yaml": "name: typo\nbackend: fileless\ncontext_sise: 1\n",
        "notes.txt": "name: ignored\n",
    }
    for name, text in files.items():
        (models_dir / name).write_text(text)
    (models_dir / "folder.yaml").mkdir()
    configs, errors = load_model_configs(models_dir, BACKENDS)
    assert sorted(configs) == ["a", "b"] and configs["b"].threads == 2
    assert configs["a"].source == str(models_dir / "a.yaml")
    found = {Path(e.file).name: e for e in errors}
    assert sorted(found) == ["broken.yaml", "twin.yaml", "typo.yaml"]
    assert "not valid YAML" in found["broken.yaml"].message
    assert (found["twin.yaml"].field, found["twin.yaml"].message) == ("name", "duplicate model name 'a'")
    assert (found["typo.yaml"].field, found["typo.yaml"].model) == ("context_sise", "typo")


def test_a_missing_models_dir_is_empty(tmp_path: Path) -> None:
    assert load_model_configs(tmp_path / "none", BACKENDS) == ({}, [])


def test_a_written_config_reads_back_in_the_order_given(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "m.yaml"
    write_atomically(path, dump_model_config({"name": "m", "backend": "fileless", "description": "é"}))
    assert path.read_text(encoding="utf-8") == "name: m\nbackend: fileless\ndescription: é\n"
    write_atomically(path, b"name: n\n")
    assert path.read_bytes() == b"name: n\n" and [p.name for p in path.parent.iterdir()] == ["m.yaml"]
