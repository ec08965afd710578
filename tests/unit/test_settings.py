"""Server settings: defaults, then the YAML file, then ``KERNAI_*`` variables, then flags; each bad value
named with the layer it came from."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kernai.settings import CONFIG_ENV, ENV_PREFIX, GallerySource, Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``KERNAI_*`` variable of the shell running the tests leaks into a layer."""
    for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kernai.yaml"
    path.write_text(text)
    return path


def test_defaults_listen_on_loopback_with_auth_off_and_no_cap() -> None:
    settings = Settings.load()
    assert (settings.host, settings.port, settings.log_level) == ("127.0.0.1", 8080, "info")
    assert settings.require_management_auth is False and settings.max_running_models == 0
    assert settings.body_size_limits == {"/v1/audio/": 100_000_000}
    [gallery] = settings.galleries
    assert gallery.name == "kernai" and gallery.url.endswith("index.yaml")


def test_each_layer_wins_over_the_one_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = config(tmp_path, "port: 9000\nhost: 127.0.0.2\nlog_level: debug\nqueue_size: 3\n")
    monkeypatch.setenv("KERNAI_PORT", "9100")
    monkeypatch.setenv("KERNAI_HOST", "127.0.0.3")
    settings = Settings.load(file, port=9200, host=None)  # a None flag is a flag not given
    assert (settings.port, settings.host, settings.log_level, settings.queue_size) == (
        9200,
        "127.0.0.3",
        "debug",
        3,
    )


def test_the_config_file_may_come_from_kernai_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(config(tmp_path, "port: 9300\n")))
    assert Settings.load().port == 9300
    given = tmp_path / "given"
    given.mkdir()
    assert Settings.load(config(given, "port: 9400\n")).port == 9400  # the file given wins


def test_env_values_are_json_or_plain_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERNAI_CORS_ORIGINS", '["http://ui.example"]')
    monkeypatch.setenv("KERNAI_RESPONSE_HEADERS", '{"X-Served-By": "kernai"}')
    monkeypatch.setenv("KERNAI_MODELS_DIR", "/srv/models")
    monkeypatch.setenv("KERNAI_REQUIRE_INFERENCE_AUTH", "true")
    monkeypatch.setenv("KERNAI_IDLE_TIMEOUT", "2.5")
    monkeypatch.setenv("KERNAI_GALLERIES", '[{"name": "mine", "url": "/g.yaml", "trusted": true}]')
    settings = Settings.load()
    assert settings.cors_origins == ["http://ui.example"]
    assert settings.response_headers == {"X-Served-By": "kernai"}
    assert settings.models_dir == "/srv/models" and settings.require_inference_auth is True
    assert settings.idle_timeout == 2.5
    assert settings.galleries == [GallerySource("mine", "/g.yaml", trusted=True)]


def test_numbers_given_as_strings_are_converted(tmp_path: Path) -> None:
    settings = Settings.load(config(tmp_path, "port: '9000'\nrate_limit: 'false'\nidle_timeout: '1.5'\n"))
    assert (settings.port, settings.rate_limit, settings.idle_timeout) == (9000, False, 1.5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("port: not-a-number\n", "kernai.yaml: port: Expected `int`, got `str`"),
        (
            "log_level: loud\n",
            "kernai.yaml: log_level: Invalid enum value 'loud' (one of: debug, info, warning, error)",
        ),
        ("colour: blue\n", "kernai.yaml: colour: Object contains unknown field `colour`"),
        ("galleries: [{name: x}]\n", "kernai.yaml: galleries[0]: Object missing required field `url`"),
        ("port: [8080\n", "kernai.yaml: not valid YAML"),
        ("- port\n", "kernai.yaml: expected a mapping of settings"),
    ],
)
def test_a_bad_file_value_names_the_file_and_the_setting(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        Settings.load(config(tmp_path, text))
    assert message in str(caught.value) and str(tmp_path) in str(caught.value)


def test_an_empty_file_is_the_defaults(tmp_path: Path) -> None:
    assert Settings.load(config(tmp_path, "")) == Settings.load()


def test_a_bad_env_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERNAI_PORT", "eighty")
    with pytest.raises(ValueError, match=r"^KERNAI_PORT: port: Expected `int`, got `str`"):
        Settings.load()


def test_a_bad_flag_names_the_option() -> None:
    with pytest.raises(ValueError, match=r"^--log-level: log_level: Invalid enum value 'loud'"):
        Settings.load(log_level="loud")


def test_a_missing_config_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        Settings.load(tmp_path / "absent.yaml")


def test_redacted_hides_every_key_but_keeps_their_count() -> None:
    settings = Settings(management_keys=["m1", "m2"], inference_keys=["i1"])
    shown = settings.redacted()
    assert shown["management_keys"] == ["***", "***"] and shown["inference_keys"] == ["***"]
    assert shown["port"] == 8080 and settings.management_keys == ["m1", "m2"]


def test_to_env_reads_back_as_the_same_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = Settings(
        port=9999,
        models_dir=str(tmp_path),
        cors_origins=["http://a.example"],
        galleries=[GallerySource("g", "/g.yaml", trusted=True)],
        body_size_limits={"/x": 5},
        log_level="warning",
    )
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    assert Settings.load() == settings


def test_paths_are_expanded_and_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    settings = Settings(models_dir="relative/models", data_dir="~/data")
    assert settings.models_path == tmp_path / "relative" / "models"
    assert settings.data_path == tmp_path / "home" / "data"
