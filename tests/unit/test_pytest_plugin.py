"""The ``kernai_server`` fixture's parts: the models folder it writes, the server it prepares, and the
factory's cache, with a stand-in process instead of ``kernai serve``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kernai.testing import KernaiServer, ServerFactory, model_configs, prepare_server, write_models


class SleepingServer(KernaiServer):
    """A ``KernaiServer`` whose process is a sleeping Python, counting its starts."""

    starts = 0

    def start(self) -> SleepingServer:
        self.process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        SleepingServer.starts += 1
        return self


def test_model_configs_name_each_model_and_let_its_own_keys_win() -> None:
    assert model_configs({"a": {}, "b": {"backend": "other", "threads": 2}}, backend="reference") == {
        "a.yaml": {"name": "a", "backend": "reference"},
        "b.yaml": {"name": "b", "backend": "other", "threads": 2},
    }


def test_write_models_writes_text_and_bytes_links_paths_and_dumps_mappings(tmp_path: Path) -> None:
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"\x00\x01")
    folder = write_models(
        tmp_path / "models",
        {
            "a.yaml": "name: a\n",
            "raw.bin": b"\xff",
            "weights.bin": weights,
            "b.yaml": {"name": "b", "x": [1]},
        },
    )
    assert (folder / "a.yaml").read_text() == "name: a\n" and (folder / "raw.bin").read_bytes() == b"\xff"
    assert (folder / "weights.bin").is_symlink() and (folder / "weights.bin").resolve() == weights
    assert yaml.safe_load((folder / "b.yaml").read_text()) == {"name": "b", "x": [1]}


def test_prepare_server_writes_its_settings_and_names_them_in_its_environment(tmp_path: Path) -> None:
    server = prepare_server(
        tmp_path,
        {"m.yaml": "name: m\n"},
        settings={"max_running_models": 1},
        plugins="reference",
        env={"X": "1"},
        args=["--log-level", "debug"],
    )
    assert (server.models_dir, server.data_dir) == (tmp_path / "models", tmp_path / "data")
    assert server.env == {
        "X": "1",
        "KERNAI_LOAD_PLUGINS": "reference",
        "KERNAI_CONFIG": str(tmp_path / "kernai.yaml"),
    }
    assert yaml.safe_load((tmp_path / "kernai.yaml").read_text()) == {"max_running_models": 1}
    assert server.args == ["--log-level", "debug"] and server.process is None
    assert prepare_server(tmp_path / "bare").env == {}


def test_the_factory_shares_a_server_per_arguments_and_brings_a_stopped_one_back(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    factory = ServerFactory(tmp_path_factory)
    SleepingServer.starts = 0
    try:
        first = factory({"m.yaml": "name: m\n"}, plugins="reference", server_class=SleepingServer)
        assert factory({"m.yaml": "name: m\n"}, plugins="reference", server_class=SleepingServer) is first
        own = factory({"m.yaml": "name: m\n"}, name="own", plugins="reference", server_class=SleepingServer)
        linked = factory({"m.yaml": Path("name: m\n")}, plugins="reference", server_class=SleepingServer)
        assert len({id(first), id(own), id(linked)}) == 3 and SleepingServer.starts == 3
        first.stop()
        assert not first.running
        assert factory({"m.yaml": "name: m\n"}, plugins="reference", server_class=SleepingServer) is first
        assert first.running and SleepingServer.starts == 4 and first.url == f"http://127.0.0.1:{first.port}"
    finally:
        factory.stop_all()
    assert not any(server.running for server in (first, own, linked))
